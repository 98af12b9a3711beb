"""Base model against fine-tuned on held-out repositories: ROUGE, section coverage, grounding, eval loss.

Fair comparison: both models get the same prompt and the same decoding discipline (`generate.py`);
the only difference is the adapter. One PeftModel is loaded and the base runs inside
`model.disable_adapter()`, so the weights are read from disk once.
"""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

from pydantic import BaseModel, ConfigDict

from moxi_pipeline.generate import DecodingConfig, Progress, generate_readmes
from moxi_pipeline.instructions import section_kind
from moxi_pipeline.prompts import to_prompt_completion
from moxi_pipeline.records import RepoRecord, SampleInput, SftSample

# The benchmark's convention: a README's first 4,000 characters (~1,000 tokens) are what a
# 384-token generation can be compared with; the rest would only dilute recall.
REFERENCE_CHARS = 4000
SECTIONS = ("title", "installation", "usage", "license", "contributing")
MODELS = ("base", "fine_tuned")
SCORE_METRICS = ("rougeL", "rouge1", "coverage", "grounding")

# Headings: ATX (`## Usage`), setext (`Usage` over `-----`), HTML (`<h2>Usage</h2>`).
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_HTML_HEADING = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1>", re.IGNORECASE | re.DOTALL)
_URL = re.compile(r"(https?|ftp)://\S+|www\.\S+|\S+@\S+\.\w+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")  # `<br/>`, `<img src=...>`: markup, not paths
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_TOKEN = re.compile(r"[\w.~/-]+")
# Extensions a README plausibly names as files; a word like "e.g." or "Node.js" is not a file mention.
FILE_EXTENSIONS = frozenset(
    "py pyi ipynb md rst txt toml cfg ini yaml yml json lock xml html css scss js mjs cjs jsx ts tsx vue "
    "go mod rs c h cc cpp hpp cs csproj sln java kt kts gradle scala rb gemspec php swift m mm podspec "
    "sh bash ps1 bat sql r jl lua pl dart ex exs env conf dockerfile".split()
)
FILE_NAMES = frozenset(("Makefile", "Dockerfile", "Gemfile", "Rakefile", "Procfile", "Vagrantfile", "Justfile"))


