"""Sensors: a new SFT dataset requests one retraining run; a failed run leaves a redacted alert."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from moxi_pipeline.alerts import MASK, alerts_path, redact
from moxi_pipeline.defs.sensors import (
    alert_on_run_failure,
    retrain_job,
    retrain_on_new_dataset,
)
from moxi_pipeline.settings import load_settings


def _dataset_asset(dataset_hash: str | None):
    @dg.asset(name="sft_dataset")
    def sft_dataset(context) -> None:
        if dataset_hash is not None:
            context.add_output_metadata({"dataset_hash": dataset_hash})

    return sft_dataset


@dg.asset(name="lora_adapter", deps=["sft_dataset"])
def _adapter() -> None:
    pass


def _evaluate(instance: dg.DagsterInstance, cursor: str | None = None):
    """One tick: (its run requests, its skip message, the cursor the next tick starts from)."""
    tick = retrain_on_new_dataset.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    return tick.run_requests, tick.skip_message, tick.cursor


def test_retrain_job_trains_evaluates_compares_and_exports():
    from moxi_pipeline.definitions import defs

    job = defs.resolve_job_def(retrain_job.name)
    # a retrain produces the whole chain: SFT, DPO, the evaluation of both, and the exported model
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {
        "lora_adapter", "preference_pairs", "dpo_adapter", "eval_report", "run_comparison", "merged_model", "gguf_model"}
    status = {sensor.name: sensor.default_status for sensor in defs.sensors}
    # retraining takes the CPU for minutes, so it waits to be turned on; alerts are on from the start
    assert status == {"retrain_on_new_dataset": dg.DefaultSensorStatus.STOPPED,
                      "alert_on_run_failure": dg.DefaultSensorStatus.RUNNING}


def test_a_new_dataset_requests_one_retraining_run_keyed_by_its_hash():
    with dg.instance_for_test() as instance:
        assert dg.materialize([_dataset_asset("abc123def4567890")], instance=instance).success
        requests, _, cursor = _evaluate(instance)
        assert [r.run_key for r in requests] == ["sft_dataset:abc123def4567890"]  # a dataset never trains twice
        assert requests[0].tags["moxi/dataset_hash"] == "abc123def456"
        assert retrain_on_new_dataset.job_name == "retrain_job"  # the sensor's one target
        # the next tick, with no new materialization, requests nothing
        assert _evaluate(instance, cursor)[0] == []


def test_a_run_that_trains_on_its_own_dataset_requests_nothing():
    with dg.instance_for_test() as instance:
        assert dg.materialize([_dataset_asset("abc"), _adapter], instance=instance).success
        requests, skip_message, _ = _evaluate(instance)
        assert requests == []
        assert skip_message.endswith("trains on this dataset itself")


def test_a_dataset_without_a_hash_is_skipped_with_the_reason():
    with dg.instance_for_test() as instance:
        assert dg.materialize([_dataset_asset(None)], instance=instance).success
        requests, skip_message, _ = _evaluate(instance)
        assert requests == []
        assert skip_message == "the sft_dataset materialization carries no dataset_hash"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect mongodb://moxi:hunter2@mongodb:27017/moxi failed", f"connect mongodb://moxi:{MASK}@mongodb:27017/moxi failed"),
        ("token tok-SECRET-1 rejected", f"token {MASK} rejected"),
        ("postgresql://dagster:p%40ss@db/dagster", f"postgresql://dagster:{MASK}@db/dagster"),
        ("http://example.com:8080/path has no password", "http://example.com:8080/path has no password"),
        ("postgresql://dagster:p@ss@db/dagster", f"postgresql://dagster:{MASK}@db/dagster"),  # split at the last '@'
        ("Bearer tok-SECRET-1, retry", f"Bearer {MASK}, retry"),
        ("xtok-SECRET-1 and tok-SECRET-12 are other words", "xtok-SECRET-1 and tok-SECRET-12 are other words"),
    ],
)
def test_redact_masks_secret_settings_and_url_passwords(text, expected):
    settings = load_settings(env={"GITHUB_TOKEN": "tok-SECRET-1"})
    assert redact(text, settings) == expected


def test_redact_leaves_values_too_short_to_be_secrets_alone():
    # README suggests OPENAI_API_KEY=x for local servers: "proxy" must not become "pro***y"
    settings = load_settings(env={"OPENAI_API_KEY": "x", "GITHUB_TOKEN": "box-7"})
    assert redact("proxy error connecting to box-7", settings) == "proxy error connecting to box-7"


def test_a_failed_run_leaves_an_alert_with_the_error_and_no_secret(tmp_path, monkeypatch, caplog):
    uri = "mongodb://moxi:hunter2-secret@mongodb:27017"
    monkeypatch.setenv("MOXI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MONGODB_URI", uri)

    @dg.asset
    def records() -> None:
        raise ConnectionError(f"could not reach {uri}")

    with dg.instance_for_test() as instance:
        result = dg.materialize([records], instance=instance, raise_on_error=False)
        assert not result.success
        caplog.clear()  # the run's own log quotes the exception; what matters is what the sensor writes
        failure = next(event for event in result.all_events if event.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=failure,
        ).for_run_failure()
        alert_on_run_failure(context)

    lines = alerts_path(tmp_path).read_text().splitlines()
    assert len(lines) == 1
    alert = json.loads(lines[0])
    assert alert["run_id"] == result.run_id
    assert alert["job_name"] == result.dagster_run.job_name
    # MONGODB_URI is a secret setting, so the whole URI goes
    assert f"records: ConnectionError: could not reach {MASK}" in alert["message"]
    assert "hunter2-secret" not in lines[0]
    assert "hunter2-secret" not in caplog.text
