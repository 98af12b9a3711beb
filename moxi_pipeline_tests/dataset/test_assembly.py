"""Dataset assembly: duplicates removed and counted, public rows merged with a cap, chat JSONL, histogram and card."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.dataset.assembly import (
    CHAT_JSONL,
    LENGTHS_PNG,
    dedupe_samples,
    load_public_samples,
)
from moxi_pipeline.dataset.samples import load_sft_dataset, write_sft_dataset
from moxi_pipeline.readme.prompts import build_messages
from moxi_pipeline.records import SampleInput, SftSample

TEXT = ("Moxi reads a repository, finds its manifest and entry points, and writes the sections of a README "
        "that a new user needs first: what the project does, how to install it, and how to run it today.")


def sample(content: str, repo: str, split: str = "train", section: str = "about") -> SftSample:
    heading = f"# {repo}" if section == "about" else "## Usage"
    return SftSample(instruction=f"Write the {section} of {repo}.", content=f"{heading}\n\n{content}",
                     input=SampleInput(file_tree=("pyproject.toml",), project_type="python_package"),
                     repo_url=f"https://example.com/o/{repo}", repo=repo, kind="section", split=split, section=section)


def test_dedupe_counts_exact_and_near_duplicates_and_keeps_the_first():
    samples = [
        sample(TEXT, "a"),
        sample(TEXT.upper().replace(" ", "  "), "b"),  # exact: same words, other case and spacing, other heading
        sample(TEXT.replace("today", "now"), "c", split="test"),  # near: one word of 36 changed
        sample("A small tool that renames photos by the date they were taken, in bulk and safely.", "d"),
        sample(TEXT, "e", section="usage"),  # exact again, though another section
    ]
    kept, removed = dedupe_samples(samples, threshold=0.8)
    assert removed == {"exact": 2, "near": 1}
    assert [s.repo for s in kept] == ["a", "d"]


def test_dedupe_keeps_texts_below_the_threshold():
    half = " ".join(TEXT.split()[:18])
    samples = [sample(TEXT, "a"), sample(half + " and then something else entirely different happens here too", "b")]
    kept, removed = dedupe_samples(samples, threshold=0.8)
    assert (len(kept), removed) == (2, {"exact": 0, "near": 0})


def test_dedupe_threshold_is_checked():
    with pytest.raises(ValueError, match="dedupe_threshold must be in \\(0, 1\\], got 1.5"):
        dedupe_samples([], threshold=1.5)


def test_exports_chat_jsonl_histogram_and_card(tmp_path):
    samples = [sample(TEXT, "a"), sample("Run `b --all` to rename every file in the folder at once.", "b", section="usage"),
               sample("C converts CSV files to JSON lines and back again, keeping the column order.", "c", split="test")]
    provenance = {"generator": "openai:gpt-4o-mini", "sources": {"jsonl": 3}, "duplicates_removed": {"exact": 2, "near": 1},
                  "dedupe_threshold": 0.8, "split": {"test_fraction": 0.2, "seed": 7}, "public_dataset": None,
                  "public_samples": 0}
    info = write_sft_dataset(samples, tmp_path, provenance)
    train_lines = (tmp_path / CHAT_JSONL["train"]).read_text().splitlines()
    test_lines = (tmp_path / CHAT_JSONL["test"]).read_text().splitlines()
    assert (len(train_lines), len(test_lines)) == (2, 1)
    assert json.loads(train_lines[0])["messages"] == build_messages(samples[0].instruction, samples[0].input, "a") + [
        {"role": "assistant", "content": samples[0].content}]
    assert (tmp_path / LENGTHS_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and info["lengths_png"].endswith(LENGTHS_PNG)
    card = (tmp_path / "README.md").read_text()
    for line in ("- generator: `openai:gpt-4o-mini`", "- sources (repositories): jsonl: 3",
                 "- split: by repository, test_fraction=0.2, seed=7",
                 "- duplicates removed: 2 exact, 1 near (word 3-gram Jaccard >= 0.8)",
                 "- public dataset: none (0 samples)", f"![length histograms]({LENGTHS_PNG})"):
        assert line in card
    assert json.loads((tmp_path / "training_dataset.json").read_text())[0]["instruction"] == "Write the about of a."
    assert load_sft_dataset(tmp_path) == samples


def test_public_dataset_merge_from_files_and_a_saved_dataset_with_a_cap(tmp_path):
    import datasets

    rows = [{"instruction": f"Write a README for tool{i}.", "input": "", "output": f"# tool{i}\n\nDoes thing {i}."}
            for i in range(5)]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    for source in ("rows.json", "rows.jsonl", "saved"):
        merged = load_public_samples(str(tmp_path / source), size=3)
        assert [s.content for s in merged] == [row["output"] for row in rows[:3]]
        assert {(s.split, s.kind) for s in merged} == {("train", "readme")}
    with_input = load_public_samples(str(tmp_path / "rows.json"), size=1)
    assert with_input[0].instruction == "Write a README for tool0."


def test_public_dataset_bad_row_names_the_row(tmp_path):
    (tmp_path / "rows.json").write_text(json.dumps([{"instruction": "x", "output": "y"}, {"instruction": "", "output": "z"}]))
    with pytest.raises(ValueError, match="rows.json row 2: needs non-empty `instruction` and `output`"):
        load_public_samples(str(tmp_path / "rows.json"), size=10)


@pytest.mark.parametrize(("env", "pushed"), [
    ({"HF_TOKEN": "hf_secret_token_123", "MOXI_HF_DATASET_REPO": "me/moxi-sft"}, True),
    ({"HF_TOKEN": "hf_secret_token_123"}, False),  # a token alone pushes nothing
    ({"MOXI_HF_DATASET_REPO": "me/moxi-sft"}, False),
])
def test_push_to_hub_only_with_token_and_repo(tmp_path, monkeypatch, env, pushed):
    from moxi_pipeline.defs import dataset as dataset_defs
    from moxi_pipeline.defs.resources import OpenAIClient
    from moxi_pipeline.settings import load_settings
    from moxi_pipeline_tests.dataset.test_instructions_openai import (
        _everything_written,
        _materialize,
    )

    calls = []
    monkeypatch.setattr(dataset_defs, "SETTINGS", load_settings(env))
    monkeypatch.setattr(dataset_defs, "push_dataset", lambda *args: calls.append(args))
    result = _materialize(tmp_path, OpenAIClient(api_key=""), instructions="template")
    assert result.success
    hf_path = str(tmp_path / "data" / "sft" / "hf")
    assert calls == ([(hf_path, "me/moxi-sft", "hf_secret_token_123")] if pushed else [])
    metadata = result.asset_materializations_for_node("sft_dataset")[0].metadata
    assert (metadata["generator"].value, metadata["duplicates_removed_exact"].value) == ("template", 0)
    assert "hf_secret_token_123" not in _everything_written(result, tmp_path)
