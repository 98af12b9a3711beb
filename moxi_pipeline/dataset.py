"""The SFT dataset: samples from README chunks and whole READMEs, split by repository, written to disk.

Two kinds of sample share one format `{instruction, input: {file_tree, project_type, key_files}, content}`:
- `section`: one per chunk, instruction from an `InstructionGenerator`, content = the chunk text.
- `readme`: one per repository whose whole README fits `max_readme_chars`, instruction =
  `readme_instruction(repo, project_type)`, the same words `moxi generate` uses.

Whole-README title rule: inference forces the answer to open with `prompts.response_prefix(repo)`
(`# <repo>\n`), so every `readme` sample opens with exactly that line. A README whose first non-blank
line is an H1 (`# Title` or a setext `Title\n===`) has that H1 replaced by `# <repo>`: the model never
writes the title line at inference, and keeping both would teach it a duplicate title. Any other
opening (badges, `<p align="center">`, an H2, prose) is kept, after the prefix and a blank line.
The original title still appears in the repository's first `section` sample.

The split is by repository (hash of seed + repo_url), so no repository is in both train and test:
test-split samples give eval loss, and the test repositories are the ones eval writes READMEs for.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from moxi_pipeline.chunk import normalize_readme
from moxi_pipeline.compose import section_input, section_training_prefix
from moxi_pipeline.facts import repo_facts
from moxi_pipeline.grounding import Evidence, ground_readme
from moxi_pipeline.instructions import _H1_START, InstructionGenerator, section_kind
from moxi_pipeline.prompts import response_prefix, section_instruction
from moxi_pipeline.records import SPLITS, ReadmeChunk, RepoRecord, SampleInput, SftSample

TRAIN_JSON = "training_dataset.json"  # the seed's data/sft/training_dataset.json
TEST_JSON = "test_dataset.json"
HF_DIR = "hf"
CARD = "README.md"

_ATX_H1 = re.compile(r"^ {0,3}#(\s.*)?$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)|^\s*<h[1-6][\s>]", re.IGNORECASE)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FEATURES = re.compile(r"\bfeatures?\b|\bhighlights?\b|\bwhat it does\b", re.IGNORECASE)
# HTML lines, badge/image-only lines, link reference definitions, HTML comments
_NOISE = re.compile(r"^\s*(<|\[!\[|!\[|\[[^\]]+\]:\s|-->)")
_SETEXT_H1 = re.compile(r"^ {0,3}=+\s*$")


@dataclass(frozen=True)
class DatasetConfig:
    test_fraction: float = 0.2  # share of repositories held out; 41 repos -> 8 test
    seed: int = 0  # changes which repositories are held out
    max_readme_chars: int = 4000  # ~1000 tokens: a whole README above this gets no `readme` sample
    min_content_chars: int = 40  # samples shorter than this teach nothing (a lone heading) and are dropped
    max_section_chars: int = 900  # ~250 tokens: what one generated section is budgeted (compose.SECTION_TOKENS)

    def __post_init__(self):
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {self.test_fraction}")
        if self.max_readme_chars <= 0:
            raise ValueError(f"max_readme_chars must be > 0, got {self.max_readme_chars}")
        if self.min_content_chars < 0:
            raise ValueError(f"min_content_chars must be >= 0, got {self.min_content_chars}")


def split_by_repo(repo_urls: Iterable[str], test_fraction: float, seed: int) -> dict[str, str]:
    """repo_url -> "train" | "test". Order-independent; with >= 2 repositories both splits are non-empty."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    urls = sorted(set(repo_urls), key=lambda url: (hashlib.sha256(f"{seed}\n{url}".encode()).hexdigest(), url))
    n_test = round(len(urls) * test_fraction)
    if len(urls) >= 2:
        n_test = min(max(n_test, 1), len(urls) - 1)
    else:
        n_test = 0  # a single repository trains; there is nothing to hold out
    return {url: ("test" if index < n_test else "train") for index, url in enumerate(urls)}


def readme_content(record: RepoRecord) -> str:
    """The whole README as a `readme` sample's content: opens with response_prefix(repo) (see module doc)."""
    lines = normalize_readme(record.readme).strip().split("\n")
    if _ATX_H1.match(lines[0]):
        lines = lines[1:]
    elif len(lines) > 1 and _SETEXT_H1.match(lines[1]) and not lines[0].lstrip().startswith(("<", "|", "-", "*")):
        lines = lines[2:]
    body = "\n".join(lines).strip()
    return response_prefix(record.repo) + ("\n" + body if body else "")


def _sample_input(source: RepoRecord | ReadmeChunk) -> SampleInput:
    return SampleInput(file_tree=source.file_tree, project_type=source.project_type, key_files=source.key_files)


