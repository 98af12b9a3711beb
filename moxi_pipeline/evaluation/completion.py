"""`moxi evaluate --complete`: take a section out of each real README, have Moxi complete it, score what comes back.

Per repository, one section the facts support and the README has (Built With, Installation, Usage,
Contributing, License; the n-th repository's n-th such section in outline order, so the kinds rotate)
is cut out, heading to the next heading of its level or above. `readme.complete.complete_readmes`
completes the rest; the restored section is scored against the removed one: ROUGE-1/2/L F1 and the
trust counts of `metrics.score_readme` (unknown paths, invented URLs, install command right). Whether the
author's remaining lines all survive, in order, is checked on every row (`kept_original`).

    DIR/generations.jsonl   one line per repository and system: the removed and the restored section
    DIR/metrics.json        each system's summary, overall and per section
    DIR/report.md           the same as tables
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from moxi_pipeline.evaluation.evaluate import mean_ci
from moxi_pipeline.evaluation.metrics import install_ok, rouge_scores
from moxi_pipeline.models.writer import WriterSpec, load_writer
from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.complete import COMPLETABLE, complete_readmes, heading_kind
from moxi_pipeline.readme.decoding import DecodingConfig, Progress
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.evidence import Evidence, file_mentions
from moxi_pipeline.readme.outline import plan_outline
from moxi_pipeline.records import RepoRecord

SCORES = ("rougeL", "rouge1", "rouge2")


@dataclass(frozen=True)
class CompletionConfig:
    max_repos: int = 6
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    device: str = "auto"  # auto | cpu | cuda
    baseline: bool = True  # also the template floor and the base model zero-shot

    def __post_init__(self) -> None:
        if self.max_repos < 1:
            raise ValueError(f"CompletionConfig.max_repos must be >= 1, got {self.max_repos!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"CompletionConfig.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


def _section_spans(lines: list[str]) -> list[tuple[str, int, int]]:
    """(kind, first line, one past the last line) of each top-level heading's section."""
    heads = [(block.start, _level(lines[block.start]), block.title) for block in markdown.blocks(lines) if block.kind == "heading"]
    spans = []
    for i, (start, level, title) in enumerate(heads):
        end = next((s for s, lvl, _ in heads[i + 1 :] if lvl <= level), len(lines))
        spans.append((heading_kind(title), start, end))
    return spans


def _level(line: str) -> int:
    stripped = line.lstrip()
    return len(stripped) - len(stripped.lstrip("#")) if stripped.startswith("#") else 2


def removable_sections(readme: str, facts) -> list[str]:
    """The completable sections the facts support and the README has a heading for, in outline order."""
    kinds = {kind for kind, _, _ in _section_spans(readme.split("\n"))}
    return [plan.key for plan in plan_outline(facts, with_features=False) if plan.key in COMPLETABLE and plan.key in kinds]


def remove_section(readme: str, key: str) -> tuple[str, str]:
    """(the README without its first `key` section, that section's text)."""
    lines = readme.split("\n")
    span = next(((start, end) for kind, start, end in _section_spans(lines) if kind == key), None)
    if span is None:
        raise ValueError(f"remove_section: the README has no {key} section")
    start, end = span
    return "\n".join(lines[:start] + lines[end:]), "\n".join(lines[start:end]).strip()


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    rest = iter(big)
    return all(any(line == other for other in rest) for line in small)


def _rows(name, model, tokenizer, cases, config, progress) -> tuple[list[dict], float, int]:
    step = None if progress is None else (lambda what, done, total: progress(f"{name}: {what}", done, total))
    started = time.perf_counter()
    done = complete_readmes(model, tokenizer, [c["record"] for c in cases], [c["stripped"] for c in cases],
                            config.decoding, step)
    seconds = time.perf_counter() - started
    rows = []
    for case, completed in zip(cases, done):
        record, key = case["record"], case["section"]
        restored = completed.added.get(key, "")
        evidence = Evidence.of(completed.facts, record.file_tree, record.key_files)
        scores = rouge_scores(restored, case["removed"]) if restored else dict.fromkeys(SCORES, 0.0)
        mentions, urls = file_mentions(restored), markdown.urls(restored)
        rows.append({"repo": record.repo, "repo_url": record.repo_url, "system": name, "section": key,
                     **{s: scores[s] for s in SCORES}, "restored_ok": bool(restored),
                     "paths": len(mentions), "unknown_paths": sum(m not in evidence.known for m in mentions),
                     "urls": len(urls), "invented_urls": sum(not evidence.url_allowed(u) for u in urls),
                     "install_ok": install_ok(restored, completed.facts, evidence) if key == "installation" else None,
                     "kept_original": _is_subsequence(case["stripped"].split("\n"), completed.text.split("\n")),
                     "removed_by_grounding": completed.grounding.total(), "reference": case["removed"], "text": restored})
    return rows, seconds, sum(c.new_tokens for c in done)


