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
from moxi_pipeline.instructions import InstructionGenerator, readme_instruction
from moxi_pipeline.prompts import response_prefix
from moxi_pipeline.records import SPLITS, ReadmeChunk, RepoRecord, SampleInput, SftSample

TRAIN_JSON = "training_dataset.json"  # the seed's data/sft/training_dataset.json
TEST_JSON = "test_dataset.json"
HF_DIR = "hf"
CARD = "README.md"

_ATX_H1 = re.compile(r"^ {0,3}#(\s.*)?$")
_SETEXT_H1 = re.compile(r"^ {0,3}=+\s*$")


@dataclass(frozen=True)
class DatasetConfig:
    test_fraction: float = 0.2  # share of repositories held out; 41 repos -> 8 test
    seed: int = 0  # changes which repositories are held out
    max_readme_chars: int = 4000  # ~1000 tokens: a whole README above this gets no `readme` sample
    min_content_chars: int = 40  # samples shorter than this teach nothing (a lone heading) and are dropped

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


def build_sft_dataset(
    records: list[RepoRecord],
    chunks: list[ReadmeChunk],
    generator: InstructionGenerator,
    config: DatasetConfig,
    progress: Callable[[str], None] | None = None,
) -> list[SftSample]:
    """Per repository: a section sample for each chunk, then its whole-README sample when it fits."""
    instructions = generator.instructions_for(chunks)
    _check_inputs(records, chunks, instructions)
    report = progress or (lambda message: None)
    splits = split_by_repo([record.repo_url for record in records], config.test_fraction, config.seed)
    by_repo: dict[str, list[SftSample]] = {record.repo_url: [] for record in records}
    too_short, too_long = 0, 0
    for chunk, instruction in zip(chunks, instructions):
        if len(chunk.content.strip()) < config.min_content_chars:
            too_short += 1
            report(f"skipped {chunk.repo_url} chunk {chunk.chunk_index}: {len(chunk.content.strip())} chars "
                   f"< min_content_chars={config.min_content_chars}")
            continue
        by_repo[chunk.repo_url].append(SftSample(
            instruction=instruction, input=_sample_input(chunk), content=chunk.content, repo_url=chunk.repo_url,
            repo=chunk.repo, kind="section", split=splits[chunk.repo_url]))
    for record in records:
        content = readme_content(record)
        if len(content) > config.max_readme_chars:
            too_long += 1  # expected for long READMEs: their chunks still train; not worth a log line each
            continue
        if len(content.strip()) < config.min_content_chars:
            too_short += 1
            report(f"skipped whole README of {record.repo_url}: {len(content.strip())} chars "
                   f"< min_content_chars={config.min_content_chars}")
            continue
        by_repo[record.repo_url].append(SftSample(
            instruction=readme_instruction(record.repo, record.project_type), input=_sample_input(record),
            content=content, repo_url=record.repo_url, repo=record.repo, kind="readme",
            split=splits[record.repo_url]))
    # train first, then test, each in record order: the order the JSON files hold, so a reload hashes the same
    samples = [sample for split in SPLITS for repo_samples in by_repo.values() for sample in repo_samples
               if sample.split == split]
    if not samples:
        raise ValueError(
            f"sft_dataset is empty after filtering: {len(chunks)} chunks and {len(records)} READMEs, "
            f"{too_short} samples shorter than min_content_chars={config.min_content_chars}, "
            f"{too_long} READMEs longer than max_readme_chars={config.max_readme_chars}")
    report(f"{len(samples)} samples; {too_short} too short, {too_long} READMEs too long for a readme sample")
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
