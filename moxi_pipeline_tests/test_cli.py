"""The `moxi` command: generate a README with the latest trained adapter, and print the last eval."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.cli import main
from moxi_pipeline.records import SampleInput, SftSample


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOXI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _repo(tmp_path):
    repo = tmp_path / "renamer"
    (repo / "renamer").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "renamer"\n')
    (repo / "renamer" / "__init__.py").write_text('"""Rename files in bulk."""\n')
    return repo


def _train_latest(data_dir, tiny_model_dir):
    from moxi_pipeline.train import load_train_config, train_adapter

    sample = SftSample(
        instruction="Write the README.", content="# renamer\n\nRenames files.", repo_url="u/r", repo="renamer",
        kind="readme", split="train", input=SampleInput(file_tree=("renamer/__init__.py",), project_type="python_package"),
    )
    config = load_train_config("demo", max_steps=1, max_length=256, min_completion_tokens=32, device="cpu")
    adapters = data_dir / "models" / "lora_adapter"
    train_adapter(tiny_model_dir, [sample], [], config, adapters / "run1", dataset_hash="h")
    (adapters / "LATEST").write_text("run1\n")


def test_generate_with_the_latest_adapter_writes_a_readme(tmp_path, data_dir, tiny_model_dir, capsys):
    _train_latest(data_dir, tiny_model_dir)
    out = tmp_path / "README.generated.md"
    code = main(["generate", str(_repo(tmp_path)), "--out", str(out), "--max-new-tokens", "8", "--device", "cpu"])
    assert code == 0
    assert out.read_text().startswith("# renamer\n")
    assert "wrote" in capsys.readouterr().err


def test_generate_before_training_says_to_train_first(tmp_path, data_dir, capsys):
    assert main(["generate", str(_repo(tmp_path))]) == 2
    assert "train one first" in capsys.readouterr().err


def test_report_prints_the_headline(data_dir, capsys):
    assert main(["report"]) == 2
    assert "run `make demo`" in capsys.readouterr().err
    pointer = data_dir / "artifacts" / "eval_report.json"
    pointer.parent.mkdir(parents=True)
    metadata = {"base_rougeL": 0.05, "fine_tuned_rougeL": 0.0712, "base_coverage": 0.4, "fine_tuned_coverage": 0.6}
    pointer.write_text(json.dumps({"name": "eval_report", "path": str(data_dir / "eval"), "metadata": metadata}))
    assert main(["report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"eval report: {data_dir / 'eval' / 'eval_report.md'}"
    assert "rougeL              0.0500      0.0712" in lines
    assert "coverage            0.4000      0.6000" in lines
