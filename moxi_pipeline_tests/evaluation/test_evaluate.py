"""`evaluate`: the template floor, the base model and the fine-tuned model on held-out repositories,
the eval loss, and the report and run comparison written from it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from moxi_pipeline.evaluation.evaluate import (
    EvalConfig,
    compute_eval_loss,
    evaluate,
    paired_differences,
)
from moxi_pipeline.evaluation.report import compare_runs, write_eval_report
from moxi_pipeline.models.writer import WriterSpec
from moxi_pipeline.readme.compose import write_readmes
from moxi_pipeline.readme.decoding import DecodingConfig
from moxi_pipeline.records import KeyFile, RepoRecord, SampleInput, SftSample

TREE = ("README.md", "pyproject.toml", "src/tiny/__init__.py", "src/tiny/cli.py", "docs/guide.md", "Makefile")


@pytest.mark.parametrize(
    "field, value",
    [("max_repos", 0), ("device", "tpu"), ("max_length", 8), ("max_loss_samples", -1), ("decoding", {"max_new_tokens": 5})],
)
def test_eval_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"EvalConfig\.{field} "):
        EvalConfig(**{field: value})


def _record(name: str, readme: str) -> RepoRecord:
    return RepoRecord(
        repo_url=f"https://github.com/octo/{name}", owner="octo", repo=name, readme=readme, file_tree=TREE,
        key_files=(KeyFile(path="pyproject.toml", content=f'[project]\nname = "{name}"\ndescription = "Parse files."\n'),),
        project_type="python_cli", language="Python", source="jsonl",
    )


def _sample(name: str, content: str) -> SftSample:
    return SftSample(
        instruction=f"Write the Usage section of the README for `{name}`.",
        input=SampleInput(file_tree=TREE, project_type="python_cli"), content=content,
        repo_url=f"https://github.com/octo/{name}", repo=name, kind="section", split="test", section="usage",
    )


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from moxi_pipeline.models.base import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu"), load_tokenizer(tiny_model_dir)


def test_eval_loss_is_the_completion_only_loss_transformers_computes(tiny):
    import torch

    from moxi_pipeline.training.tokenize import completion_labels, tokenize_sample

    model, tokenizer = tiny
    samples = [_sample("tiny", "## Usage\n\nA parser for files."), _sample("other", "## Usage\n\nRun it.")]
    # reference: HF's own loss with the prompt labelled -100, token-weighted over both samples
    total, count = 0.0, 0
    for sample in samples:
        row = tokenize_sample(tokenizer, sample, 4096, 16)
        labels = completion_labels(row)
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([labels])).loss.float().item()
        n = sum(label != -100 for label in labels[1:])
        total, count = total + loss * n, count + n
    assert compute_eval_loss(model, tokenizer, samples, 4096, 16) == pytest.approx(total / count, rel=1e-3)


def test_eval_loss_scores_the_sequences_training_sees(tiny):
    """One tokenization: a prompt longer than max_length loses its middle in training and in the eval loss
    alike, so the loss equals the one computed on training's own rows (not on an end-cut sequence)."""
    import torch

    from moxi_pipeline.training.config import load_train_config
    from moxi_pipeline.training.tokenize import completion_labels
    from moxi_pipeline.training.train import build_dataset

    model, tokenizer = tiny
    long_tree = tuple(f"src/pkg/module_{i}/deeply/nested/file_{i}.py" for i in range(40))
    sample = _sample("tiny", "## Usage\n\nA parser for files. " * 8).model_copy(
        update={"input": SampleInput(file_tree=long_tree, project_type="python_cli")})
    config = load_train_config("demo", max_length=96, min_completion_tokens=32)
    row = build_dataset(tokenizer, [sample], config)[0]
    assert len(row["input_ids"]) == 96 and sum(row["completion_mask"]) >= 32
    labels = completion_labels(row)
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([labels])).loss.item()
    assert compute_eval_loss(model, tokenizer, [sample], 96, 32) == pytest.approx(expected, rel=1e-3)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with random (not zero) B matrices, so the fine-tuned model really differs from base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    return out


