"""The `moxi` command: generate, evaluate, compare and report, and the errors a new user meets first."""

from __future__ import annotations

import json
import shutil

import pytest

from moxi_pipeline.cli import main
from moxi_pipeline.records import SampleInput, SftSample


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOXI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture()
def with_base_model(data_dir, tiny_model_dir):
    """The tiny model where `--adapter none` looks for the base model."""
    shutil.copytree(tiny_model_dir, data_dir / "models" / "base_model")
    return data_dir / "models" / "base_model"


def _repo(tmp_path):
    repo = tmp_path / "renamer"
    (repo / "renamer").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "renamer"\ndescription = "Rename files in bulk."\n')
    (repo / "renamer" / "__init__.py").write_text('"""Rename files in bulk."""\n')
    return repo


def _train_latest(data_dir, tiny_model_dir):
    from moxi_pipeline.training.train import load_train_config, train_adapter

    sample = SftSample(
        instruction="Write the Usage section.", content="## Usage\n\nRenames files.", repo_url="u/r", repo="renamer",
        kind="section", split="train", section="usage",
        input=SampleInput(file_tree=("renamer/__init__.py",), project_type="python_package"),
    )
    config = load_train_config("demo", max_steps=1, max_length=256, min_completion_tokens=4, device="cpu")
    adapters = data_dir / "models" / "lora_adapter"
    train_adapter(tiny_model_dir, [sample], [], config, adapters / "run1", dataset_hash="h")
    (adapters / "LATEST").write_text("run1\n")


def test_generate_with_the_latest_adapter_writes_a_grounded_readme(tmp_path, data_dir, tiny_model_dir, capsys):
    _train_latest(data_dir, tiny_model_dir)
    out = tmp_path / "README.generated.md"
    assert main(["generate", str(_repo(tmp_path)), "--out", str(out), "--device", "cpu"]) == 0
    text = out.read_text()
    # the forced title and opening sentence, and the install command from the manifest
    assert text.startswith("# renamer\n\nRename files in bulk.")
    assert "## Installation\n\n```bash\npip install renamer\n```" in text
    err = capsys.readouterr().err
    assert "grounding removed " in err and f"wrote {out} ({len(text)} characters)" in err


def test_generate_before_training_says_to_train_first(tmp_path, data_dir, capsys):
    assert main(["generate", str(_repo(tmp_path))]) == 2
    assert "train one first" in capsys.readouterr().err


def test_generate_a_missing_path(tmp_path, data_dir, capsys):
    assert main(["generate", str(tmp_path / "nowhere"), "--adapter", "none"]) == 2
    assert capsys.readouterr().err == f"moxi: path {str(tmp_path / 'nowhere')!r} is not a directory\n"


@pytest.mark.parametrize("url", ["https://github.com/o/r", "git@github.com:o/r.git", "github.com/o/r"])
def test_generate_a_github_url_that_does_not_exist_names_it(data_dir, capsys, monkeypatch, url):
    from moxi_pipeline_tests.fake_github import FakeGitHub

    with FakeGitHub({}) as fake:
        monkeypatch.setenv("MOXI_GITHUB_API_URL", fake.url)
        assert main(["generate", url]) == 2
    assert capsys.readouterr().err == f"moxi: {url}: head commit: not found (404): deleted, renamed away or private\n"


def test_generate_with_a_missing_adapter(tmp_path, data_dir, capsys):
    assert main(["generate", str(_repo(tmp_path)), "--adapter", str(tmp_path / "no_adapter")]) == 2
    assert "is not a PEFT adapter directory (no adapter_config.json)" in capsys.readouterr().err


def test_generate_without_a_base_model_says_how_to_get_one(tmp_path, data_dir, capsys):
    assert main(["generate", str(_repo(tmp_path)), "--adapter", "none"]) == 2
    err = capsys.readouterr().err
    assert err == f"moxi: no base model at {data_dir / 'models' / 'base_model'}: run `make demo` or materialize base_model first\n"