def _check_inputs(records: list[RepoRecord], chunks: list[ReadmeChunk], instructions: list[str]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.repo_url in seen:
            raise ValueError(f"records: repo_url {record.repo_url!r} appears more than once")
        seen.add(record.repo_url)
    for chunk in chunks:
        if chunk.repo_url not in seen:
            raise ValueError(f"chunks: repo_url {chunk.repo_url!r} (chunk {chunk.chunk_index}) has no record")
    if len(instructions) != len(chunks):
        raise ValueError(f"instruction generator returned {len(instructions)} instructions for {len(chunks)} chunks")


def chunk_section(chunk: ReadmeChunk) -> str | None:
    """The outline section a chunk teaches (about, features, usage), or None for the fact sections
    (installation, license, contributing), which are rendered from facts and never generated."""
    title = chunk.section_title.strip()
    if chunk.chunk_index == 0 and (not title or _H1_START.match(chunk.content)):
        return "about"
    if _FEATURES.search(title):
        return "features"
    return "usage" if title and section_kind(title) == "usage" else None


def _section_body(content: str, section: str) -> str:
    """The chunk minus what the forced prefix already says (its heading or title) and minus page
    furniture a model cannot ground (HTML, badges and images); the about body stops at its first heading."""
    lines = normalize_readme(content).split("\n")
    heading = next((i for i, line in enumerate(lines) if _HEADING.match(line)), None)
    if heading is not None and not any(line.strip() for line in lines[:heading] if not _NOISE.match(line)):
        lines = lines[heading + 1 :]
        if lines and _SETEXT.match(lines[0]):
            lines = lines[1:]
    kept = []
    for line in lines:
        if section == "about" and _HEADING.match(line):
            break
        if not _NOISE.match(line):
            kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _truncate(text: str, max_chars: int) -> str:
    """At most max_chars, cut at the last paragraph (else line) boundary: a section ends on a whole thought."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    cut = head.rfind("\n\n")
    cut = cut if cut > max_chars // 3 else head.rfind("\n")
    return head[:cut].rstrip() if cut > 0 else head.rstrip()


def section_sample(record: RepoRecord, chunk: ReadmeChunk, section: str, facts, evidence, split: str,
                   max_chars: int) -> SftSample | None:
    """The training twin of one generated section: same prompt, same forced start, a grounded answer."""
    body, _ = ground_readme(_section_body(chunk.content, section), evidence)
    body = _truncate(body.strip(), max_chars)
    if not body:
        return None
    prefix = section_training_prefix(section, record, facts)
    return SftSample(
        instruction=section_instruction(section, facts.name), input=section_input(section, record, facts),
        content=prefix + body, repo_url=record.repo_url, repo=record.repo, kind="section", split=split,
        section=section)


def build_sft_dataset(
    records: list[RepoRecord],
    chunks: list[ReadmeChunk],
    generator: InstructionGenerator | None,
    config: DatasetConfig,
    progress: Callable[[str], None] | None = None,
) -> list[SftSample]:
    """Per repository, one sample per chunk that is an about, features or usage section (the sections
    the model writes), with the same facts block and forced heading as inference and a grounded answer.

    `generator` is accepted for the instruction backends; section prompts use the fixed per-section
    instruction so that training and inference read the same words."""
    _check_inputs(records, chunks, [""] * len(chunks))
    report = progress or (lambda message: None)
    splits = split_by_repo([record.repo_url for record in records], config.test_fraction, config.seed)
    by_url = {record.repo_url: record for record in records}
    facts = {url: repo_facts(record) for url, record in by_url.items()}
    evidence = {url: Evidence.of(facts[url], r.file_tree, r.key_files) for url, r in by_url.items()}
    by_repo: dict[str, list[SftSample]] = {record.repo_url: [] for record in records}
    skipped: Counter = Counter()
    for chunk in chunks:
        section = chunk_section(chunk)
        if section is None or section in {s.section for s in by_repo[chunk.repo_url]}:
            skipped["not a generated section" if section is None else "later chunk of a section"] += 1
            continue
        sample = section_sample(by_url[chunk.repo_url], chunk, section, facts[chunk.repo_url],
                                evidence[chunk.repo_url], splits[chunk.repo_url], config.max_section_chars)
        if sample is None or len(sample.content) - sample.content.find("\n\n") < config.min_content_chars:
            skipped[f"shorter than min_content_chars={config.min_content_chars} once grounded"] += 1
            report(f"skipped {chunk.repo_url} chunk {chunk.chunk_index}: too short once grounded")
            continue
        by_repo[chunk.repo_url].append(sample)
    samples = [sample for split in SPLITS for repo_samples in by_repo.values() for sample in repo_samples
               if sample.split == split]
    if not samples:
        raise ValueError(
            f"sft_dataset is empty after filtering: {len(chunks)} chunks of {len(records)} READMEs gave no "
            f"about/features/usage section; skipped: {dict(skipped)}")
    report(f"{len(samples)} samples; skipped {dict(skipped)}")
    return samples


def dataset_hash(samples: Iterable[SftSample]) -> str:
    """sha256 over the samples in order, so an adapter can name the exact data it was trained on."""
    payload = json.dumps([sample.to_dict() for sample in samples], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def dataset_counts(samples: list[SftSample]) -> dict:
    """{"train": {"section": n, "readme": m, "repos": r}, "test": {...}} for metadata and the card."""
    counts = {}
    for split in SPLITS:
        in_split = [sample for sample in samples if sample.split == split]
        kinds = Counter(sample.kind for sample in in_split)
        counts[split] = {"section": kinds["section"], "readme": kinds["readme"],
                         "repos": len({sample.repo_url for sample in in_split})}
    return counts


def _alpaca_row(sample: SftSample) -> dict:
    """Alpaca's {instruction, input, output}; `input` stays the structured object (render it with
    prompts.render_input), and repo_url/repo/kind ride along so the file reads back into SftSample."""
    return {"instruction": sample.instruction, "input": sample.input.to_dict(), "output": sample.content,
            "repo_url": sample.repo_url, "repo": sample.repo, "kind": sample.kind}


def _hf_features():
    from datasets import Features, List, Value

    key_file = {"path": Value("string"), "content": Value("string")}
    sample_input = {"file_tree": List(Value("string")), "project_type": Value("string"), "key_files": List(key_file)}
    columns = ("instruction", "content", "repo_url", "repo", "kind", "split")
    return Features({"input": sample_input, **{column: Value("string") for column in columns}})


def _write_hf(samples: list[SftSample], path: Path) -> None:
    """A DatasetDict with train/test; `input` is a nested struct, so it loads back as a dict."""
    from datasets import Dataset, DatasetDict

    features = _hf_features()
    splits = {}
    for split in SPLITS:
        rows = [sample.to_dict() for sample in samples if sample.split == split]
        # from_dict on columns, not from_list: an empty split still gets its schema
        splits[split] = Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)
    if path.exists():
        shutil.rmtree(path)  # save_to_disk refuses to write over an older dataset
    # one shard per split: an empty split would otherwise be saved with 0 shards and fail to load back
    DatasetDict(splits).save_to_disk(str(path), num_shards={split: 1 for split in SPLITS})


def render_card(samples: list[SftSample], digest: str) -> str:
    """The dataset card: what is in each split, and how it was made."""
    counts = dataset_counts(samples)
    types = Counter({sample.repo_url: sample.input.project_type for sample in samples}.values())
    rows = "\n".join(f"| {split} | {c['repos']} | {c['section']} | {c['readme']} |" for split, c in counts.items())
    type_rows = "\n".join(f"| {name} | {count} |" for name, count in sorted(types.items()))
    return f"""# Moxi SFT dataset