RECORDS = [
    _record("beta", "# beta\n\nParse files.\n\n## Usage\n\nRun `src/tiny/cli.py`.\n\n## License\n\nMIT\n"),
    _record("alpha", "# alpha\n\nParse files.\n\n## Installation\n\npip install alpha\n"),
]
SAMPLES = [_sample("alpha", "## Usage\n\nA parser."), _sample("beta", "## Usage\n\nRun it."),
           _sample("alpha", "## Usage\n\nMore.")]
CONFIG = EvalConfig(max_repos=2, decoding=DecodingConfig(max_new_tokens=8), device="cpu", max_loss_samples=2)


@pytest.fixture(scope="module")
def report(tiny_model_dir, tiny_adapter):
    calls = []
    result = evaluate(WriterSpec(Path(tiny_model_dir), Path(tiny_adapter)), RECORDS, SAMPLES, CONFIG, lambda *a: calls.append(a))
    return result, calls


def test_evaluate_scores_template_base_and_fine_tuned(report, tiny, tiny_model_dir, tiny_adapter):
    result, calls = report
    # one progress call per generated section, per model (the template generates none)
    sections = sorted(f"{repo} {section}" for repo in ("alpha", "beta") for section in ("about", "features", "usage"))
    for index, system in enumerate(("base", "fine_tuned")):
        mine = calls[6 * index : 6 * (index + 1)]
        assert sorted(label for label, _, _ in mine) == [f"{system}: {s}" for s in sections]
        assert [(done, total) for _, done, total in mine] == [(n, 6) for n in range(1, 7)]
    assert len(calls) == 12
    assert [(r["system"], r["repo"]) for r in result.rows] == [
        ("template", "alpha"), ("template", "beta"), ("base", "alpha"), ("base", "beta"),
        ("fine_tuned", "alpha"), ("fine_tuned", "beta"),
    ]
    assert list(result.systems) == ["template", "base", "fine_tuned"]
    records = sorted(RECORDS, key=lambda r: r.repo_url)
    # the template rows are the floor; the base rows are the base model, not the adapter disabled
    assert [r["text"] for r in result.rows[:2]] == [w.text for w in write_readmes(None, None, records, CONFIG.decoding)]
    model, tokenizer = tiny
    assert [r["text"] for r in result.rows[2:4]] == [w.text for w in write_readmes(model, tokenizer, records, CONFIG.decoding)]
    # eval loss: 2 section samples round-robin, one per repository; none for the template
    assert result.config["n_loss_samples"] == 2
    losses = [result.metric(s, "eval_loss") for s in ("template", "base", "fine_tuned")]
    assert losses[0] is None and all(math.isfinite(v) for v in losses[1:]) and losses[1] != losses[2]
    assert result.metric("base", "perplexity") == pytest.approx(math.exp(losses[1]))
    assert (result.n_repos, result.adapter_dir, result.base_model_dir) == (2, str(tiny_adapter), str(tiny_model_dir))


def test_the_template_floor_has_exact_metrics(report):
    result, _ = report
    template = result.systems["template"]
    # alpha's real README has Installation (covered); beta's has Usage (covered) and License (no license
    # fact, so no section): 1 and 1/2, mean 0.75, sd sqrt(1/8), t(1 dof) = 12.71 -> half-width 12.71 * 0.25
    assert template["coverage"] == 0.75
    # t(1 dof) = 12.71: 0.75 -/+ 3.18 leaves [0, 1], and a share's interval is clipped to it
    assert template["coverage_ci"] == [0.0, 1.0]
    # pyproject names the package: `pip install <name>` is in both, and both titles are the name
    assert (template["install_ok"], template["title_ok"], template["degenerate"]) == (1.0, 1.0, 0)
    # the template mentions no path, and only the repository's own URL (git clone): nothing invented
    assert (template["hallucinated_path_rate"], template["invented_url_rate"], template["invented_urls"]) == (0.0, 0.0, "0 of 2")
    assert template["removed_by_grounding"] == 0 and template["tokens_per_s"] is None


