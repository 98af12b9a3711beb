"""Jobs and schedules: re-collect on a schedule, or run the whole graph."""

import dagster as dg

collect_job = dg.define_asset_job(
    "collect_job", selection=dg.AssetSelection.assets("raw_readmes"), description="Re-collect READMEs."
)
pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.all(), description="Collect, chunk, build the dataset, train, evaluate."
)

# Weekly at 03:00 on Monday; stopped until someone turns it on in the UI (or sets default_status).
recollect_schedule = dg.ScheduleDefinition(job=collect_job, cron_schedule="0 3 * * 1", name="weekly_recollect")