def summarize(rows: list[dict], seconds: float, new_tokens: int) -> dict:
    summary: dict = {"n": len(rows)}
    for name in SCORES:
        summary[name], summary[f"{name}_ci"] = mean_ci(row[name] for row in rows)
    paths, urls = sum(r["paths"] for r in rows), sum(r["urls"] for r in rows)
    summary["restored"] = sum(r["restored_ok"] for r in rows) / len(rows)
    summary["kept_original"] = sum(r["kept_original"] for r in rows) / len(rows)
    summary["hallucinated_path_rate"] = sum(r["unknown_paths"] for r in rows) / paths if paths else 0.0
    summary["invented_url_rate"] = sum(r["invented_urls"] for r in rows) / urls if urls else 0.0
    installs = [r["install_ok"] for r in rows if r["section"] == "installation" and r["install_ok"] is not None]
    summary["install_ok"] = sum(installs) / len(installs) if installs else None
    summary["removed_by_grounding"] = sum(r["removed_by_grounding"] for r in rows)
    summary["by_section"] = {key: {"n": len(of), "rougeL": mean_ci(r["rougeL"] for r in of)[0]}
                             for key in COMPLETABLE if (of := [r for r in rows if r["section"] == key])}
    summary["generation_s"] = round(seconds, 2)
    summary["tokens_per_s"] = round(new_tokens / seconds, 1) if seconds > 0 and new_tokens else None
    return summary


def evaluate_completion(writer: WriterSpec | None, records: list[RepoRecord], config: CompletionConfig,
                        progress: Progress | None = None) -> dict:
    """{n_repos, skipped, systems: {name: summary}, rows, config}: each system completes the same cut READMEs;
    writer=None scores the template floor alone."""
    if not records:
        raise ValueError("records is empty: there are no repositories to evaluate on")
    records = sorted(records, key=lambda r: r.repo_url)[: config.max_repos]
    cases, skipped = [], []
    for record in records:
        candidates = removable_sections(record.readme, repo_facts(record))
        if not candidates:
            skipped.append({"repo_url": record.repo_url, "reason": "the README has no section the facts support"})
            continue
        key = candidates[len(cases) % len(candidates)]
        stripped, removed = remove_section(record.readme, key)
        cases.append({"record": record, "section": key, "stripped": stripped, "removed": removed})
    if not cases:
        raise ValueError(f"no record has a section to remove and restore ({len(skipped)} skipped)")
    names = ["template"] if writer is None else [
        n for n in ("template", "base", "fine_tuned")
        if (n != "fine_tuned" or writer.adapter_dir) and (n == "fine_tuned" or config.baseline or not writer.adapter_dir)]
    rows, systems = [], {}
    for name in names:
        model = tokenizer = None
        if name != "template":
            model, tokenizer = load_writer(writer if name == "fine_tuned" else WriterSpec(writer.base_dir), config.device)
        system_rows, seconds, tokens = _rows(name, model, tokenizer, cases, config, progress)
        rows += system_rows
        systems[name] = summarize(system_rows, seconds, tokens)
    return {"mode": "complete", "n_repos": len(cases), "skipped": skipped, "systems": systems, "rows": rows,
            "base_model_dir": str(writer.base_dir) if writer else None,
            "adapter_dir": str(writer.adapter_dir) if writer and writer.adapter_dir else None,
            "config": asdict(config)}


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def render_completion_report(result: dict) -> str:
    names = list(result["systems"])
    lines = ["# Moxi evaluation: completing a README", "",
             (f"{result['n_repos']} repositories, one supported section removed from each real README and restored by "
              f"`complete_readmes`; scored against the removed section. {len(result['skipped'])} skipped."), "",
             "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric in (*SCORES, "restored", "kept_original", "hallucinated_path_rate", "invented_url_rate", "install_ok",
                   "removed_by_grounding", "tokens_per_s"):
        cells = []
        for name in names:
            value, ci = result["systems"][name].get(metric), result["systems"][name].get(f"{metric}_ci")
            cells.append(_fmt(value) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines += ["", "## ROUGE-L by section", "", "| section | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in COMPLETABLE:
        if any(key in result["systems"][n]["by_section"] for n in names):
            cells = [result["systems"][n]["by_section"].get(key, {}) for n in names]
            lines.append(f"| {key} (n={cells[0].get('n', 0)}) | " + " | ".join(_fmt(c.get("rougeL")) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_completion_report(result: dict, out_dir) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"generations": out_dir / "generations.jsonl", "metrics": out_dir / "metrics.json", "report": out_dir / "report.md"}
    with paths["generations"].open("w", encoding="utf-8") as handle:
        for row in result["rows"]:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths["metrics"].write_text(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2, default=str) + "\n")
    paths["report"].write_text(render_completion_report(result))
    return {name: str(path) for name, path in paths.items()}


__all__ = [
    "CompletionConfig",
    "evaluate_completion",
    "removable_sections",
    "remove_section",
    "render_completion_report",
    "summarize",
    "write_completion_report",
]
