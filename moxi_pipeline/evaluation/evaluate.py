"""`moxi evaluate`: READMEs for held-out repositories from each system, scored against the real ones.

Systems, all writing through the same outline, facts and grounding pass (`compose.write_readmes`):
- `template`: the deterministic floor, facts only, no model;
- `base`: the base model zero-shot;
- `fine_tuned`: the base model with the (SFT) LoRA adapter, merged into the weights for speed;
- `dpo`: the base model with the DPO adapter (the SFT adapter continued on preference pairs), when one is given.

Per repository and system, `metrics.score_readme`; per system, the mean with a 95% confidence
interval (Student's t over repositories), pooled trust rates, and the eval loss and perplexity of each
model on the records' section samples, sampled round-robin across repositories.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from moxi_pipeline.evaluation.metrics import REFERENCE_CHARS, score_readme
from moxi_pipeline.models.writer import WriterSpec, load_writer, load_writer_tokenizer
from moxi_pipeline.readme.compose import write_readmes
from moxi_pipeline.readme.decoding import DecodingConfig, Progress
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.records import RepoRecord, SftSample

SYSTEMS = ("template", "base", "fine_tuned", "dpo")
MEAN_METRICS = ("rougeL", "rouge1", "rouge2", "rougeL_full", "rouge1_full", "rouge2_full", "coverage", "length_ratio",
                "lint_findings", "broken_anchors", "supported_prose")
COUNT_METRICS = ("length_ratio", "lint_findings", "broken_anchors")  # no upper bound of 1

__all__ = ["EvalConfig", "EvalReport", "REFERENCE_CHARS", "SYSTEMS", "evaluate", "mean_ci", "paired_differences", "round_robin"]


@dataclass(frozen=True)
class EvalConfig:
    max_repos: int = 6  # held-out repositories to write READMEs for
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    device: str = "auto"  # auto | cpu | cuda
    max_length: int = 768  # eval-loss sequence cap in tokens, as the training profiles' max_length
    min_completion_tokens: int = 160  # when cut, the answer keeps this many tokens (as in training)
    max_loss_samples: int = 16  # section samples in the eval loss, round-robin across repositories; 0 skips it
    baseline: bool = True  # also score the template floor and the base model zero-shot
    with_features: bool = True  # the model writes a Features section

    def __post_init__(self) -> None:
        if self.max_repos < 1:
            raise ValueError(f"EvalConfig.max_repos must be >= 1, got {self.max_repos!r}")
        if not isinstance(self.decoding, DecodingConfig):
            raise ValueError(f"EvalConfig.decoding must be a DecodingConfig, got {self.decoding!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"EvalConfig.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.max_length < 16:
            raise ValueError(f"EvalConfig.max_length must be >= 16, got {self.max_length!r}")
        if self.max_loss_samples < 0:
            raise ValueError(f"EvalConfig.max_loss_samples must be >= 0, got {self.max_loss_samples!r}")


class EvalReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    n_repos: int
    systems: dict[str, dict]  # system -> {metric: value, metric_ci: [low, high]}
    rows: list[dict]  # one per repository and system: repo, system, metrics, removed, text
    paired: dict[str, dict] = {}  # "fine_tuned - base" -> ROUGE-L difference per repository: mean, ci, wins, n
    base_model_dir: str
    adapter_dir: str | None
    dpo_adapter_dir: str | None = None
    config: dict
    run: dict = {}  # what was evaluated: records file, profile, dataset hash (filled by the caller)

    def metric(self, system: str, name: str):
        return self.systems.get(system, {}).get(name)


def mean_ci(values) -> tuple[float | None, list[float] | None]:
    """Mean and 95% confidence interval (Student's t, the exact quantile from scipy) of the non-None values."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, [mean, mean]
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    from scipy.stats import t as student_t  # imported here: `moxi` starts without scipy

    t = float(student_t.ppf(0.975, len(values) - 1))  # two-sided 95%: 11 degrees of freedom -> 2.201
    half = t * sd / math.sqrt(len(values))
    return mean, [mean - half, mean + half]


def paired_differences(rows: list[dict], metric: str = "rougeL") -> dict[str, dict]:
    """Each system against the ones below it, repository by repository: the mean difference in `metric`,
    its 95% CI, and on how many repositories the first system scored higher. Two systems' own intervals
    overlap far more often than their paired difference straddles 0: this is the test of "beats"."""
    scores: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.get(metric) is not None:
            scores.setdefault(row["system"], {})[row["repo_url"]] = row[metric]
    ranked = [name for name in reversed(SYSTEMS) if name in scores]  # dpo, fine_tuned, base, template
    paired = {}
    for i, upper in enumerate(ranked):
        for lower in ranked[i + 1 :]:
            common = sorted(scores[upper].keys() & scores[lower].keys())
            diffs = [scores[upper][url] - scores[lower][url] for url in common]
            mean, ci = mean_ci(diffs)
            if mean is not None:
                paired[f"{upper} - {lower}"] = {"mean": mean, "ci": ci, "wins": sum(d > 0 for d in diffs), "n": len(diffs)}
    return paired


def round_robin(samples: list[SftSample], limit: int) -> list[SftSample]:
    """At most `limit` samples, one repository at a time in turn, so the loss is not one repository's."""
    by_repo: dict[str, list[SftSample]] = {}
    for sample in samples:
        by_repo.setdefault(sample.repo_url, []).append(sample)
    picked, queues = [], [list(q) for _, q in sorted(by_repo.items())]
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def compute_eval_loss(model, tokenizer, samples: list[SftSample], max_length: int, min_completion_tokens: int) -> float:
    """Mean cross-entropy over completion tokens only, token-weighted across samples, on the very ids and
    labels training builds (`training.tokenize.tokenize_sample`: the prompt's middle is cut, not the answer)."""
    import torch

    from moxi_pipeline.training.tokenize import (
        IGNORE_INDEX,
        completion_labels,
        tokenize_sample,
    )

    total_loss, total_tokens = 0.0, 0
    for sample in samples:
        row = tokenize_sample(tokenizer, sample, max_length, min_completion_tokens)
        input_ids = torch.tensor([row["input_ids"]], device=model.device)
        labels = torch.tensor(completion_labels(row), device=model.device)
        with torch.no_grad():
            logits = model(input_ids=input_ids).logits[0, :-1].float()
        # logits at position t predict token t+1
        losses = torch.nn.functional.cross_entropy(logits, labels[1:], ignore_index=IGNORE_INDEX, reduction="sum")
        total_loss += losses.item()
        total_tokens += int((labels[1:] != IGNORE_INDEX).sum())
    if total_tokens == 0:
        raise ValueError(f"eval loss: no completion token fits in max_length={max_length} for {len(samples)} samples")
    return total_loss / total_tokens


def aggregate(rows: list[dict], eval_loss: float | None, seconds: float, new_tokens: int) -> dict:
    """One system's summary: means with CIs, pooled trust rates, shares, loss, perplexity, speed."""
    summary: dict = {}
    for name in MEAN_METRICS:
        mean, ci = mean_ci(row[name] for row in rows)
        top = float("inf") if name in COUNT_METRICS else 1.0  # a score or share cannot leave [0, 1]
        summary[name], summary[f"{name}_ci"] = mean, ci and [max(0.0, ci[0]), min(top, ci[1])]
    paths, urls = sum(r["paths"] for r in rows), sum(r["urls"] for r in rows)
    summary["hallucinated_path_rate"] = sum(r["unknown_paths"] for r in rows) / paths if paths else 0.0
    summary["invented_url_rate"] = sum(r["invented_urls"] for r in rows) / urls if urls else 0.0
    summary["invented_urls"] = f"{sum(r['invented_urls'] for r in rows)} of {urls}"
    installs = [r["install_ok"] for r in rows if r["install_ok"] is not None]
    summary["install_ok"] = sum(installs) / len(installs) if installs else None
    summary["title_ok"] = sum(r["title_ok"] for r in rows) / len(rows)
    summary["degenerate"] = sum(r["degenerate"] for r in rows)
    summary["removed_by_grounding"] = sum(r["removed"] for r in rows)
    summary["eval_loss"] = eval_loss
    summary["perplexity"] = math.exp(eval_loss) if eval_loss is not None else None
    summary["generation_s"] = round(seconds, 2)
    summary["tokens_per_s"] = round(new_tokens / seconds, 1) if seconds > 0 and new_tokens else None
    return summary


def _score_system(name, model, tokenizer, records, config, loss_samples, progress):
    step = None if progress is None else (lambda what, done, total: progress(f"{name}: {what}", done, total))
    started = time.perf_counter()
    written = write_readmes(model, tokenizer, records, config.decoding, config.with_features, step)
    seconds = time.perf_counter() - started
    rows = []
    for record, readme in zip(records, written):
        evidence = Evidence.of(readme.facts, record.file_tree, record.key_files)
        metrics = score_readme(readme.text, record.readme, readme.facts, evidence, record.repo)
        rows.append({"repo": record.repo, "repo_url": record.repo_url, "system": name, **metrics,
                     "removed": readme.grounding.total(), "text": readme.text})
    loss = None
    if model is not None and loss_samples:
        loss = compute_eval_loss(model, tokenizer, loss_samples, config.max_length, config.min_completion_tokens)
    return rows, aggregate(rows, loss, seconds, sum(w.new_tokens for w in written))


def evaluate(
    writer: WriterSpec, records: list[RepoRecord], samples: list[SftSample], config: EvalConfig,
    progress: Progress | None = None, dpo_adapter_dir: Path | None = None,
) -> EvalReport:
    """Score the template floor and base model (with `config.baseline`), the fine-tuned model (when `writer`
    has an adapter) and the DPO model (when `dpo_adapter_dir` is given, on the same base) on `records`;
    `samples` are their section samples, for eval loss."""
    base_model_dir, adapter_dir = writer.base_dir, writer.adapter_dir
    base_writer = WriterSpec(base_model_dir, gguf_file=writer.gguf_file)  # `--model f.gguf` is its own base

    if not records:
        raise ValueError("records is empty: there are no repositories to evaluate on")
    records = sorted(records, key=lambda r: r.repo_url)[: config.max_repos]
    urls = {r.repo_url for r in records}
    loss_samples = round_robin([s for s in samples if s.repo_url in urls], config.max_loss_samples)
    tuned = {"fine_tuned": adapter_dir, "dpo": dpo_adapter_dir}
    if dpo_adapter_dir and not adapter_dir:
        raise ValueError("a DPO adapter is compared with the SFT adapter it continues: give the SFT adapter too")
    names = [n for n in SYSTEMS if tuned.get(n, True) and (n in tuned or config.baseline or not adapter_dir)]
    tokenizer = load_writer_tokenizer(base_writer)
    rows, systems = [], {}
    for name in names:
        model = None
        if name == "base":
            model, _ = load_writer(base_writer, config.device)
        elif name == "fine_tuned":
            model, _ = load_writer(writer, config.device)
        elif name == "dpo":
            model, _ = load_writer(WriterSpec(base_model_dir, Path(dpo_adapter_dir)), config.device)
        system_rows, systems[name] = _score_system(name, model, tokenizer, records, config, loss_samples, progress)
        rows += system_rows
    return EvalReport(n_repos=len(records), systems=systems, rows=rows, paired=paired_differences(rows),
                      base_model_dir=str(base_model_dir),
                      adapter_dir=str(adapter_dir) if adapter_dir else None,
                      dpo_adapter_dir=str(dpo_adapter_dir) if dpo_adapter_dir else None,
                      config={**asdict(config), "n_loss_samples": len(loss_samples)})
