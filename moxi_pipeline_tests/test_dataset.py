from __future__ import annotations

import json
import re

import pytest

from moxi_pipeline.chunk import chunk_records
from moxi_pipeline.dataset import (
    DatasetConfig,
    build_sft_dataset,
    dataset_hash,
    load_sft_dataset,
    readme_content,
    split_by_repo,
    write_sft_dataset,
)
from moxi_pipeline.instructions import TemplateInstructions, readme_instruction
from moxi_pipeline.records import KeyFile, RepoRecord


def make_record(name: str, readme: str, project_type: str = "python_package") -> RepoRecord:
    return RepoRecord(
        repo_url=f"https://example.com/o/{name}", owner="o", repo=name, readme=readme,
        file_tree=(f"{name}/__init__.py", "pyproject.toml"), key_files=(KeyFile(path="pyproject.toml", content="[x]"),),
        project_type=project_type, source="jsonl",
    )


def long_readme(name: str) -> str:
    body = "\n\n".join(f"## Part {i}\n\n" + f"{name} does thing {i}. " * 40 for i in range(4))
    return f"# {name}\n\nSummary of {name}.\n\n{body}"


SHORT_README = "# pkg\n\nA small package that does one useful thing well.\n\n## Usage\n\n    pkg run --fast\n"


def build(records, config=DatasetConfig(), progress=None):
    chunks = chunk_records(records, 1000, 2000)
    return build_sft_dataset(records, chunks, TemplateInstructions(), config, progress)


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
     ("max_readme_chars", 0, "max_readme_chars must be > 0, got 0"),
     ("min_content_chars", -1, "min_content_chars must be >= 0, got -1")],
)
def test_config_validation_names_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DatasetConfig(**{field: value})


@pytest.mark.parametrize(
    "readme, content",
    [
        ("# pkg\n\nSummary.", "# pkg\n\nSummary."),
        ("# Pkg: the fast one [![ci](b.svg)](x)\n\nSummary.", "# pkg\n\nSummary."),  # H1 replaced by the prefix
        ("Pkg Title\n=========\n\nSummary.", "# pkg\n\nSummary."),  # setext H1 too
        ("\r\n\r\nSummary first.\r\n## Usage", "# pkg\n\nSummary first.\n## Usage"),
        ('<p align="center"><img src="l.png"></p>\n\nSummary.',
         '# pkg\n\n<p align="center"><img src="l.png"></p>\n\nSummary.'),
        ("## Usage\n\nrun", "# pkg\n\n## Usage\n\nrun"),
        ("---\ntitle: t\n---\n# pkg\nSummary.", "# pkg\n\nSummary."),
        ("# pkg", "# pkg\n"),
    ],
)
def test_readme_content_opens_with_response_prefix(readme, content):
    assert readme_content(make_record("pkg", readme)) == content


def test_samples_sections_and_whole_readme_only_when_it_fits():
    records = [make_record("small", SHORT_README.replace("pkg", "small")), make_record("big", long_readme("big"))]
    samples = build(records, DatasetConfig(max_readme_chars=1000))
    readme_samples = [sample for sample in samples if sample.kind == "readme"]
    assert [sample.repo for sample in readme_samples] == ["small"]  # big's README is ~3.6k chars > 1000
    assert readme_samples[0].instruction == readme_instruction("small", "python_package")
    assert readme_samples[0].content.startswith("# small\n")
    sections = [sample for sample in samples if sample.kind == "section"]
    assert {sample.repo for sample in sections} == {"small", "big"}
    assert len([sample for sample in sections if sample.repo == "big"]) == 2  # 3.6k chars -> 2 chunks
    big = samples[[sample.repo for sample in samples].index("big")]
    assert big.input.file_tree == ("big/__init__.py", "pyproject.toml")
    assert big.input.project_type == "python_package" and big.input.key_files[0].path == "pyproject.toml"


def test_whole_readme_sample_added_when_budget_allows():
    records = [make_record("a", long_readme("a")), make_record("b", long_readme("b"))]
    assert [s.kind for s in build(records, DatasetConfig(max_readme_chars=4000))].count("readme") == 2


def test_split_follows_repository():
    records = [make_record(f"r{i}", long_readme(f"r{i}")) for i in range(10)]
    samples = build(records)
    expected = split_by_repo([record.repo_url for record in records], 0.2, 0)
    assert all(sample.split == expected[sample.repo_url] for sample in samples)
    assert {sample.split for sample in samples} == {"train", "test"}


def test_short_samples_are_filtered_and_reported():
    records = [make_record("pkg", SHORT_README), make_record("tiny", "# tiny\n\nok")]
    messages = []
    samples = build(records, DatasetConfig(min_content_chars=40), messages.append)
    assert {sample.repo for sample in samples} == {"pkg"}
    assert sum("skipped" in message and "tiny" in message for message in messages) == 2  # its chunk and README


def test_empty_after_filtering_raises():
    records = [make_record("tiny", "# tiny\n\nok")]
    with pytest.raises(ValueError, match=r"sft_dataset is empty after filtering: 1 chunks and 1 READMEs, "
                                         r"2 samples shorter than min_content_chars=40"):
        build(records, DatasetConfig(min_content_chars=40))


def test_chunk_without_record_raises():
    chunks = chunk_records([make_record("a", SHORT_README)])
    with pytest.raises(ValueError, match="repo_url 'https://example.com/o/a' .* has no record"):
        build_sft_dataset([make_record("b", SHORT_README)], chunks, TemplateInstructions(), DatasetConfig())


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
    assert first["input"] == train_samples[0].input.to_dict() and first["content"] == train_samples[0].content

    alpaca = json.loads((tmp_path / "training_dataset.json").read_text())
    assert set(alpaca[0]) >= {"instruction", "input", "output"}
    assert alpaca[0]["output"] == train_samples[0].content
    assert alpaca[0]["input"]["file_tree"] == list(train_samples[0].input.file_tree)
    card = (tmp_path / "README.md").read_text()
    assert info["dataset_hash"] in card and f"| test | 1 |" in card

    write_sft_dataset(samples[:3], tmp_path)  # writing again replaces the old dataset
    assert len(load_sft_dataset(tmp_path)) == 3


def test_empty_test_split_still_writes(tmp_path):
    import datasets

    samples = build([make_record("only", SHORT_README)])
    info = write_sft_dataset(samples, tmp_path)
    assert info["num_test"] == 0
    assert datasets.load_from_disk(info["hf_path"])["test"].num_rows == 0
