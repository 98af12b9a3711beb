from __future__ import annotations

import json
import re

import pytest

from moxi_pipeline.dataset.chunk import chunk_records
from moxi_pipeline.dataset.samples import (
    DatasetConfig,
    build_sft_dataset,
    chunk_section,
    dataset_hash,
    load_sft_dataset,
    split_by_repo,
    write_sft_dataset,
)
from moxi_pipeline.readme.compose import section_messages
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.prompts import section_instruction, to_prompt_completion
from moxi_pipeline.records import KeyFile, ReadmeChunk, RepoRecord


def make_record(name: str, readme: str, project_type: str = "python_package") -> RepoRecord:
    return RepoRecord(
        repo_url=f"https://example.com/o/{name}", owner="o", repo=name, readme=readme,
        file_tree=(f"{name}/__init__.py", "pyproject.toml"),
        key_files=(KeyFile(path="pyproject.toml", content=f'[project]\nname = "{name}"\n'),),
        project_type=project_type, source="jsonl",
    )


def long_readme(name: str) -> str:
    """An opening paragraph, then Usage and Features sections long enough to be chunks of their own."""
    return (f"# {name}\n\n" + f"{name} turns input files into reports. " * 8 + "\n\n## Usage\n\n"
            + f"Call {name}.run() on a folder and read the report it returns. " * 12 + "\n\n## Features\n\n"
            + "".join(f"- Handles case {i} without extra setup.\n" for i in range(12)))


SHORT_README = "# pkg\n\nA small package that does one useful thing well.\n\n## Usage\n\n    pkg run --fast\n"


def build(records, config=DatasetConfig(), progress=None, min_chars=200):
    chunks = chunk_records(records, min_chars, 2000)
    return build_sft_dataset(records, chunks, config, progress)


URLS = [f"https://example.com/o/repo{i}" for i in range(50)]


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
@pytest.mark.parametrize("n_repos", [2, 3, 10, 50])
@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.5, 0.99])
def test_split_has_no_leakage_and_both_splits(seed, n_repos, fraction):
    urls = URLS[:n_repos]
    splits = split_by_repo(urls + urls[:1], fraction, seed)  # a repeated url still gets one split
    assert set(splits) == set(urls)
    test = {url for url, split in splits.items() if split == "test"}
    train = {url for url, split in splits.items() if split == "train"}
    assert not test & train
    assert test and train
    assert len(test) == min(max(round(n_repos * fraction), 1), n_repos - 1)


def test_split_is_deterministic_and_order_independent():
    assert split_by_repo(URLS, 0.2, 3) == split_by_repo(list(reversed(URLS)), 0.2, 3)
    assert split_by_repo(URLS, 0.2, 3) != split_by_repo(URLS, 0.2, 4)  # the seed picks other repos


def test_single_repo_trains():
    assert split_by_repo(["https://example.com/o/a"], 0.2, 0) == {"https://example.com/o/a": "train"}


@pytest.mark.parametrize(
    "field, value, message",
    [("test_fraction", 0.0, "test_fraction must be between 0 and 1 (exclusive), got 0.0"),
     ("test_fraction", 1.0, "test_fraction must be between 0 and 1 (exclusive), got 1.0"),
     ("max_section_chars", 0, "max_section_chars must be > 0, got 0"),
     ("min_content_chars", -1, "min_content_chars must be >= 0, got -1")],
)
def test_config_validation_names_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DatasetConfig(**{field: value})


def _chunk(title: str, index: int, content: str) -> ReadmeChunk:
    return ReadmeChunk(repo_url="https://example.com/o/foo", repo="foo", chunk_index=index, section_title=title,
                       content=content, file_tree=("foo.py",))


@pytest.mark.parametrize(
    "title, index, content, section",
    [
        ("", 0, "Intro text.", "about"),  # the untitled opening
        ("Fetcher [![ci](b.svg)](x)", 0, "# Fetcher [![ci](b.svg)](x)\n\nIntro.", "about"),  # under its H1
        ("Installation", 0, "## Installation\n\npip install foo", None),  # a README that opens with a fact section
        ("Features", 1, "## Features\n\n- fast", "features"), ("✨ Highlights", 2, "...", "features"),
        ("What it does", 1, "...", "features"),
        ("Usage", 1, "## Usage\n\nRun it.", "usage"), ("Examples", 3, "...", "usage"), ("How to use", 2, "...", "usage"),
        # the sections rendered from facts are never generated, so never trained
        ("Installation", 1, "...", None), ("Getting Started", 1, "...", None), ("License", 4, "...", None),
        ("Contributing", 4, "...", None), ("Acknowledgements", 5, "...", None), ("", 2, "more text", None),
    ],
)
def test_chunk_section(title, index, content, section):
    assert chunk_section(_chunk(title, index, content)) == section


