"""What starts runs with nobody present: the raw-data sensor, the automation sensor of the
syncs, and the build-and-sync schedule. Each starts in a status chosen on purpose:

- ``raw_data_sensor`` starts RUNNING: it only reads (one short read-only query per tick) and
  asks for dbt builds, which change nothing outside the warehouse;
- ``sync_automation`` starts STOPPED: it is what sends to platforms when a segment changes
  (the declarative automation of the audience and sync assets, orchestration/sync_assets.py).
  As with every schedule that talks to real platforms, a person switches it on, once;
- ``build_and_sync_schedule`` starts STOPPED for the same reason: it runs `dbt build`, then
  every sync. Its cron comes from ``CDP_BUILD_SCHEDULE`` (default hourly).

One writer at a time: every run these start writes the warehouse only through assets in the
``duckdb_warehouse`` pool, so their steps queue instead of fighting for the file lock. The
sensor itself never writes and never waits: a warehouse another process is writing is
reported as a skipped tick, and the cursor is kept for the next one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from cdp import raw_watermarks
from cdp.settings import BUILD_SCHEDULE_ENV_VAR, build_schedule, warehouse_path

#: how often the raw-data sensor looks (each look is one short read-only query)
RAW_DATA_SENSOR_INTERVAL_SECONDS = 60
#: how often the automation sensor evaluates the syncs' conditions (reads only Dagster's own records)
SYNC_AUTOMATION_INTERVAL_SECONDS = 30
BUILD_AND_SYNC_JOB = "build_and_sync"


def dbt_keys_downstream_of(
    dbt_models: dg.AssetsDefinition, tables: Sequence[raw_watermarks.RawTable]
) -> list[dg.AssetKey]:
    """The dbt assets that depend on these raw tables: dbt's own selection (``source:crm.crm_contacts+``),
    extended along the asset graph's edges dbt cannot see (segment models → registry views)."""
    selector = " ".join(f"{table.dbt_selector}+" for table in tables)
    selection = build_dbt_asset_selection([dbt_models], dbt_select=selector).downstream()
    return sorted(selection.resolve([dbt_models]), key=lambda key: key.to_user_string())


def raw_data_sensor(dbt_models: dg.AssetsDefinition, manifest_path: Path) -> dg.SensorDefinition:
    """A sensor that builds what depends on a raw table once its row count or newest timestamp moved."""
    tables = raw_watermarks.raw_tables(json.loads(Path(manifest_path).read_text()))

    @dg.sensor(
        name="raw_data_sensor",
        target=dg.AssetSelection.assets(dbt_models),
        minimum_interval_seconds=RAW_DATA_SENSOR_INTERVAL_SECONDS,
        # on purpose: it only reads, and what it starts (dbt builds) changes nothing outside the warehouse
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Looks at every table of schema raw (row count, newest loaded_at_field timestamp) and builds the dbt "
            "models downstream of the tables that changed. Never writes; skips a tick while another process "
            "writes the warehouse."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return evaluate_raw_data(context.cursor, warehouse_path(), tables, dbt_models)

    return _sensor


def evaluate_raw_data(
    cursor: str | None,
    warehouse: Path,
    tables: Mapping[str, raw_watermarks.RawTable],
    dbt_models: dg.AssetsDefinition,
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the raw-data sensor (a plain function, so its rules are tested on their own)."""
    from cdp.warehouse import WarehouseBusyError  # here: importing the definitions must not load DuckDB

    if not warehouse.exists():
        return dg.SkipReason(f"no warehouse at {warehouse} yet; nothing to watch")
    try:
        current = raw_watermarks.read_watermarks(warehouse, tables)
    except WarehouseBusyError:
        # the cursor is left as it was: whatever landed meanwhile is noticed on the next tick
        return dg.SkipReason(
            f"the warehouse {warehouse} is busy (another process is writing it); "
            "not waiting for it — looking again next tick, cursor kept"
        )
    previous = raw_watermarks.decode(cursor)
    if previous is None:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"first look: {len(current)} raw tables, {sum(t['rows'] for t in current.values()):,} rows recorded "
                "as the starting point; a change from here starts a build"
            ),
            cursor=raw_watermarks.encode(current),
        )
    changed = raw_watermarks.changed_tables(previous, current)
    if not changed:
        return dg.SkipReason("no new raw data since the last look")
    watched = [tables[name] for name in changed if name in tables]
    keys = dbt_keys_downstream_of(dbt_models, watched) if watched else []
    cursor_text = raw_watermarks.encode(current)
    if not keys:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"raw tables changed ({', '.join(changed)}) but no dbt model reads them"),
            cursor=cursor_text,
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"raw-{raw_watermarks.digest(current)}",
                asset_selection=keys,
                tags={"cdp/trigger": "raw_data_sensor", "cdp/changed_tables": ",".join(changed)[:200]},
            )
        ],
        cursor=cursor_text,
    )


def sync_automation_sensor(sync_assets: Sequence[dg.AssetsDefinition]) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the audience and sync assets' automation conditions: a segment materialised → its syncs run."""
    return dg.AutomationConditionSensorDefinition(
        "sync_automation",
        target=dg.AssetSelection.assets(*sync_assets),
        # on purpose: this sends to platforms; a person switches it on (once: the instance remembers)
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=SYNC_AUTOMATION_INTERVAL_SECONDS,
        emit_backfills=False,
        description=(
            "When a segment model or sync_profile_fields is materialised, plans and checks each sync that reads "
            "it (audience_<sync>) and, if every blocking check passed, runs it (sync_<sync>)."
        ),
    )


def build_and_sync_schedule(
    dbt_models: dg.AssetsDefinition, sync_assets: Sequence[dg.AssetsDefinition]
) -> dg.ScheduleDefinition:
    """`dbt build`, then every audience and sync, on the cron of CDP_BUILD_SCHEDULE (default hourly)."""
    cron = build_schedule()
    job = dg.define_asset_job(
        BUILD_AND_SYNC_JOB,
        selection=dg.AssetSelection.assets(dbt_models, *sync_assets),
        description="dbt build (every model, seed and test), then every sync's audience checks and send.",
    )
    try:
        return dg.ScheduleDefinition(
            name="build_and_sync_schedule",
            job=job,
            cron_schedule=cron,
            # on purpose: it ends by sending to platforms; a person switches it on
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Builds the warehouse and runs every sync ({cron}, from {BUILD_SCHEDULE_ENV_VAR}).",
        )
    except Exception as error:  # Dagster's own cron check: say which setting holds the bad value
        raise ValueError(f"{BUILD_SCHEDULE_ENV_VAR}={cron!r} is not a valid cron expression: {error}") from None