@pytest.mark.parametrize(
    "with_adapter, baseline, systems",
    [(True, False, ["fine_tuned"]), (False, False, ["template", "base"]), (False, True, ["template", "base"])],
)
def test_which_systems_are_scored(tiny_model_dir, tiny_adapter, with_adapter, baseline, systems):
    config = EvalConfig(max_repos=1, decoding=DecodingConfig(max_new_tokens=2), device="cpu", max_loss_samples=0,
                        baseline=baseline, with_features=False)
    result = evaluate(WriterSpec(Path(tiny_model_dir), Path(tiny_adapter) if with_adapter else None), RECORDS, SAMPLES, config)
    assert list(result.systems) == systems
    assert [r["repo"] for r in result.rows] == ["alpha"] * len(systems)  # max_repos=1: the first by URL
    assert all(result.metric(s, "eval_loss") is None for s in systems)  # max_loss_samples=0 skips it


def test_evaluate_without_records_is_an_error(tiny_model_dir):
    with pytest.raises(ValueError, match="records is empty"):
        evaluate(WriterSpec(Path(tiny_model_dir)), [], [], EvalConfig())


def test_write_eval_report_writes_every_file(report, tmp_path):
    result, _ = report
    result = result.model_copy(update={"run": {"records": "dev.jsonl", "profile": "demo"}})
    paths = write_eval_report(result, tmp_path / "run1")
    assert {name: path.rsplit("/", 1)[1] for name, path in paths.items()} == {
        "generations": "generations.jsonl", "metrics": "metrics.json", "report": "report.md", "plot": "metrics.png"}
    lines = [json.loads(line) for line in (tmp_path / "run1" / "generations.jsonl").read_text().splitlines()]
    assert [(line["system"], line["repo"]) for line in lines] == [(r["system"], r["repo"]) for r in result.rows]
    assert lines[0]["text"] == result.rows[0]["text"]
    metrics = json.loads((tmp_path / "run1" / "metrics.json").read_text())
    assert "rows" not in metrics and metrics["run"] == {"records": "dev.jsonl", "profile": "demo"}
    assert metrics["systems"]["base"]["rougeL"] == result.metric("base", "rougeL")
    assert (tmp_path / "run1" / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report_md = (tmp_path / "run1" / "report.md").read_text()
    assert "| metric | template | base | fine_tuned |" in report_md
    assert "| install_ok | 1.000 [1.000, 1.000] |" not in report_md  # install_ok is a share, it has no CI
    assert "| install_ok | 1.000 |" in report_md
    assert "| alpha | template |" in report_md and "![metrics](metrics.png)" in report_md
    assert "- eval loss: 2 section samples, round-robin across repositories" in report_md
    assert "| systems | mean difference | 95% CI | higher on |" in report_md
    assert "| fine_tuned - base |" in report_md and metrics["paired"].keys() == result.paired.keys()


def test_paired_differences_are_per_repository_with_exact_values():
    rows = [{"system": system, "repo_url": url, "rougeL": score} for system, url, score in [
        ("template", "a", 0.10), ("template", "b", 0.10), ("template", "c", 0.10),
        ("base", "a", 0.20), ("base", "b", 0.10), ("base", "c", 0.30),
        ("fine_tuned", "a", 0.25), ("fine_tuned", "b", 0.05), ("fine_tuned", "c", 0.45),
        ("fine_tuned", "d", 0.99),  # a repository the others lack is not paired
    ]]
    paired = paired_differences(rows)
    assert list(paired) == ["fine_tuned - base", "fine_tuned - template", "base - template"]
    # fine_tuned - base: +0.05, -0.05, +0.15 -> mean 0.05, sd 0.1, t(2) 4.303 -> half 4.303 * 0.1 / sqrt(3)
    first = paired["fine_tuned - base"]
    assert (first["wins"], first["n"]) == (2, 3) and first["mean"] == pytest.approx(0.05)
    assert first["ci"] == pytest.approx([0.05 - 4.303 * 0.1 / math.sqrt(3), 0.05 + 4.303 * 0.1 / math.sqrt(3)], abs=1e-3)
    # base - template: +0.1, 0, +0.2: two wins, the tie is not one
    assert (paired["base - template"]["wins"], paired["base - template"]["mean"]) == (2, pytest.approx(0.1))


def test_compare_runs_tables_every_system_of_every_run(report, tmp_path):
    result, _ = report
    for name, profile in (("run1", "demo"), ("run2", "cpu")):
        write_eval_report(result.model_copy(update={"run": {"records": "dev.jsonl", "profile": profile}}), tmp_path / name)
    path = compare_runs([tmp_path / "run1", tmp_path / "run2"], tmp_path / "out")
    assert path == tmp_path / "out" / "comparison.md"
    rows = [line for line in path.read_text().splitlines() if line.startswith(("| run1 ", "| run2 "))]
    adapter = Path(result.adapter_dir).name
    assert [line.split(" | ")[:5] for line in rows] == [
        ["| run1", "template", "—", "dev.jsonl", "demo"], ["| run1", "base", "—", "dev.jsonl", "demo"],
        ["| run1", "fine_tuned", adapter, "dev.jsonl", "demo"],
        ["| run2", "template", "—", "dev.jsonl", "cpu"], ["| run2", "base", "—", "dev.jsonl", "cpu"],
        ["| run2", "fine_tuned", adapter, "dev.jsonl", "cpu"],
    ]
    assert (tmp_path / "out" / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_runs_names_a_folder_without_metrics(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere: no metrics.json \(not a `moxi evaluate` output folder\)"):
        compare_runs([tmp_path / "nowhere"], tmp_path)


def test_a_dpo_adapter_is_the_fourth_system_paired_against_sft_and_base(tiny_model_dir, tiny_adapter, tmp_path):
    config = EvalConfig(max_repos=2, decoding=DecodingConfig(max_new_tokens=2), device="cpu", max_loss_samples=0,
                        with_features=False)
    # the SFT adapter stands in for a DPO one: the dpo rows must then equal the fine_tuned rows exactly
    result = evaluate(WriterSpec(Path(tiny_model_dir), Path(tiny_adapter)), RECORDS, SAMPLES, config,
                      dpo_adapter_dir=Path(tiny_adapter))
    assert list(result.systems) == ["template", "base", "fine_tuned", "dpo"]
    by_system = {system: [r["text"] for r in result.rows if r["system"] == system] for system in result.systems}
    assert by_system["dpo"] == by_system["fine_tuned"]
    assert {"dpo - fine_tuned", "dpo - base"} <= set(result.paired)
    assert result.paired["dpo - fine_tuned"]["mean"] == 0.0 and result.paired["dpo - fine_tuned"]["wins"] == 0
    write_eval_report(result.model_copy(update={"run": {"records": "dev.jsonl", "profile": "demo"}}), tmp_path / "run1")
    report_md = (tmp_path / "run1" / "report.md").read_text()
    assert "| metric | template | base | fine_tuned | dpo |" in report_md and "| dpo - fine_tuned |" in report_md
    assert f"DPO adapter `{tiny_adapter}`" in report_md
    rows = [line.split(" | ")[:3] for line in compare_runs([tmp_path / "run1"], tmp_path / "out").read_text().splitlines()
            if line.startswith("| run1 ")]
    assert rows[-1] == ["| run1", "dpo", Path(tiny_adapter).name]


def test_a_dpo_adapter_without_the_sft_one_is_an_error(tiny_model_dir, tiny_adapter):
    with pytest.raises(ValueError, match="give the SFT adapter too"):
        evaluate(WriterSpec(Path(tiny_model_dir)), RECORDS, SAMPLES, EvalConfig(), dpo_adapter_dir=Path(tiny_adapter))


def test_paired_differences_rank_dpo_above_fine_tuned():
    rows = [{"system": system, "repo_url": url, "rougeL": score} for system, url, score in [
        ("base", "a", 0.20), ("base", "b", 0.10),
        ("fine_tuned", "a", 0.25), ("fine_tuned", "b", 0.15),
        ("dpo", "a", 0.30), ("dpo", "b", 0.10),
    ]]
    paired = paired_differences(rows)
    assert list(paired) == ["dpo - fine_tuned", "dpo - base", "fine_tuned - base"]
    assert paired["dpo - fine_tuned"]["mean"] == pytest.approx(-0.0) and paired["dpo - fine_tuned"]["wins"] == 1
    assert paired["dpo - base"]["mean"] == pytest.approx(0.05)
