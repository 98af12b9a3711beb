"""The SFT dataset: one sample per README section the model writes, split by repository, written to disk.

Inference writes a README section by section (`compose.py`): the model writes About, Features and
Usage; Installation, License and Contributing are rendered from facts. So a chunk becomes a sample only
when it is one of the model's sections (`chunk_section`): the README's opening (About), a features
section, or a usage section, first chunk of each per repository. Each sample is the exact training twin
of a generation:
- the prompt is `compose.section_messages`' (facts block, the section's key files, the tree, the
  fixed section instruction), built from the same `repo_facts`;
- the answer opens with the same forced start (`# <name>` or `## Usage`) and continues with the real
  section, minus its own heading, HTML, badges and images, passed through the same grounding pass (a
  URL or path the repository does not hold is removed, a link keeps its text), and cut at a paragraph
  to `max_section_chars`, the length a generated section is budgeted.

The model therefore learns the prose of real READMEs, not their furniture: a run on real GitHub
READMEs without this learned badges and links and invented more of them.

With `instructions: openai`, the `sft_dataset` asset swaps each sample's instruction for one an
OpenAI-compatible model wrote for it (`instructions_openai.py`), after `assembly.dedupe_samples` has
removed duplicate answers; the prompt otherwise stays the one inference uses.

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

from moxi_pipeline.dataset.assembly import (
    LENGTHS_PNG,
    plot_lengths,
    provenance_section,
    write_chat_jsonl,
)
from moxi_pipeline.dataset.chunk import normalize_readme
from moxi_pipeline.readme.compose import section_input
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.prompts import section_instruction, section_prefix
from moxi_pipeline.readme.sections import H1_START, section_kind
from moxi_pipeline.records import (
    SPLITS,
    ReadmeChunk,
    RepoRecord,
    SampleInput,
    SftSample,
)

TRAIN_JSON = "training_dataset.json"  # the seed's data/sft/training_dataset.json
TEST_JSON = "test_dataset.json"
HF_DIR = "hf"
CARD = "README.md"

_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)|^\s*<h[1-6][\s>]", re.IGNORECASE)
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FEATURES = re.compile(r"\bfeatures?\b|\bhighlights?\b|\bwhat it does\b", re.IGNORECASE)
# HTML lines, badge/image-only lines, link reference definitions, HTML comments
_NOISE = re.compile(r"^\s*(<|\[!\[|!\[|\[[^\]]+\]:\s|-->)")


@dataclass(frozen=True)
class DatasetConfig:
    test_fraction: float = 0.2  # share of repositories held out; 41 repos -> 8 test
    seed: int = 0  # changes which repositories are held out
    min_content_chars: int = 40  # samples shorter than this teach nothing (a lone heading) and are dropped
    max_section_chars: int = 900  # ~250 tokens: what one generated section is budgeted (compose.SECTION_TOKENS)

    def __post_init__(self):
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {self.test_fraction}")
        if self.max_section_chars <= 0:
            raise ValueError(f"max_section_chars must be > 0, got {self.max_section_chars}")
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


def _check_inputs(records: list[RepoRecord], chunks: list[ReadmeChunk]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.repo_url in seen:
            raise ValueError(f"records: repo_url {record.repo_url!r} appears more than once")
        seen.add(record.repo_url)
    for chunk in chunks:
        if chunk.repo_url not in seen:
            raise ValueError(f"chunks: repo_url {chunk.repo_url!r} (chunk {chunk.chunk_index}) has no record")


def chunk_section(chunk: ReadmeChunk) -> str | None:
    """The outline section a chunk teaches (about, features, usage), or None for the fact sections
    (installation, license, contributing), which are rendered from facts and never generated."""
    title = chunk.section_title.strip()
    if chunk.chunk_index == 0 and (not title or H1_START.match(chunk.content)):
        return "about"
    if _FEATURES.search(title):
        return "features"
    return "usage" if title and section_kind(title) == "usage" else None


def section_body(content: str) -> str:
    """The chunk minus what the forced prefix already says (its heading or title) and minus page
    furniture a model cannot ground (HTML, badges and images). The body stops at its next heading, as
    generation does (`stop_at_heading`): a chunk that swallowed a short `## License` teaches nothing past it."""
    lines = normalize_readme(content).split("\n")
    heading = next((i for i, line in enumerate(lines) if _HEADING.match(line)), None)
    if heading is not None and not any(line.strip() for line in lines[:heading] if not _NOISE.match(line)):
        lines = lines[heading + 1 :]
        if lines and _SETEXT.match(lines[0]):
            lines = lines[1:]
    kept, in_code = [], False
    for line in lines:
        in_code ^= bool(_FENCE.match(line))  # a `# comment` in a code block is no heading
        if _HEADING.match(line) and not in_code:
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
    body, _ = ground_readme(section_body(chunk.content), evidence)
    body = _truncate(body.strip(), max_chars)
    if not body:
        return None
    prefix = section_prefix(section, facts)
    return SftSample(
        instruction=section_instruction(section, facts.name), input=section_input(section, record, facts),
        content=prefix + body, repo_url=record.repo_url, repo=record.repo, kind="section", split=split,
        section=section)


def build_sft_dataset(
    records: list[RepoRecord],
    chunks: list[ReadmeChunk],
    config: DatasetConfig,
    progress: Callable[[str], None] | None = None,
) -> list[SftSample]:
    """Per repository, one sample per chunk that is an about, features or usage section (the sections
    the model writes), with the same facts block and forced heading as inference and a grounded answer.
    Instructions are the fixed per-section ones, so that training and inference read the same words."""
    _check_inputs(records, chunks)
    report = progress or (lambda message: None)
    splits = split_by_repo([record.repo_url for record in records], config.test_fraction, config.seed)
    by_url = {record.repo_url: record for record in records}
    facts = {url: repo_facts(record) for url, record in by_url.items()}
    # a real README's author knows the project's own CLI where the facts may not see it: its `tool --help` stays
    evidence = {url: Evidence.of(facts[url], r.file_tree, r.key_files, model_text=False)
                for url, r in by_url.items()}
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


SECTIONS = ("about", "features", "usage")


def dataset_counts(samples: list[SftSample]) -> dict:
    """{"train": {"about": n, "features": m, "usage": u, "repos": r}, "test": {...}} for metadata and the card."""
    counts = {}
    for split in SPLITS:
        in_split = [sample for sample in samples if sample.split == split]
        sections = Counter(sample.section for sample in in_split)
        counts[split] = {**{name: sections[name] for name in SECTIONS},
                         "repos": len({sample.repo_url for sample in in_split})}
    return counts


def _alpaca_row(sample: SftSample) -> dict:
    """Alpaca's {instruction, input, output}; `input` stays the structured object (render it with
    prompts.render_input), and repo_url/repo/kind ride along so the file reads back into SftSample."""
    return {"instruction": sample.instruction, "input": sample.input.to_dict(), "output": sample.content,
            "repo_url": sample.repo_url, "repo": sample.repo, "kind": sample.kind, "section": sample.section}


def _hf_features():
    from datasets import Features, List, Value

    key_file = {"path": Value("string"), "content": Value("string")}
    sample_input = {"file_tree": List(Value("string")), "project_type": Value("string"), "key_files": List(key_file),
                    "facts": Value("string")}  # RepoFacts as JSON: its tuples and optionals do not fit one Arrow struct
    columns = ("instruction", "content", "repo_url", "repo", "kind", "split", "section")
    return Features({"input": sample_input, **{column: Value("string") for column in columns}})


def _hf_row(sample: SftSample) -> dict:
    row = sample.to_dict()
    row["input"]["facts"] = json.dumps(row["input"]["facts"]) if row["input"]["facts"] is not None else None
    return row


def _write_hf(samples: list[SftSample], path: Path) -> None:
    """A DatasetDict with train/test; `input` is a nested struct, so it loads back as a dict."""
    from datasets import Dataset, DatasetDict

    features = _hf_features()
    splits = {}
    for split in SPLITS:
        rows = [_hf_row(sample) for sample in samples if sample.split == split]
        # from_dict on columns, not from_list: an empty split still gets its schema
        splits[split] = Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)
    if path.exists():
        shutil.rmtree(path)  # save_to_disk refuses to write over an older dataset
    # one shard per split: an empty split would otherwise be saved with 0 shards and fail to load back
    DatasetDict(splits).save_to_disk(str(path), num_shards={split: 1 for split in SPLITS})


def render_card(samples: list[SftSample], digest: str, provenance: dict | None = None) -> str:
    """The dataset card: what is in each split, and how it was made (`assembly.provenance_section`)."""
    counts = dataset_counts(samples)
    types = Counter({sample.repo_url: sample.input.project_type for sample in samples}.values())
    rows = "\n".join(f"| {split} | {c['repos']} | {c['about']} | {c['features']} | {c['usage']} |"
                     for split, c in counts.items())
    type_rows = "\n".join(f"| {name} | {count} |" for name, count in sorted(types.items()))
    return f"""# Moxi SFT dataset

