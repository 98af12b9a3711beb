"""Preference pairs for DPO: the real README section against the SFT adapter's own answer to the same prompt.

- prompt: a train-split SFT sample's prompt (the prompts `sft_dataset` trains on);
- chosen: that sample's content, the real section cleaned and grounded exactly as the SFT answer is; or, given
  `chosen` (MOXI_PREFERENCES=openai, `preferences_openai.py`), an OpenAI-compatible model's grounded answer;
- rejected: the SFT adapter's generation for the prompt, raw, *before* the grounding pass, so what grounding
  would cut (invented paths, URLs, commands; repetition; copied key files) is what DPO teaches it to avoid.
  It opens with the chosen answer's heading, forced as generation forces it (`answer_heading`): left to open
  the answer itself, the model writes `#`, which with the prompt's last newline is the `\n#` that stops a
  section, and the rejected answer was a lone `#` (found on the `cpu` profile: 192 of 192).

A pair is kept when ROUGE-L(chosen, rejected) < `max_rouge_l`: a rejected answer close to the real one teaches
nothing. Generation is batched and resumable: each batch's answers are appended to a progress JSONL, and a
re-run generates only the prompts that file lacks.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from moxi_pipeline.readme.decoding import DecodingConfig, generate_ids
from moxi_pipeline.readme.prompts import to_prompt_completion
from moxi_pipeline.records import SftSample
from moxi_pipeline.storage.append_log import AppendLog
from moxi_pipeline.training.tokenize import chat_text

SKIP_EMPTY = "rejected answer is empty (nothing past its heading)"
SKIP_CLOSE = "rejected too close to chosen (ROUGE-L >= max_rouge_l)"
SKIP_NO_CHOSEN = "no chosen answer"
ANSWER_FORMAT = 2  # progress rows of another format (1: answers not opened with the heading) are generated again
# the repetition penalty every measured DPO adapter's rejected answers were sampled with (generation's default was
# 1.15 then; it is 1.0 now), kept so the DPO recipe stays the one measured
PAIR_REPETITION_PENALTY = 1.15


@dataclass(frozen=True)
class PreferenceConfig:
    max_rouge_l: float = 0.5  # keep a pair only when the answers differ: ROUGE-L F1 under this
    max_pairs: int | None = None  # at most this many train prompts (None: all)
    max_skipped_share: float = 0.9  # fail when more of the prompts than this give no pair
    # sampled, as the model answers in use would vary; short, as DPO on CPU trains on a few hundred tokens; the
    # repetition penalty the measured DPO adapters' rejected answers were sampled with (PAIR_REPETITION_PENALTY)
    decoding: DecodingConfig = field(default_factory=lambda: DecodingConfig(
        max_new_tokens=160, temperature=0.7, top_p=0.9, batch_size=4, stop_at_heading=True,
        repetition_penalty=PAIR_REPETITION_PENALTY))

    def __post_init__(self) -> None:
        if not 0 < self.max_rouge_l <= 1:
            raise ValueError(f"PreferenceConfig.max_rouge_l must be in (0, 1], got {self.max_rouge_l!r}")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ValueError(f"PreferenceConfig.max_pairs must be >= 1 or None, got {self.max_pairs!r}")
        if not 0 <= self.max_skipped_share <= 1:
            raise ValueError(f"PreferenceConfig.max_skipped_share must be in [0, 1], got {self.max_skipped_share!r}")


@dataclass(frozen=True)
class PreferencePair:
    key: str  # the prompt's hash: what the progress file is keyed on
    repo_url: str
    section: str
    prompt: list[dict]  # chat messages, as the SFT sample's prompt
    chosen: str
    rejected: str
    rouge_l: float

    def to_dpo_row(self) -> dict:
        """TRL's conversational preference format."""
        return {"prompt": self.prompt, "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}]}


@dataclass(frozen=True)
class PreferenceResult:
    pairs: list[PreferencePair]
    skipped: dict[str, int]  # reason -> count
    generated: int  # answers generated in this call; the rest came from the progress file


def prompt_key(sample: SftSample) -> str:
    text = json.dumps([sample.repo_url, sample.section, to_prompt_completion(sample)["prompt"]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def answer_heading(sample: SftSample) -> str:
    """What the rejected answer is forced to open with: the real section's heading line ("## Usage\\n\\n"),
    as `compose` forces a section's heading at generation; "" when the section opens with no heading."""
    first = sample.content.lstrip().split("\n", 1)[0]
    return first + "\n\n" if first.startswith("#") else ""


def train_prompts(samples: list[SftSample], config: PreferenceConfig) -> list[SftSample]:
    """The train-split samples whose prompts become pairs, in order."""
    return [s for s in samples if s.split == "train"][: config.max_pairs]


def build_preference_pairs(model, tokenizer, samples: list[SftSample], config: PreferenceConfig,
                           progress_path: str | Path, chosen: dict[str, str] | None = None) -> PreferenceResult:
    """One pair per train-split sample whose rejected answer differs enough; answers resume from `progress_path`.
    `chosen`: prompt key -> chosen answer, replacing the real section; a prompt it lacks gives no pair."""
    train = train_prompts(samples, config)
    if not train:
        raise ValueError("preference pairs need train-split SFT samples; sft_dataset has none")
    log = AppendLog(progress_path)
    answers = {row["key"]: row["rejected"] for row in log.read() if row.get("format") == ANSWER_FORMAT}
    # a prompt with no chosen answer gives no pair: its rejected answer is not worth generating
    todo = [s for s in train if prompt_key(s) not in answers and (chosen is None or prompt_key(s) in chosen)]
    size = config.decoding.batch_size
    for start in range(0, len(todo), size):
        batch = todo[start : start + size]
        heads = [answer_heading(s) for s in batch]
        prompts = [tokenizer(chat_text(tokenizer, to_prompt_completion(s)["prompt"], True) + head,
                             add_special_tokens=False)["input_ids"] for s, head in zip(batch, heads)]
        for sample, head, ids in zip(batch, heads, generate_ids(model, tokenizer, prompts, config.decoding)):
            answers[prompt_key(sample)] = (head + tokenizer.decode(ids, skip_special_tokens=True)).strip()
            log.append({"key": prompt_key(sample), "rejected": answers[prompt_key(sample)], "format": ANSWER_FORMAT})
    pairs, skipped = [], Counter()
    for sample in train:
        rejected = answers.get(prompt_key(sample), "")
        if rejected.strip() == answer_heading(sample).strip():
            rejected = ""  # the heading alone: the model wrote nothing
        best = sample.content if chosen is None else chosen.get(prompt_key(sample), "")
        score = rouge_l(best, rejected) if rejected and best else 0.0
        if not best:
            skipped[SKIP_NO_CHOSEN] += 1
        elif not rejected:
            skipped[SKIP_EMPTY] += 1
        elif score >= config.max_rouge_l:
            skipped[SKIP_CLOSE] += 1
        else:
            pairs.append(PreferencePair(prompt_key(sample), sample.repo_url, sample.section,
                                        to_prompt_completion(sample)["prompt"], best, rejected, score))
    if sum(skipped.values()) > config.max_skipped_share * len(train) or not pairs:
        raise ValueError(f"preference pairs: {sum(skipped.values())} of {len(train)} prompts gave no pair, more than "
                         f"max_skipped_share={config.max_skipped_share} ({dict(skipped)})")
    return PreferenceResult(pairs, dict(skipped), generated=len(todo))


def rouge_l(reference: str, prediction: str) -> float:
    """ROUGE-L F1, stemmed, as evaluation.metrics scores READMEs (duplicated: training sits below evaluation)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure


def grounding_counts(pairs: list[PreferencePair], samples: list[SftSample]) -> dict:
    """What the grounding pass would remove from the rejected answers, against each prompt's own tree, key files
    and facts: items removed by kind, and how many rejected answers had at least one of that kind."""
    from moxi_pipeline.readme.evidence import Evidence
    from moxi_pipeline.readme.grounding import GroundingReport, ground_readme
    from moxi_pipeline.records import RepoFacts

    by_key = {prompt_key(sample): sample for sample in samples}
    removed = dict.fromkeys(GroundingReport.KINDS, 0)
    answers_with = dict.fromkeys(GroundingReport.KINDS, 0)
    answers_with_any = 0
    for pair in pairs:
        sample = by_key.get(pair.key)
        if sample is None:
            raise ValueError(f"preference pair {pair.key} ({pair.repo_url}): no SFT sample has its prompt")
        facts = sample.input.facts or RepoFacts(name=sample.repo)
        _, report = ground_readme(pair.rejected, Evidence.of(facts, sample.input.file_tree, sample.input.key_files))
        for kind in GroundingReport.KINDS:
            removed[kind] += getattr(report, kind)
            answers_with[kind] += getattr(report, kind) > 0
        answers_with_any += report.total() > 0
    return {"removed": removed, "answers_with": answers_with, "answers_with_any": answers_with_any}


def plot_lengths(pairs: list[PreferencePair], path: str | Path) -> Path:
    """Histograms of chosen and rejected lengths in characters, overlaid."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3))
    for name in ("chosen", "rejected"):
        axis.hist([len(getattr(pair, name)) for pair in pairs], bins=20, alpha=0.6, label=name)
    axis.set_xlabel("characters")
    axis.set_ylabel("pairs")
    axis.legend()
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def write_pairs(pairs: list[PreferencePair], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(pair), ensure_ascii=False) + "\n" for pair in pairs))
    return path


def read_pairs(path: str | Path) -> list[PreferencePair]:
    return [PreferencePair(**json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]
