"""Dagster glue only: assets, I/O managers, resources, jobs, schedules and checks."""
