import dagster as dg

from moxi_pipeline.defs import data_assets, model_assets
from moxi_pipeline.defs.checks import RAW_READMES_CHECKS
from moxi_pipeline.defs.io_managers import record_io_manager
from moxi_pipeline.defs.jobs import collect_job, pipeline_job, recollect_schedule
from moxi_pipeline.defs.resources import LocalArtifactStore, openai_client
from moxi_pipeline.settings import load_settings

settings = load_settings()
data_dir = str(settings.data_dir)
defs = dg.Definitions(
    assets=dg.load_assets_from_modules([data_assets, model_assets]),
    asset_checks=[model_assets.adapter_beats_base_and_template, *RAW_READMES_CHECKS],
    jobs=[collect_job, pipeline_job],
    schedules=[recollect_schedule],
    resources={"io_manager": record_io_manager(settings), "artifacts": LocalArtifactStore(data_dir=data_dir),
               "openai": openai_client(settings)},
)