Supervised samples for writing README.md files: `{{instruction, input: {{file_tree, project_type, key_files}},
content}}`. `section` samples are markdown-aware README chunks with a template instruction per section kind;
`readme` samples are whole READMEs (within the length budget) that open with `# <repo>` and use the same
instruction as `moxi generate`. Train and test are split by repository: no repository is in both.

dataset_hash: `{digest}`

| split | repositories | section samples | readme samples |
|---|---|---|---|
{rows}

| project type | repositories |
|---|---|
{type_rows}

Files: `{HF_DIR}/` (Hugging Face `datasets.DatasetDict`, load with `datasets.load_from_disk`),
`{TRAIN_JSON}` and `{TEST_JSON}` (Alpaca-style `{{instruction, input, output}}` where `input` is the
structured object above and `output` is the content).
"""


def write_sft_dataset(samples: list[SftSample], out_dir: Path) -> dict:
    """Write hf/, the Alpaca JSON files and the card into out_dir; return paths, counts and the hash."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = dataset_hash(samples)
    _write_hf(samples, out_dir / HF_DIR)
    for split, name in (("train", TRAIN_JSON), ("test", TEST_JSON)):
        rows = [_alpaca_row(sample) for sample in samples if sample.split == split]
        (out_dir / name).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / CARD).write_text(render_card(samples, digest), encoding="utf-8")
    counts = dataset_counts(samples)
    return {
        "hf_path": str(out_dir / HF_DIR),
        "train_json": str(out_dir / TRAIN_JSON),
        "test_json": str(out_dir / TEST_JSON),
        "card": str(out_dir / CARD),
        "counts": counts,
        "num_train": counts["train"]["section"] + counts["train"]["readme"],
        "num_test": counts["test"]["section"] + counts["test"]["readme"],
        "dataset_hash": digest,
    }


def load_sft_dataset(out_dir: Path) -> list[SftSample]:
    """Samples back from the Alpaca JSON files: train then test, in written order."""
    samples = []
    for split, name in (("train", TRAIN_JSON), ("test", TEST_JSON)):
        path = Path(out_dir) / name
        if not path.is_file():
            raise ValueError(f"sft dataset file {name} not found in {out_dir}")
        for row in json.loads(path.read_text(encoding="utf-8")):
            samples.append(SftSample(
                instruction=row["instruction"], input=SampleInput(**row["input"]), content=row["output"],
                repo_url=row["repo_url"], repo=row["repo"], kind=row["kind"], split=split))
    return samples
