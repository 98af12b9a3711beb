"""Two code locations from one package, for deployments that split them (deploy/workspace.multi.yaml):

- `data_defs`: raw_readmes -> readme_chunks -> sft_dataset, on CPU nodes, re-collected weekly;
- `model_defs`: base_model -> lora_adapter -> preference_pairs -> dpo_adapter -> eval_report -> run_comparison,
  and eval_report -> merged_model (the adapter that scored best) -> gguf_model, on GPU nodes. It names the data assets it reads as AssetSpecs, so they load through the same
  I/O manager from the shared data folder, and the retraining sensor watches sft_dataset across locations.

`moxi_pipeline.definitions` keeps the whole graph in one location for `make dev`, `make demo` and compose.
"""

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
from moxi_pipeline.defs.jobs import collect_job, recollect_schedule
from moxi_pipeline.defs.resources import pipeline_resources
from moxi_pipeline.defs.sensors import (
    alert_on_run_failure,
    retrain_job,
    retrain_on_new_dataset,
)
from moxi_pipeline.settings import load_settings

settings = load_settings()
resources = pipeline_resources(settings)

data_defs = dg.Definitions(
    assets=dg.load_assets_from_modules([collect, dataset]),
    asset_checks=RAW_READMES_CHECKS,
    jobs=[collect_job],
    schedules=[recollect_schedule],
    sensors=[alert_on_run_failure],
    executor=run_executor(settings.executor),
    resources=resources,
)
model_defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules([training, preferences, evaluation, export]),
            dg.AssetSpec("raw_readmes", group_name="data"), dg.AssetSpec("sft_dataset", group_name="data")],
    asset_checks=[evaluation.adapter_beats_base_and_template],
    jobs=[retrain_job],
    sensors=[retrain_on_new_dataset, alert_on_run_failure],
    executor=run_executor(settings.executor),
    resources=resources,
)
