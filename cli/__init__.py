"""The `cdp` command line (no Dagster import): main, demo, segments, syncs, one console set-up."""
