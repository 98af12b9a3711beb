"""The Dagster wiring: the asset contract, the import rules, and the whole graph on a tiny model."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from moxi_pipeline.records import (
    Artifact,
    ReadmeChunk,
    RepoRecord,
    SampleInput,
    SftSample,
)

PACKAGE = Path(__file__).resolve().parents[2] / "moxi_pipeline"
ASSET_KEYS = {"base_model", "raw_readmes", "readme_chunks", "sft_dataset", "lora_adapter", "eval_report", "run_comparison",
              "merged_model", "gguf_model", "preference_pairs", "dpo_adapter"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_defs_import_dagster(path):
    # Rule: domain code runs from a notebook or script without Dagster; only defs/ and definitions.py wire it.
    in_glue = path.parts[-2] == "defs" or path.name == "definitions.py"
    assert in_glue or "dagster" not in _imported_modules(path), f"{path} imports dagster outside defs/"


def test_loading_definitions_imports_no_ml_library():
    # Heavy libraries load inside the functions that use them, so `dagster dev` and the CLI start fast.
    code = (
        "import sys, moxi_pipeline.definitions as d; "
        "print([m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_asset_keys_are_the_contract():
    from moxi_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == ASSET_KEYS
    parents = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()}
    assert parents["lora_adapter"] == {"base_model", "sft_dataset"}
    assert parents["preference_pairs"] == {"base_model", "lora_adapter", "sft_dataset"}
    assert parents["dpo_adapter"] == {"base_model", "lora_adapter", "preference_pairs"}
    assert parents["eval_report"] == {"base_model", "lora_adapter", "dpo_adapter", "sft_dataset", "raw_readmes"}
    assert parents["run_comparison"] == {"eval_report"}
    assert parents["merged_model"] == {"base_model", "lora_adapter", "dpo_adapter", "eval_report"}
    assert parents["gguf_model"] == {"merged_model"}
    assert [key.name for check in defs.asset_checks for key in check.check_keys] == [
        "adapter_beats_base_and_template", "raw_readmes_no_empty_readme", "raw_readmes_no_duplicate_repo_url",
        "raw_readmes_file_tree_not_empty", "raw_readmes_github_failures_under_threshold"]


def _write_corpus(path: Path, n_repos: int = 6) -> Path:
    rows = []
    for i in range(n_repos):
        name = f"tool{i}"
        readme = (
            f"# {name}\n\nA command line tool number {i} that renames files in bulk.\n\n"
            f"## Installation\n\n```bash\npip install {name}\n```\n\n"
            f"## Usage\n\nRun `{name} --help`. The entry point is `{name}/cli.py`.\n\n## License\n\nMIT\n"
        )
        rows.append({
            "repo": f"octo/{name}", "repo_url": f"https://github.com/octo/{name}", "readme": readme,
            "file_tree": ["pyproject.toml", f"{name}/__init__.py", f"{name}/cli.py", "tests/test_cli.py"],
            "key_files": [{"path": "pyproject.toml", "content": f'[project]\nname = "{name}"\n'}],
            "language": "Python",
        })
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def test_whole_graph_materializes_on_a_tiny_model(tmp_path, tiny_model_dir):
    from moxi_pipeline.defs import (
        collect,
        dataset,
        evaluation,
        export,
        preferences,
        training,
    )
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient

    corpus = _write_corpus(tmp_path / "corpus.jsonl")
    data_dir = str(tmp_path / "data")
    run_config = {"ops": {
        "raw_readmes": {"config": {"source": "jsonl", "path": str(corpus)}},
        "base_model": {"config": {"source": str(tiny_model_dir)}},
        "sft_dataset": {"config": {"test_fraction": 0.34}},
        "lora_adapter": {"config": {"profile": "demo", "max_steps": 2, "max_length": 512, "device": "cpu"}},
        # DPO on every pair the tiny SFT adapter gives (closeness to the real answer is not its point here)
        "preference_pairs": {"config": {"max_new_tokens": 12, "max_rouge_l": 1.0, "device": "cpu"}},
        "dpo_adapter": {"config": {"max_steps": 1, "device": "cpu"}},
        "eval_report": {"config": {"max_repos": 2, "device": "cpu"}},
        "gguf_model": {"config": {"types": ["q8_0"]}},
    }}
    result = dg.materialize(
        [*dg.load_assets_from_modules([collect, dataset, training, preferences, evaluation, export]),
         evaluation.adapter_beats_base_and_template],
        resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": ArtifactsResource(data_dir=data_dir),
                   "openai": OpenAIClient(api_key="")},
        run_config=run_config,
    )
    assert result.success
    records = (tmp_path / "data" / "records" / "raw_readmes.jsonl").read_text().splitlines()
    assert len(records) == 6
    latest = (tmp_path / "data" / "models" / "lora_adapter" / "LATEST").read_text().strip()
    adapter_dir = tmp_path / "data" / "models" / "lora_adapter" / latest
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert (tmp_path / "data" / "sft" / "training_dataset.json").is_file()
    run_dir = tmp_path / "data" / "eval" / "runs" / (tmp_path / "data" / "models" / "lora_adapter" / "LATEST").read_text().strip()
    assert sorted(p.name for p in run_dir.iterdir()) == ["generations.jsonl", "metrics.json", "metrics.png", "report.md"]
    assert (tmp_path / "data" / "eval" / "comparison.md").is_file()
    eval_meta = result.asset_materializations_for_node("eval_report")[0].metadata
    assert {"template_rougeL", "base_rougeL", "fine_tuned_rougeL", "dpo_rougeL", "fine_tuned_hallucinated_path_rate",
            "paired_dpo_minus_fine_tuned_rougeL", "paired_dpo_minus_base_rougeL"} <= set(eval_meta)
    merged = result.asset_materializations_for_node("merged_model")[0].metadata
    assert merged["adapter"].value in ("sft", "dpo") and "held-out ROUGE-L" in merged["adapter_reason"].value
    assert (tmp_path / "data" / "models" / "gguf_model" / "moxi-q8_0.gguf").is_file()
    assert result.asset_materializations_for_node("run_comparison")[0].metadata["runs"].value == 1
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "adapter_beats_base_and_template"
    assert check.severity == dg.AssetCheckSeverity.WARN


@pytest.mark.parametrize(
    ("op", "config", "fragment"),
    [
        ("raw_readmes", {"source": "ftp"}, "ftp"),
        ("raw_readmes", {"source": "jsonl", "path": "/nonexistent/corpus.jsonl"}, "/nonexistent/corpus.jsonl"),
    ],
)
def test_bad_collect_config_names_the_field(tmp_path, op, config, fragment):
    from moxi_pipeline.defs import collect as collect_defs
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager

    result = dg.materialize(
        [collect_defs.raw_readmes],
        resources={"io_manager": LocalRecordIOManager(data_dir=str(tmp_path))},
        run_config={"ops": {op: {"config": config}}},
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert fragment in failure.step_failure_data.error.cause.message


def _sample(split: str, content: str = "## Usage\n\nRun it.") -> SftSample:
    return SftSample(
        instruction="Write the Usage section.", content=content, repo_url=f"u/{split}", repo=split, kind="section",
        split=split, input=SampleInput(file_tree=("main.py",), project_type="python_cli"),
    )


def test_lora_r_zero_fails_the_asset_naming_the_field(tmp_path):
    from moxi_pipeline.defs.training import LoraAdapterConfig, lora_adapter
    from moxi_pipeline.defs.resources import ArtifactsResource

    with pytest.raises(ValueError, match=r"lora_r.*0"):
        lora_adapter(
            context=dg.build_asset_context(), config=LoraAdapterConfig(lora_r=0),
            artifacts=ArtifactsResource(data_dir=str(tmp_path)),
            base_model=Artifact(name="base_model", path=str(tmp_path / "missing")),
            sft_dataset=[_sample("train"), _sample("test")],
        )


def test_dataset_empty_after_filtering_fails_the_asset(tmp_path):
    from moxi_pipeline.defs.dataset import SftDatasetConfig, sft_dataset
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient

    record = RepoRecord(repo_url="u/a", owner="o", repo="a", readme="# a\n\nhi", file_tree=("a.py",), source="local")
    chunk = ReadmeChunk(repo_url="u/a", repo="a", chunk_index=0, section_title="a", content="# a\n\nhi", file_tree=("a.py",))
    with pytest.raises(ValueError, match="sft_dataset is empty after filtering"):
        sft_dataset(
            context=dg.build_asset_context(), config=SftDatasetConfig(),
            artifacts=ArtifactsResource(data_dir=str(tmp_path)), openai=OpenAIClient(api_key=""),
            raw_readmes=[record], readme_chunks=[chunk],
        )


# --- skips are counted, explained, and fail the asset past a threshold ------------------------------


def _materialize_raw_readmes(tmp_path, config: dict):
    from moxi_pipeline.defs import collect as collect_defs
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager

    return dg.materialize(
        [collect_defs.raw_readmes], resources={"io_manager": LocalRecordIOManager(data_dir=str(tmp_path / "data"))},
        run_config={"ops": {"raw_readmes": {"config": config}}}, raise_on_error=False,
    )


def _failure(result) -> tuple[str, dict]:
    [failure] = [event for event in result.all_events if event.is_step_failure]
    user_failure = failure.step_failure_data.user_failure_data
    return user_failure.description, {key: value.value for key, value in user_failure.metadata.items()}


def test_raw_readmes_fails_when_every_item_is_skipped(tmp_path):
    # Three repositories without a README used to give a successful asset with zero records.
    for name in ("a", "b", "c"):
        (tmp_path / "repos" / name).mkdir(parents=True)
        (tmp_path / "repos" / name / "main.py").write_text("print(1)\n")
    result = _materialize_raw_readmes(tmp_path, {"source": "local", "path": str(tmp_path / "repos")})
    assert not result.success
    description, metadata = _failure(result)
    assert description == (
        "raw_readmes kept nothing: all 3 items were skipped "
        "(3 x no README (readme.md/readme.rst/readme.txt/readme, any case) at the root)"
    )
    assert (metadata["skipped"], metadata["skipped_share"]) == (3, 1.0)


def _corpus_with_bad_lines(path: Path, good: int, bad: int) -> Path:
    rows = [json.dumps({"repo_url": f"https://github.com/o/r{i}", "readme": "# r\n\ntext", "file_tree": ["a.py"]})
            for i in range(good)]
    path.write_text("\n".join(rows + ["{not json"] * bad) + "\n")
    return path


def test_raw_readmes_reports_skip_count_share_and_reasons(tmp_path):
    corpus = _corpus_with_bad_lines(tmp_path / "c.jsonl", good=3, bad=1)
    result = _materialize_raw_readmes(tmp_path, {"source": "jsonl", "path": str(corpus)})
    assert result.success
    metadata = result.asset_materializations_for_node("raw_readmes")[0].metadata
    assert (metadata["repositories"].value, metadata["skipped"].value, metadata["skipped_share"].value) == (3, 1, 0.25)
    assert metadata["skip_reasons"].value == (
        "| reason | count |\n|---|---|\n"
        "| malformed JSON: Expecting property name enclosed in double quotes: line … column … (char …) | 1 |"
    )
    assert "| line 4 | malformed JSON:" in metadata["skipped_items"].value


def test_raw_readmes_fails_past_max_skipped_share(tmp_path):
    corpus = _corpus_with_bad_lines(tmp_path / "c.jsonl", good=1, bad=2)
    result = _materialize_raw_readmes(tmp_path, {"source": "jsonl", "path": str(corpus), "max_skipped_share": 0.5})
    assert not result.success
    description, metadata = _failure(result)
    assert description == (
        "raw_readmes skipped 2 of 3 items (67%), over max_skipped_share=0.5; most common: 2 x malformed JSON: "
        "Expecting property name enclosed in double quotes: line … column … (char …)"
    )
    assert metadata["skipped"] == 2


@pytest.mark.parametrize(("n_skipped", "fails"), [(1, False), (3, True)])
def test_sft_dataset_reports_the_skips_build_sft_dataset_announces(tmp_path, monkeypatch, n_skipped, fails):
    from moxi_pipeline.defs import dataset as dataset_defs
    from moxi_pipeline.defs.dataset import SftDatasetConfig, sft_dataset
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient

    def build(records, chunks, config, progress):
        for index in range(n_skipped):
            progress(f"skipped u/train chunk {index}: 12 chars < min_content_chars=40")
        progress(f"2 samples; {n_skipped} too short")
        return [_sample("train", "## Usage\n\nRun it with care, it renames files."), _sample("test")]

    monkeypatch.setattr(dataset_defs, "build_sft_dataset", build)
    context = dg.build_asset_context()
    run = lambda: sft_dataset(context=context, config=SftDatasetConfig(), artifacts=ArtifactsResource(data_dir=str(tmp_path)),
                              openai=OpenAIClient(api_key=""),
                              raw_readmes=[], readme_chunks=[])
    if fails:
        with pytest.raises(dg.Failure) as caught:
            run()
        assert caught.value.description == (
            "sft_dataset skipped 3 of 5 items (60%), over max_skipped_share=0.5; "
            "most common: 3 x … chars < min_content_chars=…")
        return
    assert len(run()) == 2
    metadata = context.get_output_metadata("result")
    assert (metadata["skipped"], metadata["skipped_share"]) == (1, 0.3333)
    assert metadata["skipped_items"].value.endswith("| u/train chunk 0 | 12 chars < min_content_chars=40 |")


@pytest.mark.parametrize(
    "tuned, base, floor, path_rate, passed",
    [
        (0.20, 0.10, 0.15, 0.00, True),
        (0.20, 0.10, 0.15, 0.05, True),  # at the threshold
        (0.20, 0.10, 0.15, 0.06, False),  # over 5% of mentioned paths are not in the repository
        (0.12, 0.10, 0.15, 0.00, False),  # beats the base model, not the template floor
        (0.12, 0.15, 0.10, 0.00, False),  # beats the floor, not the base model
        (0.15, 0.15, 0.10, 0.00, False),  # a tie is not a win
        (0.20, None, 0.15, 0.00, False),  # the base model was not scored: nothing shows the adapter helps
    ],
)
def test_adapter_check_needs_both_baselines_beaten_and_few_invented_paths(tuned, base, floor, path_rate, passed):
    from moxi_pipeline.defs.evaluation import adapter_beats_base_and_template

    metadata = {"fine_tuned_rougeL": tuned, "base_rougeL": base, "template_rougeL": floor,
                "fine_tuned_hallucinated_path_rate": path_rate}
    result = adapter_beats_base_and_template(
        Artifact(name="eval_report", path="x", metadata={k: v for k, v in metadata.items() if v is not None}))
    assert (result.passed, result.severity) == (passed, dg.AssetCheckSeverity.WARN)


@pytest.mark.parametrize("name, expected", [("multiprocess", None), ("in_process", "in_process")])
def test_the_executor_setting_picks_dagsters_executor(name, expected):
    # make demo runs in_process: the steps run one at a time on 2 cores anyway, without a subprocess each
    from moxi_pipeline.defs.executors import run_executor
    from moxi_pipeline.settings import load_settings

    assert load_settings({"MOXI_EXECUTOR": name}).executor == name
    executor = run_executor(name)
    assert (executor.name if executor is not None else None) == expected