@pytest.fixture()
def foreign_adapter(tmp_path, tiny_model_dir):
    """A LoRA adapter made on a Llama with hidden size 64, naming the tiny model (hidden size 32) as its base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    other = LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2))
    out = tmp_path / "foreign"
    get_peft_model(other, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(out)
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(tiny_model_dir)}))
    return out


def test_generate_with_an_adapter_for_another_base_model(tmp_path, data_dir, foreign_adapter, tiny_model_dir, capsys):
    assert main(["generate", str(_repo(tmp_path)), "--adapter", str(foreign_adapter), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    # transformers' loading bar comes first on stderr; then the one-line reason, not a traceback
    assert f"moxi: adapter {foreign_adapter} does not fit the base model {tiny_model_dir}: " in err
    assert "size mismatch" in err and "Traceback" not in err


def test_generate_with_a_peft_adapter_that_has_no_tokenizer(tmp_path, data_dir, tiny_model_dir):
    # an adapter from elsewhere (`save_pretrained` of a PeftModel) carries no tokenizer: the base model's serves
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    adapter = tmp_path / "peft_only"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    out = tmp_path / "README.md"
    assert main(["generate", str(_repo(tmp_path)), "--adapter", str(adapter), "--out", str(out), "--device", "cpu"]) == 0
    assert out.read_text().startswith("# renamer\n\nRename files in bulk.")


def test_load_model_names_an_adapter_for_another_base_model(foreign_adapter, tiny_model_dir):
    from moxi_pipeline.models.base import load_model

    with pytest.raises(ValueError, match=r"does not fit the base model"):
        load_model(tiny_model_dir, "cpu", adapter_dir=foreign_adapter, merge=True)


def _records_file(path, rows) -> str:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return str(path)


def _row(name: str) -> dict:
    readme = (f"# {name}\n\n{name} renames many files at once, from the command line or from Python code.\n\n"
              f"## Installation\n\n```bash\npip install {name}\n```\n\n## Usage\n\n"
              f"Run `{name} --help` to see every option, then point it at a folder of files.\n\n## License\n\nMIT\n")
    return {"repo": f"octo/{name}", "repo_url": f"https://github.com/octo/{name}", "readme": readme,
            "file_tree": ["pyproject.toml", f"{name}/__init__.py", f"{name}/cli.py"], "language": "Python",
            "key_files": [{"path": "pyproject.toml", "content": f'[project]\nname = "{name}"\n\n[project.scripts]\n'
                                                                 f'{name} = "{name}.cli:main"\n'}]}


@pytest.mark.parametrize(
    "text, message",
    [
        ("this is not json\nnor this\n", "is not JSON or JSON Lines: no line parses"),
        ('{"repo": "o/a"', "is not JSON or JSON Lines: no line parses"),
        ("[1, 2", "is not valid JSON"),
    ],
)
def test_evaluate_a_records_file_that_is_not_json(tmp_path, data_dir, capsys, text, message):
    records = tmp_path / "bad.jsonl"
    records.write_text(text)
    assert main(["evaluate", "--records", str(records), "--adapter", "none", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"moxi: path {str(records)!r} ") and message in err
    assert not (tmp_path / "out").exists()


def test_evaluate_a_missing_records_file(tmp_path, data_dir, capsys):
    assert main(["evaluate", "--records", str(tmp_path / "none.jsonl"), "--adapter", "none", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_records_with_no_usable_record_names_the_reasons(tmp_path, data_dir, capsys):
    records = _records_file(tmp_path / "empty.jsonl", [{"repo": "o/a", "repo_url": "https://github.com/o/a", "readme": " "}])
    assert main(["evaluate", "--records", records, "--adapter", "none", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"moxi: --records {records}: no usable record (1 skipped: line 1: ")


def test_evaluate_without_a_base_model_says_how_to_get_one(tmp_path, data_dir, capsys):
    records = _records_file(tmp_path / "small.jsonl", [_row("alpha")])
    assert main(["evaluate", "--records", records, "--adapter", "none", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"moxi: no base model at {data_dir / 'models' / 'base_model'}: "
                                       "run `make demo` or materialize base_model first\n")


def test_evaluate_readmes_with_no_model_written_section_still_scores_them(tmp_path, data_dir, with_base_model, capsys):
    # any records file is evaluated; only the eval loss needs About/Features/Usage sections to score
    row = {**_row("alpha"), "readme": "# alpha\n\n## Installation\n\npip install alpha\n"}
    records = _records_file(tmp_path / "small.jsonl", [row])
    out = tmp_path / "out"
    assert main(["evaluate", "--records", records, "--adapter", "none", "--out", str(out), "--device", "cpu"]) == 0
    assert "moxi: no eval loss: sft_dataset is empty after filtering" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["systems"]["base"]["eval_loss"] is None and metrics["config"]["n_loss_samples"] == 0
    assert metrics["systems"]["template"]["coverage"] == 1.0  # Installation, the one scored section, is there


def test_evaluate_with_a_dpo_adapter_that_is_not_one_names_the_option(tmp_path, data_dir, with_base_model, capsys):
    records = _records_file(tmp_path / "small.jsonl", [_row("alpha")])
    missing = tmp_path / "no_dpo"
    assert main(["evaluate", "--records", records, "--adapter", "none", "--dpo-adapter", str(missing),
                 "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    assert f"moxi: --dpo-adapter {missing}: not a PEFT adapter folder (no adapter_config.json)" in capsys.readouterr().err


def test_evaluate_then_compare(tmp_path, data_dir, with_base_model, capsys):
    records = _records_file(tmp_path / "small.jsonl", [_row("beta"), _row("alpha")])
    out = tmp_path / "run1"
    assert main(["evaluate", "--records", records, "--adapter", "none", "--baseline", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["generations.jsonl", "metrics.json", "metrics.png", "report.md"]
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert [(r["system"], r["repo"]) for r in rows] == [("template", "alpha"), ("template", "beta"),
                                                        ("base", "alpha"), ("base", "beta")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"] == {"records": "small.jsonl", "profile": "—"} and metrics["adapter_dir"] is None
    assert metrics["systems"]["template"]["install_ok"] == 1.0
    assert "| metric | template | base |" in (out / "report.md").read_text()
    stdout = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in stdout] == ["template", "base", "base"]
    diff = metrics["paired"]["base - template"]
    assert stdout[2] == (f"base - template: rougeL {diff['mean']:+.4f} [{diff['ci'][0]:+.4f}, {diff['ci'][1]:+.4f}], "
                         f"higher on {diff['wins']} of 2 repositories")

    assert main(["compare", str(out)]) == 0
    comparison = (data_dir / "eval" / "comparison.md").read_text()
    assert capsys.readouterr().out == comparison + "\n"
    assert "| run1 | template | — | small.jsonl | — | 2 |" in comparison
    assert "| run1 | base | — | small.jsonl | — | 2 |" in comparison


def test_compare_without_runs_says_so(data_dir, capsys):
    assert main(["compare"]) == 2
    assert "no evaluated runs" in capsys.readouterr().err


def test_report_prints_the_headline(data_dir, capsys):
    assert main(["report"]) == 2
    assert "run `make demo`" in capsys.readouterr().err
    run_dir = data_dir / "eval" / "runs" / "run1"
    run_dir.mkdir(parents=True)
    systems = {"template": {"rougeL": 0.05, "install_ok": 1.0}, "fine_tuned": {"rougeL": 0.0712, "install_ok": None}}
    (run_dir / "metrics.json").write_text(json.dumps({"n_repos": 4, "systems": systems}))
    pointer = data_dir / "artifacts" / "eval_report.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"name": "eval_report", "path": str(run_dir), "metadata": {}}))
    assert main(["report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"eval report: {run_dir / 'report.md'}  (4 held-out repositories)"
    assert lines[1] == f"{'metric':<24}    template  fine_tuned"
    assert f"{'rougeL':<24}      0.0500      0.0712" in lines
    assert f"{'install_ok':<24}      1.0000           -" in lines


def test_export_prints_one_line_and_its_files_write_readmes(tmp_path, data_dir, tiny_model_dir, capsys):
    import re

    _train_latest(data_dir, tiny_model_dir)
    capsys.readouterr()  # what training printed
    out = tmp_path / "export"
    assert main(["export", "latest", "--out", str(out), "--gguf", "f16,q8_0,q4_0"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"export: merged_max_abs_logit_diff=\S+ gguf_f16_top1_agree=\S+ gguf_q8_0_top1_agree=\S+", lines[0])
    assert float(lines[0].split("=")[1].split()[0]) < 1e-4
    assert "gguf q4_0: " in captured.err
    repo = _repo(tmp_path)
    for model in (out / "merged", out / "gguf" / "moxi-q8_0.gguf"):
        readme = tmp_path / f"README.{model.name}.md"
        assert main(["generate", str(repo), "--model", str(model), "--out", str(readme), "--device", "cpu"]) == 0
        assert readme.read_text().startswith("# renamer\n\nRename files in bulk.")


def test_export_an_unknown_gguf_type_is_named(tmp_path, data_dir, tiny_model_dir, capsys):
    _train_latest(data_dir, tiny_model_dir)
    assert main(["export", "latest", "--out", str(tmp_path / "export"), "--gguf", "q3_k"]) == 2
    assert "moxi: gguf type ['q3_k'] is not one of" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "evaluate"])
@pytest.mark.parametrize("option, message", [
    (["--length-scale", "0"], "--length-scale 0.0: must be above 0 (1 keeps the default section budgets)"),
    (["--mbr", "-2"], "--mbr -2: the number of drafts per section must be 0 (greedy) or more"),
    (["--min-section-share", "1.2"], "--min-section-share 1.2: must be from 0 (the model ends a section where it "
                                     "likes) to 1 (a section runs its whole budget)"),
    (["--context-contrast", "-0.5"], "--context-contrast -0.5: must be 0 (off) or more"),
])
def test_a_bad_decoding_option_is_named_before_anything_loads(tmp_path, data_dir, capsys, command, option, message):
    target = [str(_repo(tmp_path))] if command == "generate" else ["--records", str(tmp_path / "none.jsonl"), "--out", str(tmp_path)]
    assert main([command, *target, "--adapter", "none", *option]) == 2
    assert capsys.readouterr().err == f"moxi: {message}\n"