FETCHER_PYPROJECT = """[project]
name = "fetcher"
description = "Fetch URLs."
dependencies = ["requests"]

[project.scripts]
fetch = "fetcher.cli:main"
"""
FETCHER_README = """# Fetcher [![ci](https://ci.example.com/badge.svg)](https://ci.example.com)

<p align="center"><img src="logo.png"></p>

Fetcher downloads many URLs at once and saves each page to a file. It reads `fetcher/proxy.yaml` first.

## Features

- Parallel downloads with a configurable pool.
- Retries with exponential backoff.

## Installation

```bash
pip install fetcher
```

## Usage

Run `fetch --help` to see every option. Read [the tutorial](https://blog.example.com/fetcher).

```bash
# one page
fetch https://github.com/octo/fetcher
```

## License

MIT
"""
FETCHER = RepoRecord(
    repo_url="https://github.com/octo/fetcher", owner="octo", repo="fetcher", readme=FETCHER_README,
    file_tree=("fetcher/__init__.py", "fetcher/cli.py", "pyproject.toml"),
    key_files=(KeyFile(path="pyproject.toml", content=FETCHER_PYPROJECT),
               KeyFile(path="fetcher/cli.py", content="def main():\n    pass\n")),
    language="Python", project_type="python_cli", source="jsonl",
)


def test_section_samples_are_the_grounded_sections_the_model_writes():
    messages = []
    samples = build_sft_dataset([FETCHER], chunk_records([FETCHER], 40, 2000), DatasetConfig(), messages.append)
    assert [(s.section, s.kind, s.split) for s in samples] == [
        ("about", "section", "train"), ("features", "section", "train"), ("usage", "section", "train")]
    assert [s.content for s in samples] == [
        # the title is the forced `# <name>`; HTML and badges go; a sentence naming a missing file goes
        "# fetcher\n\nFetcher downloads many URLs at once and saves each page to a file.",
        "## Features\n\n- Parallel downloads with a configurable pool.\n- Retries with exponential backoff.",
        # an invented link keeps its text; a `#` comment in code is no heading; the merged License is cut
        "## Usage\n\nRun `fetch --help` to see every option. Read the tutorial.\n\n"
        "```bash\n# one page\nfetch https://github.com/octo/fetcher\n```",
    ]
    assert messages == ["3 samples; skipped {'not a generated section': 1}"]  # Installation (+ License)


@pytest.mark.parametrize("section", ["about", "features", "usage"])
def test_a_section_sample_prompts_exactly_as_inference_does(section):
    # Rule: the training prompt is the inference prompt (facts block, key files, tree, instruction)
    [sample] = [s for s in build_sft_dataset([FETCHER], chunk_records([FETCHER], 40, 2000), DatasetConfig())
                if s.section == section]
    facts = repo_facts(FETCHER)
    assert to_prompt_completion(sample)["prompt"] == section_messages(section, FETCHER, facts)
    assert sample.instruction == section_instruction(section, "fetcher")
    assert sample.input.facts == facts


def test_only_the_first_chunk_of_a_section_kind_is_a_sample():
    readme = ("# pkg\n\nA package that does one useful thing well.\n\n## Usage\n\nRun `pkg` on a folder of files "
              "to get one report per file.\n\n## Examples\n\nRun `pkg --all` on a bigger folder of files.\n")
    messages = []
    samples = build([make_record("pkg", readme)], DatasetConfig(), messages.append, min_chars=40)
    assert [s.section for s in samples] == ["about", "usage"]
    assert samples[1].content == "## Usage\n\nRun `pkg` on a folder of files to get one report per file."
    assert messages == ["2 samples; skipped {'later chunk of a section': 1}"]


def test_a_long_section_is_cut_at_a_paragraph_to_max_section_chars():
    paragraph = "Call pkg.run() on a folder and read the report it returns. " * 3
    readme = "# pkg\n\n" + "\n\n".join([paragraph.strip()] * 5) + "\n"
    [about] = build([make_record("pkg", readme)], DatasetConfig(max_section_chars=500))
    # two paragraphs of 179 characters and the blank line between them (360) fit in 500; a third (541) does not
    assert about.content == "# pkg\n\n" + "\n\n".join([paragraph.strip()] * 2)


