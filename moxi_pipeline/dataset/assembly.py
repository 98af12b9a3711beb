"""Dataset assembly around `dataset.build_sft_dataset`: duplicates out, an optional public dataset in, and the
extra exports (chat JSONL, a length histogram, the card's provenance section, the Hub).

- `dedupe_samples`: exact duplicates (same words, case and spacing aside) and near duplicates (word 3-gram
  Jaccard >= `threshold`, found with datasketch's MinHash LSH and confirmed on the exact shingle sets) are
  removed, keeping the first; samples come train first, so a test answer that copies a train answer goes.
- `load_public_samples`: rows with `instruction` and `output` (Alpaca) from a local .json/.jsonl file, a
  `datasets` folder saved with `save_to_disk`, or a Hugging Face dataset name; at most `size` rows, all train.
- `write_chat_jsonl`, `plot_lengths`, `provenance_section`: called by `dataset.write_sft_dataset`.
- `push_dataset`: a thin `DatasetDict.push_to_hub`, called only when a token and a repo id are set.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

from moxi_pipeline.readme.prompts import build_messages
from moxi_pipeline.records import SPLITS, SampleInput, SftSample
from moxi_pipeline.storage.jsonl import read_json_lines, read_text

CHAT_JSONL = {"train": "train_messages.jsonl", "test": "test_messages.jsonl"}
LENGTHS_PNG = "lengths.png"
SHINGLE_WORDS = 3
NUM_PERM = 128  # MinHash permutations: Jaccard estimates within ~0.09 (1/sqrt(128)); candidates are confirmed exactly


def _body(sample: SftSample) -> str:
    """The answer without its forced heading (`# name` differs per repository even when the text is the same)."""
    return sample.content.split("\n\n", 1)[-1]


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)}
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def dedupe_samples(samples: list[SftSample], threshold: float = 0.8) -> tuple[list[SftSample], dict[str, int]]:
    """(kept samples in order, {"exact": n, "near": m} removed)."""
    from datasketch import MinHash, MinHashLSH

    if not 0 < threshold <= 1:
        raise ValueError(f"dedupe_threshold must be in (0, 1], got {threshold}")
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    seen_exact: set[str] = set()
    kept_shingles: dict[str, set[str]] = {}
    kept, removed = [], Counter({"exact": 0, "near": 0})
    for index, sample in enumerate(samples):
        shingles = _shingles(_body(sample))
        digest = hashlib.sha256(" ".join(re.findall(r"\w+", _body(sample).lower())).encode()).hexdigest()
        if digest in seen_exact:
            removed["exact"] += 1
            continue
        minhash = MinHash(num_perm=NUM_PERM, seed=1)
        minhash.update_batch([shingle.encode() for shingle in shingles])
        if any(len(shingles & kept_shingles[key]) / len(shingles | kept_shingles[key]) >= threshold
               for key in lsh.query(minhash)):
            removed["near"] += 1
            continue
        seen_exact.add(digest)
        kept_shingles[str(index)] = shingles
        lsh.insert(str(index), minhash)
        kept.append(sample)
    return kept, dict(removed)


def _public_rows(source: str) -> list[dict]:
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".jsonl":
        return read_json_lines(path)  # "\n" only; a bad line names the file and the line
    if path.is_file():
        try:
            rows = json.loads(read_text(path))
        except json.JSONDecodeError as error:
            raise ValueError(f"public_dataset {source}: not JSON ({error})") from None
        if not isinstance(rows, list):
            raise ValueError(f"public_dataset {source}: expected a JSON list of rows")
        if bad := [index for index, row in enumerate(rows) if not isinstance(row, dict)]:
            raise ValueError(f"public_dataset {source}: row {bad[0]} is {type(rows[bad[0]]).__name__}, expected an "
                             "object with instruction, input and output")
        return rows
    import datasets

    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        return list(loaded["train"] if isinstance(loaded, datasets.DatasetDict) else loaded)
    return list(datasets.load_dataset(source, split="train"))  # a Hugging Face dataset name: needs the network


def load_public_samples(source: str, size: int) -> list[SftSample]:
    """Up to `size` rows of a public instruction dataset as train samples (kind "readme", no repository context)."""
    if size < 1:
        raise ValueError(f"public_dataset_size must be >= 1, got {size}")
    samples = []
    for number, row in enumerate(_public_rows(source)[:size], start=1):
        instruction = str(row.get("instruction") or "").strip()
        extra = row.get("input")
        output = str(row.get("output") or row.get("content") or "").strip()
        if not instruction or not output:
            raise ValueError(f"public_dataset {source} row {number}: needs non-empty `instruction` and `output`")
        if isinstance(extra, str) and extra.strip():
            instruction = f"{instruction}\n\n{extra.strip()}"
        samples.append(SftSample(
            instruction=instruction, input=SampleInput(file_tree=(), project_type="unknown"), content=output,
            repo_url=f"public:{source}#{number}", repo=Path(source).name or source, kind="readme", split="train"))
    return samples


def write_chat_jsonl(samples: list[SftSample], out_dir: Path) -> dict[str, str]:
    """One `{"messages": [system, user, assistant]}` line per sample and split: the prompt `moxi generate` builds."""
    paths = {}
    for split in SPLITS:
        path = Path(out_dir) / CHAT_JSONL[split]
        lines = [json.dumps({"messages": build_messages(s.instruction, s.input, s.repo)
                             + [{"role": "assistant", "content": s.content}]}, ensure_ascii=False)
                 for s in samples if s.split == split]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths[split] = str(path)
    return paths


def plot_lengths(samples: list[SftSample], path: Path) -> Path:
    """Histograms of answer and instruction lengths (characters), train and test overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, (label, length) in zip(axes, (("answer", lambda s: len(s.content)),
                                            ("instruction", lambda s: len(s.instruction)))):
        for split in SPLITS:
            values = [length(s) for s in samples if s.split == split]
            if values:
                axis.hist(values, bins=20, alpha=0.6, label=f"{split} ({len(values)})")
        axis.set_xlabel(f"{label} length (characters)")
        axis.set_ylabel("samples")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)


def provenance_section(provenance: dict) -> str:
    """The card's "How it was made": generator, sources, split, duplicates removed, public rows merged."""
    removed = provenance.get("duplicates_removed", {})
    sources = ", ".join(f"{name}: {count}" for name, count in sorted(provenance.get("sources", {}).items()))
    split = provenance.get("split", {})
    lines = [
        "## How it was made", "",
        f"- generator: `{provenance.get('generator', 'template')}`",
        f"- sources (repositories): {sources or 'n/a'}",
        f"- split: by repository, test_fraction={split.get('test_fraction')}, seed={split.get('seed')}",
        f"- duplicates removed: {removed.get('exact', 0)} exact, {removed.get('near', 0)} near "
        f"(word 3-gram Jaccard >= {provenance.get('dedupe_threshold')})",
        f"- public dataset: {provenance.get('public_dataset') or 'none'} ({provenance.get('public_samples', 0)} samples)",
        "", f"![length histograms]({LENGTHS_PNG})", "",
        f"Chat format: `{CHAT_JSONL['train']}` and `{CHAT_JSONL['test']}`, one `{{\"messages\": [...]}}` per line.", "",
    ]
    return "\n".join(lines)


def push_dataset(hf_path: str, repo_id: str, token: str) -> None:
    """Upload the saved DatasetDict; only called when HF_TOKEN and MOXI_HF_DATASET_REPO are set."""
    import datasets

    datasets.load_from_disk(hf_path).push_to_hub(repo_id, token=token)