def rouge_scores(prediction: str, reference: str) -> dict:
    """ROUGE-L and ROUGE-1 F1 (stemmed) against the reference's first REFERENCE_CHARS characters."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL", "rouge1"], use_stemmer=True)
    scores = scorer.score(reference[:REFERENCE_CHARS], prediction)
    return {"rougeL": scores["rougeL"].fmeasure, "rouge1": scores["rouge1"].fmeasure}


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every markdown or HTML heading, outside fenced code blocks."""
    found, in_fence, previous = [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence, previous = not in_fence, ""
            continue
        if in_fence:
            continue
        atx = _ATX.match(line)
        if atx:
            found.append((len(atx.group(1)), atx.group(2)))
        elif _SETEXT_UNDERLINE.match(line) and previous.strip() and not previous.lstrip().startswith(("-", "*", "|")):
            found.append((1 if line.strip()[0] == "=" else 2, previous.strip()))
        previous = line
    found += [(int(level), re.sub(r"<[^>]+>", "", body).strip()) for level, body in _HTML_HEADING.findall(text)]
    return found


def section_coverage(text: str) -> dict[str, bool]:
    """Which of SECTIONS have a heading; headings are classified by `instructions.section_kind`, the
    same keywords that label the training sections. An H1 counts as the title, as does an about-heading."""
    found = dict.fromkeys(SECTIONS, False)
    for level, title in headings(text):
        kind = section_kind(title)
        if level == 1 or kind == "about":
            found["title"] = True
        if kind in found:
            found[kind] = True
    return found


def coverage_share(coverage: dict[str, bool]) -> float:
    return sum(coverage.values()) / len(coverage)


def file_mentions(text: str) -> set[str]:
    """Things that look like files: a known extension or file name, or a slashed word written as
    `code`, `./x` or `x/` (a directory). Bare `and/or` in prose is not a path; URLs and HTML tags are dropped."""
    text = _HTML_TAG.sub(" ", _URL.sub(" ", text))
    code = " ".join(_CODE_SPAN.findall(text))
    mentions = set()
    for source, in_code in ((text, False), (code, True)):
        for token in _TOKEN.findall(source):
            path = token.strip(".-")
            if not path.strip("/~"):
                continue
            name = path.rstrip("/").rsplit("/", 1)[-1]
            stem, _, extension = name.rpartition(".")
            has_extension = bool(stem) and extension.lower() in FILE_EXTENSIONS
            # "Node.js", "Vue.js" in prose are products, not files; `App.js` in code is a file
            if has_extension and extension == "js" and stem[0].isupper() and "/" not in path and not in_code:
                continue
            slashed = "/" in token and (in_code or token.startswith(("./", "~/")) or token.endswith("/"))
            if has_extension or name in FILE_NAMES or slashed:
                mentions.add(path.removeprefix("./").strip("/"))
    return {m for m in mentions if m}


def grounding(text: str, file_tree) -> float | None:
    """Share of distinct file mentions that exist in the tree: as a path, a trailing part of a path
    (`main.py` for `src/main.py`), or a directory. None when the text mentions no file."""
    mentions = file_mentions(text)
    if not mentions:
        return None
    known: set[str] = set()
    for path in file_tree:
        parts = path.strip("/").split("/")
        # every contiguous run of components: "a/b/c.py" -> a, a/b, b, a/b/c.py, b/c.py, c.py ...
        known.update("/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1))
    return sum(mention in known for mention in mentions) / len(mentions)


@dataclass(frozen=True)
class EvalConfig:
    max_repos: int = 6  # held-out repositories to generate for; ~40 s each per model on 2 cores
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    device: str = "auto"  # auto | cpu | cuda
    # eval-loss sequence cap in tokens; match training's max_length. Prompts run 650-1,300 tokens
    # (Java/C# paths tokenize long), so 1536 leaves every sample some completion tokens to score.
    max_length: int = 1536
    max_loss_samples: int = 16  # test samples in the eval loss (~2-5 s each per model on 2 cores); 0 skips it

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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RepoScore(_Frozen):
    repo: str
    repo_url: str
    model: str
    rougeL: float
    rouge1: float
    coverage: dict[str, bool]
    grounding: float | None
    prediction: str


class ModelScore(_Frozen):
    rougeL: float
    rouge1: float
    coverage: float
    grounding: float | None  # mean over repos whose README mentions a file; None when none does
    eval_loss: float | None
    generation_s: float


class EvalReport(_Frozen):
    n_repos: int
    models: dict[str, ModelScore]  # "base", "fine_tuned"
    reference: dict[str, float | None]  # coverage and grounding of the real READMEs, for scale
    rows: list[RepoScore]
    n_loss_samples: int
    base_model_dir: str
    adapter_dir: str
    config: dict

    def delta(self, metric: str) -> float | None:
        base, tuned = getattr(self.models["base"], metric), getattr(self.models["fine_tuned"], metric)
        return None if base is None or tuned is None else tuned - base


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def score_prediction(record: RepoRecord, model: str, prediction: str) -> RepoScore:
    coverage = section_coverage(prediction)
    return RepoScore(
        repo=record.repo,
        repo_url=record.repo_url,
        model=model,
        coverage=coverage,
        grounding=grounding(prediction, record.file_tree),
        prediction=prediction,
        **rouge_scores(prediction, record.readme),
    )


def completion_ids(tokenizer, sample: SftSample) -> tuple[list[int], int]:
    """Token ids of prompt+completion in the chat template (as TRL builds them) and the prompt length."""
    pair = to_prompt_completion(sample)
    prompt = tokenizer.apply_chat_template(pair["prompt"], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(pair["prompt"] + pair["completion"], tokenize=False)
    if not full.startswith(prompt):
        raise ValueError(f"sample {sample.repo!r}: the chat template does not render the prompt as a prefix")
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    return prompt_ids + tokenizer(full[len(prompt) :], add_special_tokens=False).input_ids, len(prompt_ids)


def compute_eval_loss(model, tokenizer, samples: list[SftSample], max_length: int) -> float:
    """Mean cross-entropy over completion tokens only, token-weighted across samples; sequences are
    cut to max_length from the end (TRL's keep_start), so a sample whose prompt fills it adds nothing."""
    import torch

    total_loss, total_tokens = 0.0, 0
    for sample in samples:
        ids, prompt_len = completion_ids(tokenizer, sample)
        ids = ids[:max_length]
        if len(ids) <= prompt_len:
            continue
        input_ids = torch.tensor([ids], device=model.device)
        with torch.no_grad():
            logits = model(input_ids=input_ids).logits[0, :-1].float()
        # logits at position t predict token t+1; the first completion token is predicted at prompt_len-1
        targets = input_ids[0, 1:]
        losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")[prompt_len - 1 :]
        total_loss += losses.sum().item()
        total_tokens += losses.numel()
    if total_tokens == 0:
        raise ValueError(f"eval loss: no completion token fits in max_length={max_length} for {len(samples)} samples")
    return total_loss / total_tokens


def evaluate_models(
    base_model_dir,
    adapter_dir,
    test_records: list[RepoRecord],
    test_samples: list[SftSample],
    config: EvalConfig,
    progress: Progress | None = None,
) -> EvalReport:
    """Generate a README per held-out repository with the base model and with base+adapter; score both."""
    from moxi_pipeline.modeling import load_model, load_tokenizer

    if not test_records:
        raise ValueError("test_records is empty: the test split has no repositories to evaluate on")
    records = sorted(test_records, key=lambda r: r.repo_url)[: config.max_repos]
    loss_samples = test_samples[: config.max_loss_samples]
    items = [
        (r.repo, SampleInput(file_tree=r.file_tree, project_type=r.project_type, key_files=r.key_files)) for r in records
    ]
    tokenizer = load_tokenizer(base_model_dir)
    model = load_model(base_model_dir, config.device, adapter_dir=adapter_dir)
    rows, scores = [], {}
    for name in MODELS:
        # (label, done, total) over both models, so one progress bar covers the whole evaluation
        offset = len(rows)
        step = None if progress is None else (lambda repo, done, _t: progress(f"{name} {repo}", offset + done, 2 * len(items)))
        with model.disable_adapter() if name == "base" else nullcontext():
            started = time.perf_counter()
            predictions = generate_readmes(model, tokenizer, items, config.decoding, step)
            seconds = time.perf_counter() - started
            loss = compute_eval_loss(model, tokenizer, loss_samples, config.max_length) if loss_samples else None
        model_rows = [score_prediction(r, name, p) for r, p in zip(records, predictions)]
        rows += model_rows
        scores[name] = _model_score(model_rows, loss, seconds)
    return EvalReport(
        n_repos=len(records),
        models=scores,
        reference={
            "coverage": _mean(coverage_share(section_coverage(r.readme)) for r in records),
            "grounding": _mean(grounding(r.readme, r.file_tree) for r in records),
        },
        rows=rows,
        n_loss_samples=len(loss_samples),
        base_model_dir=str(base_model_dir),
        adapter_dir=str(adapter_dir),
        config=asdict(config),
    )


def _model_score(rows: list[RepoScore], eval_loss: float | None, seconds: float) -> ModelScore:
    return ModelScore(
        rougeL=_mean(r.rougeL for r in rows),
        rouge1=_mean(r.rouge1 for r in rows),
        coverage=_mean(coverage_share(r.coverage) for r in rows),
        grounding=_mean(r.grounding for r in rows),
        eval_loss=eval_loss,
        generation_s=seconds,
    )
