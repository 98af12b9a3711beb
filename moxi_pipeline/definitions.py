import dagster as dg

from moxi_pipeline.defs import data_assets, model_assets
from moxi_pipeline.defs.io_managers import LocalRecordIOManager
from moxi_pipeline.defs.jobs import collect_job, pipeline_job, recollect_schedule, train_job
from moxi_pipeline.defs.resources import LocalArtifactStore
from moxi_pipeline.settings import load_settings

data_dir = str(load_settings().data_dir)
defs = dg.Definitions(
    assets=dg.load_assets_from_modules([data_assets, model_assets]),
    asset_checks=[model_assets.adapter_beats_base_and_template],
    jobs=[collect_job, pipeline_job, train_job],
    schedules=[recollect_schedule],
    resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": LocalArtifactStore(data_dir=data_dir)},
)
