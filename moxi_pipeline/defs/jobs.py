"""Jobs and schedules: re-collect on a schedule, or run the whole graph."""

import dagster as dg

from moxi_pipeline.settings import load_settings

collect_job = dg.define_asset_job(
    "collect_job", selection=dg.AssetSelection.assets("raw_readmes"), description="Re-collect READMEs."
)
pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.all(), description="Collect, chunk, build the dataset, train, evaluate."
)

# MOXI_COLLECT_CRON, by default weekly at 03:00 on Monday; stopped until someone turns it on in the UI.
# Re-collecting is incremental: the github source skips repositories whose head commit is unchanged.
recollect_schedule = dg.ScheduleDefinition(job=collect_job, cron_schedule=load_settings().collect_cron,
                                          name="recollect_schedule", execution_timezone="UTC")
