import dagster as dg

from moxi_pipeline.defs import (
    collect,
    dataset,
    evaluation,
    export,
    preferences,
    training,
)
from moxi_pipeline.defs.checks import RAW_READMES_CHECKS
from moxi_pipeline.defs.executors import run_executor
from moxi_pipeline.defs.jobs import (
    collect_job,
    pipeline_job,
    recollect_schedule,
    train_job,
)
from moxi_pipeline.defs.resources import pipeline_resources
from moxi_pipeline.defs.sensors import (
    alert_on_run_failure,
    retrain_job,
    retrain_on_new_dataset,
)
from moxi_pipeline.settings import load_settings

settings = load_settings()
defs = dg.Definitions(
    assets=dg.load_assets_from_modules([collect, dataset, training, preferences, evaluation, export]),
    asset_checks=[evaluation.adapter_beats_base_and_template, *RAW_READMES_CHECKS],
    jobs=[collect_job, pipeline_job, train_job, retrain_job],
    schedules=[recollect_schedule],
    sensors=[retrain_on_new_dataset, alert_on_run_failure],
    executor=run_executor(settings.executor),
    resources=pipeline_resources(settings),
)
