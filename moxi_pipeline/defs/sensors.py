"""Sensors: retrain when the SFT dataset changes, and write an alert when a run fails."""

import dagster as dg

from moxi_pipeline.alerts import alerts_path, record_run_failure
from moxi_pipeline.settings import load_settings

SFT_DATASET = dg.AssetKey("sft_dataset")
LORA_ADAPTER = dg.AssetKey("lora_adapter")

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(LORA_ADAPTER).downstream(),
    # everything below lora_adapter: preference pairs and DPO, the 4-system evaluation, and the export of the
    # adapter that scored best, so a retrain ends with a model anyone can run
    description="Train a new SFT adapter on the current SFT dataset, continue it with DPO, evaluate both, "
                "compare runs and export the better one (merged safetensors, GGUF).",
)


def _run_plans(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey) -> bool:
    """Whether run `run_id` was launched to materialize `key` too (Dagster logs a 'planned' event per asset)."""
    planned = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    return any(record.event_log_entry.dagster_event.asset_key == key for record in planned)


# Stopped until turned on (UI: Automation, or `dagster sensor start retrain_on_new_dataset`): a training run
# takes the CPU for minutes. Once on, every new dataset trains exactly once: the run key is its hash.
@dg.asset_sensor(asset_key=SFT_DATASET, job=retrain_job, minimum_interval_seconds=60)
def retrain_on_new_dataset(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    materialization = asset_event.asset_materialization
    dataset_hash = materialization.metadata.get("dataset_hash") if materialization else None
    if dataset_hash is None:
        return dg.SkipReason("the sft_dataset materialization carries no dataset_hash")
    if _run_plans(context.instance, asset_event.run_id, LORA_ADAPTER):
        return dg.SkipReason(f"run {asset_event.run_id} trains on this dataset itself")
    return dg.RunRequest(run_key=f"sft_dataset:{dataset_hash.value}", tags={"moxi/dataset_hash": str(dataset_hash.value)[:12]})


def _root_cause(error) -> str:
    """`ConnectionError: ...` rather than Dagster's wrapper `Error occurred while executing op ...`."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, description="Log and record each failed run")
def alert_on_run_failure(context: dg.RunFailureSensorContext):
    settings = load_settings()
    run = context.dagster_run
    # The run's message names the failed steps; each step's own error says why.
    errors = [f"{event.step_key}: {_root_cause(event.event_specific_data.error)}"
              for event in context.get_step_failure_events() if event.event_specific_data.error]
    message = "\n".join([context.failure_event.message or "run failed", *errors])
    failure = record_run_failure(run.run_id, run.job_name, message, settings)
    context.log.error(f"run {failure.run_id} of {failure.job_name} failed: {failure.message} "
                      f"(recorded in {alerts_path(settings.data_dir)})")