def test_samples_carry_the_repository_context():
    samples = build([make_record("big", long_readme("big"))])
    assert [s.section for s in samples] == ["about", "usage", "features"]
    assert all(s.input.file_tree == ("big/__init__.py", "pyproject.toml") for s in samples)
    assert all(s.input.project_type == "python_package" for s in samples)
    assert all([k.path for k in s.input.key_files] == ["pyproject.toml"] for s in samples)


def test_split_follows_repository():
    records = [make_record(f"r{i}", long_readme(f"r{i}")) for i in range(10)]
    samples = build(records)
    expected = split_by_repo([record.repo_url for record in records], 0.2, 0)
    assert all(sample.split == expected[sample.repo_url] for sample in samples)
    assert {sample.split for sample in samples} == {"train", "test"}
    assert [s.split for s in samples] == sorted((s.split for s in samples), key=["train", "test"].index)


def test_short_samples_are_filtered_and_reported():
    records = [make_record("pkg", SHORT_README), make_record("tiny", "# tiny\n\nok")]
    messages = []
    samples = build(records, DatasetConfig(min_content_chars=40), messages.append)
    assert {sample.repo for sample in samples} == {"pkg"}
    assert "skipped https://example.com/o/tiny chunk 0: too short once grounded" in messages


def test_empty_after_filtering_raises():
    records = [make_record("tiny", "# tiny\n\nok")]
    with pytest.raises(ValueError, match=re.escape(
            "sft_dataset is empty after filtering: 1 chunks of 1 READMEs gave no about/features/usage section; "
            "skipped: {'shorter than min_content_chars=40 once grounded': 1}")):
        build(records, DatasetConfig(min_content_chars=40))


def test_chunk_without_record_raises():
    chunks = chunk_records([make_record("a", SHORT_README)])
    with pytest.raises(ValueError, match="repo_url 'https://example.com/o/a' .* has no record"):
        build_sft_dataset([make_record("b", SHORT_README)], chunks, DatasetConfig())


def test_duplicate_record_raises():
    record = make_record("a", SHORT_README)
    with pytest.raises(ValueError, match="repo_url 'https://example.com/o/a' appears more than once"):
        build([record, record])


def test_dataset_hash_changes_with_content():
    samples = build([make_record("a", SHORT_README), make_record("b", long_readme("b"))])
    assert dataset_hash(samples) == dataset_hash(list(samples))
    changed = [samples[0].model_copy(update={"content": samples[0].content + "!"})] + samples[1:]
    assert dataset_hash(changed) != dataset_hash(samples)


def test_write_and_load_round_trip(tmp_path):
    import datasets

    records = [make_record(f"r{i}", long_readme(f"r{i}") if i % 2 else SHORT_README) for i in range(5)]
    samples = build(records)
    info = write_sft_dataset(samples, tmp_path)
    assert load_sft_dataset(tmp_path) == samples
    assert info["dataset_hash"] == dataset_hash(samples)
    assert info["num_train"] + info["num_test"] == len(samples)
    assert info["counts"]["test"]["repos"] == 1 and info["counts"]["train"]["repos"] == 4  # round(5 * 0.2)

    loaded = datasets.load_from_disk(info["hf_path"])
    assert set(loaded) == {"train", "test"}
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (info["num_train"], info["num_test"])
    first = loaded["train"][0]
    train_samples = [sample for sample in samples if sample.split == "train"]
    # the facts travel as JSON in the Arrow table (their tuples and optionals fit no single struct)
    assert {**first["input"], "facts": json.loads(first["input"]["facts"])} == train_samples[0].input.to_dict()
    assert first["content"] == train_samples[0].content and first["section"] == train_samples[0].section

    alpaca = json.loads((tmp_path / "training_dataset.json").read_text())
    assert set(alpaca[0]) >= {"instruction", "input", "output"}
    assert alpaca[0]["output"] == train_samples[0].content
    assert alpaca[0]["input"]["file_tree"] == list(train_samples[0].input.file_tree)
    card = (tmp_path / "README.md").read_text()
    test_counts = info["counts"]["test"]
    assert info["dataset_hash"] in card
    assert f"| test | 1 | {test_counts['about']} | {test_counts['features']} | {test_counts['usage']} |" in card

    write_sft_dataset(samples[:3], tmp_path)  # writing again replaces the old dataset
    assert len(load_sft_dataset(tmp_path)) == 3


def test_empty_test_split_still_writes(tmp_path):
    import datasets

    samples = build([make_record("only", SHORT_README)])
    info = write_sft_dataset(samples, tmp_path)
    assert info["num_test"] == 0
    assert datasets.load_from_disk(info["hf_path"])["test"].num_rows == 0
