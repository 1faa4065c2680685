"""Dagster wiring only: dbt assets, sync assets, schedules, sensors, checks. (The `cdp` command is cli/.)"""