Supervised samples for writing README.md sections: `{{instruction, input: {{file_tree, project_type, key_files,
facts}}, content}}`, one per About, Features or Usage section of a real README, with the same facts block,
instruction and forced heading as `moxi generate`, and the answer passed through the same grounding pass.
Train and test are split by repository: no repository is in both.

dataset_hash: `{digest}`

| split | repositories | about | features | usage |
|---|---|---|---|---|
{rows}

| project type | repositories |
|---|---|
{type_rows}

Files: `{HF_DIR}/` (Hugging Face `datasets.DatasetDict`, load with `datasets.load_from_disk`),
`{TRAIN_JSON}` and `{TEST_JSON}` (Alpaca-style `{{instruction, input, output}}` where `input` is the
structured object above and `output` is the content).
""" + (("\n" + provenance_section(provenance)) if provenance is not None else "")


def write_sft_dataset(samples: list[SftSample], out_dir: Path, provenance: dict | None = None) -> dict:
    """Write hf/, the Alpaca JSON files, the chat JSONL files, the length histogram and the card into
    out_dir; return paths, counts and the hash."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = dataset_hash(samples)
    _write_hf(samples, out_dir / HF_DIR)
    for split, name in (("train", TRAIN_JSON), ("test", TEST_JSON)):
        rows = [_alpaca_row(sample) for sample in samples if sample.split == split]
        (out_dir / name).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    chat = write_chat_jsonl(samples, out_dir)
    plot_lengths(samples, out_dir / LENGTHS_PNG)
    (out_dir / CARD).write_text(render_card(samples, digest, provenance), encoding="utf-8")
    counts = dataset_counts(samples)
    return {
        "hf_path": str(out_dir / HF_DIR),
        "chat_jsonl": chat,
        "lengths_png": str(out_dir / LENGTHS_PNG),
        "train_json": str(out_dir / TRAIN_JSON),
        "test_json": str(out_dir / TEST_JSON),
        "card": str(out_dir / CARD),
        "counts": counts,
        "num_train": sum(counts["train"][name] for name in SECTIONS),
        "num_test": sum(counts["test"][name] for name in SECTIONS),
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
                repo_url=row["repo_url"], repo=row["repo"], kind=row["kind"], split=split,
                section=row.get("section", "")))
    return samples
