"""Dagster wiring: dbt assets, sync assets, schedules, sensors, checks, and the `cdp` CLI."""
