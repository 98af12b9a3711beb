"""preference_pairs and dpo_adapter materialize on the tiny model: pairs with their counts, a DPO adapter with its curves."""

import dagster as dg

from moxi_pipeline.records import Artifact
from moxi_pipeline_tests.export.test_export import save_random_adapter
from moxi_pipeline_tests.training.test_preferences_dpo import _samples
from moxi_pipeline_tests.training.test_preferences_openai import ANSWER


def _upstream(tmp_path, tiny_model_dir):
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

    return [base_model, lora_adapter, sft_dataset]


def test_preference_pairs_and_dpo_adapter_materialize(tmp_path, tiny_model_dir):
    from moxi_pipeline.defs import preferences
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient

    data_dir = str(tmp_path / "data")
    result = dg.materialize(
        [*_upstream(tmp_path, tiny_model_dir), preferences.preference_pairs, preferences.dpo_adapter],
        resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": ArtifactsResource(data_dir=data_dir),
                   "openai": OpenAIClient(api_key="")},
        run_config={"ops": {"preference_pairs": {"config": {"max_new_tokens": 12, "device": "cpu"}},
                            "dpo_adapter": {"config": {"max_steps": 1}}}},
    )
    assert result.success
    pairs = result.asset_materializations_for_node("preference_pairs")[0].metadata
    assert pairs["pairs"].value + pairs["skipped"].value == 4 and pairs["generated_now"].value == 4
    kinds = ("paths", "urls", "commands", "anchors", "items")
    assert {f"rejected_with_ungrounded_{kind}" for kind in kinds} <= set(pairs) and "lengths" in pairs
    assert set(pairs["ungrounded_removed_by_kind"].value) == set(kinds)
    assert pairs["profile"].value == "demo" and pairs["chosen_from"].value == "sft"
    dpo = result.asset_materializations_for_node("dpo_adapter")[0].metadata
    assert dpo["steps"].value == 1 and dpo["resumed_from_step"].value == 0 and "curves" in dpo
    assert (tmp_path / "data" / "models" / "dpo_adapter" / "run1" / "adapter_model.safetensors").is_file()


def test_preference_pairs_take_the_openai_models_grounded_answers_and_pay_once(tmp_path, tiny_model_dir, monkeypatch):
    from moxi_pipeline.defs import preferences
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient
    from moxi_pipeline.training.preferences import read_pairs
    from moxi_pipeline_tests.training.test_preferences_openai import (
        API_KEY,
        SectionServer,
    )

    data_dir = str(tmp_path / "data")
    assets = [*_upstream(tmp_path, tiny_model_dir), preferences.preference_pairs]
    run_config = {"ops": {"preference_pairs": {"config": {"max_new_tokens": 12, "device": "cpu",
                                                          "preferences": "openai"}}}}
    with SectionServer() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)  # the operator's endpoint: the key may go there
        resources = {"io_manager": LocalRecordIOManager(data_dir=data_dir),
                     "artifacts": ArtifactsResource(data_dir=data_dir),
                     "openai": OpenAIClient(api_key=API_KEY, base_url=fake.base_url, max_retries=0)}
        runs = [dg.materialize(assets, resources=resources, run_config=run_config) for _ in range(2)]
        assert len(fake.requests) == 4  # one answer per train prompt, and none in the second run
    first, second = (run.asset_materializations_for_node("preference_pairs")[0].metadata for run in runs)
    assert first["openai_requests"].value == 4 and second["openai_requests"].value == 0
    assert first["chosen_from"].value.startswith("openai:") and first["openai_answers"].value == 4
    pairs = read_pairs(first["path"].value)
    assert len(pairs) == first["pairs"].value > 0
    assert all(p.chosen.startswith("## Usage") and "made_up_guide" not in p.chosen for p in pairs)
    # the model's answer, not the real section: its grounded sentence is there; its invented path is not, nor its
    # `toolN --help`, a command these repositories' facts do not give
    assert all("` to call its functions." in p.chosen and "--help" not in p.chosen for p in pairs)
    assert "made_up_guide" in ANSWER and "--help" in ANSWER
    assert API_KEY not in repr(first) + repr(second)
    assert not any(API_KEY in path.read_text() for path in (tmp_path / "data").rglob("*.json*"))
