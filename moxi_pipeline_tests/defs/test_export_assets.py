"""merged_model and gguf_model materialize on the tiny model with a random LoRA adapter, with their checks in metadata."""

import dagster as dg
import pytest

from moxi_pipeline.records import Artifact
from moxi_pipeline_tests.export.test_export import save_random_adapter


def test_merged_and_gguf_models_materialize_with_their_checks(tmp_path, tiny_model_dir):
    from moxi_pipeline.defs import export
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource

    adapter = save_random_adapter(tiny_model_dir, tmp_path / "adapter")
    dpo = save_random_adapter(tiny_model_dir, tmp_path / "dpo", seed=1)
    report_dir = tmp_path / "eval"
    report_dir.mkdir()
    (report_dir / "report.md").write_text("# Moxi evaluation\n\nintro\n\n| metric | sft | dpo |\n|---|---|---|\n"
                                          "| rougeL | 0.2 | 0.3 |\n\n![metrics](metrics.png)\n\n## Per repository\n")

    @dg.asset(name="base_model", group_name="model")
    def base_model() -> Artifact:
        return Artifact(name="base_model", path=str(tiny_model_dir))

    @dg.asset(name="lora_adapter", group_name="model")
    def lora_adapter() -> Artifact:
        return Artifact(name="lora_adapter", path=str(adapter), metadata={"run_id": "run1"})

    @dg.asset(name="dpo_adapter", group_name="model")
    def dpo_adapter() -> Artifact:
        return Artifact(name="dpo_adapter", path=str(dpo))

    @dg.asset(name="eval_report", group_name="model")
    def eval_report() -> Artifact:
        return Artifact(name="eval_report", path=str(report_dir), metadata={"fine_tuned_rougeL": 0.2, "dpo_rougeL": 0.3})

    data_dir = str(tmp_path / "data")
    result = dg.materialize(
        [base_model, lora_adapter, dpo_adapter, eval_report, export.merged_model, export.gguf_model],
        resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": ArtifactsResource(data_dir=data_dir)},
        run_config={"ops": {"gguf_model": {"config": {"types": ["f16", "q8_0", "q4_0"]}}}},
    )
    assert result.success
    merged = result.asset_materializations_for_node("merged_model")[0].metadata
    assert merged["max_abs_logit_diff"].value < 1e-4
    assert merged["adapter_run_id"].value == "run1"
    # DPO scored higher on the held-out split, so DPO is merged, and the card's table is the eval report's
    assert merged["adapter"].value == "dpo" and merged["adapter_dir"].value == str(dpo)
    assert merged["adapter_reason"].value == "held-out ROUGE-L dpo 0.3000 vs sft 0.2000: DPO is higher"
    card = (tmp_path / "data" / "models" / "merged_model" / "README.md").read_text()
    assert "## Evaluation\n\n| metric | sft | dpo |\n|---|---|---|\n| rougeL | 0.2 | 0.3 |\n" in card
    assert "Per repository" not in card
    assert (tmp_path / "data" / "models" / "merged_model" / "model.safetensors").is_file()
    gguf = result.asset_materializations_for_node("gguf_model")[0].metadata
    assert gguf["f16_top1_agree"].value >= 0.99 and gguf["q8_0_top1_agree"].value >= 0.95
    assert {"q4_0_top1_agree", "f16_size_mb", "q8_0_size_mb", "q4_0_size_mb"} <= set(gguf)
    names = sorted(p.name for p in (tmp_path / "data" / "models" / "gguf_model").iterdir())
    assert names == ["moxi-f16.gguf", "moxi-q4_0.gguf", "moxi-q8_0.gguf"]


def test_gguf_model_with_an_unknown_type_fails_naming_it(tmp_path, tiny_model_dir):
    from moxi_pipeline.defs import export
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource

    @dg.asset(name="merged_model", group_name="model")
    def merged_model() -> Artifact:
        return Artifact(name="merged_model", path=str(tiny_model_dir))

    data_dir = str(tmp_path / "data")
    result = dg.materialize(
        [merged_model, export.gguf_model], raise_on_error=False,
        resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": ArtifactsResource(data_dir=data_dir)},
        run_config={"ops": {"gguf_model": {"config": {"types": ["q5_k"]}}}},
    )
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert "gguf type ['q5_k'] is not one of" in str(failure.step_failure_data.error)


@pytest.mark.parametrize(
    ("mode", "sft", "dpo", "chosen"),
    [("auto", 0.2, 0.3, "dpo"), ("auto", 0.3, 0.3, "sft"), ("auto", 0.3, 0.2, "sft"), ("auto", 0.2, None, "sft"),
     ("sft", 0.1, 0.9, "sft"), ("dpo", 0.9, 0.1, "dpo")],
)
def test_the_merged_adapter_is_dpo_only_when_it_beats_sft_or_is_forced(mode, sft, dpo, chosen):
    from moxi_pipeline.defs.export import choose_adapter

    assert choose_adapter(mode, sft, dpo)[0] == chosen
