"""preference_pairs and dpo_adapter materialize on the tiny model: pairs with their counts, a DPO adapter with its curves."""

import dagster as dg

from moxi_pipeline.records import Artifact
from moxi_pipeline_tests.export.test_export import save_random_adapter
from moxi_pipeline_tests.training.test_preferences_dpo import _samples


def test_preference_pairs_and_dpo_adapter_materialize(tmp_path, tiny_model_dir):
    from moxi_pipeline.defs import preferences
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource

    adapter = save_random_adapter(tiny_model_dir, tmp_path / "adapter")

    @dg.asset(name="base_model", group_name="model")
    def base_model() -> Artifact:
        return Artifact(name="base_model", path=str(tiny_model_dir))

    @dg.asset(name="lora_adapter", group_name="model")
    def lora_adapter() -> Artifact:
        return Artifact(name="lora_adapter", path=str(adapter), metadata={"run_id": "run1"})

    @dg.asset(name="sft_dataset", group_name="data")
    def sft_dataset() -> list:
        return _samples(4)

    data_dir = str(tmp_path / "data")
    result = dg.materialize(
        [base_model, lora_adapter, sft_dataset, preferences.preference_pairs, preferences.dpo_adapter],
        resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": ArtifactsResource(data_dir=data_dir)},
        run_config={"ops": {"preference_pairs": {"config": {"max_new_tokens": 12, "device": "cpu"}},
                            "dpo_adapter": {"config": {"max_steps": 1}}}},
    )
    assert result.success
    pairs = result.asset_materializations_for_node("preference_pairs")[0].metadata
    assert pairs["pairs"].value + pairs["skipped"].value == 4 and pairs["generated_now"].value == 4
    kinds = ("paths", "urls", "commands", "anchors")
    assert {f"rejected_with_ungrounded_{kind}" for kind in kinds} <= set(pairs) and "lengths" in pairs
    assert set(pairs["ungrounded_removed_by_kind"].value) == set(kinds)
    assert pairs["profile"].value == "demo"
    dpo = result.asset_materializations_for_node("dpo_adapter")[0].metadata
    assert dpo["steps"].value == 1 and "curves" in dpo
    assert (tmp_path / "data" / "models" / "dpo_adapter" / "run1" / "adapter_model.safetensors").is_file()
