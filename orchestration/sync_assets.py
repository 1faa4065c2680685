"""Two Dagster assets per sync definition, and one schedule per sync that names a cron expression.

- ``audience_<sync>`` plans the sync as a dry run (the reviewable plan table
  ``cdp_sync.plan__<sync>``) and carries the blocking audience checks (orchestration/sync_checks.py);
- ``sync_<sync>`` sends: downstream of its audience (so a failed check stops it) and of the
  segment model and ``sync_profile_fields`` it reads.

Both follow their segment by declarative automation: when the segment's model (or the
profile fields) is materialised, the audience is planned and checked and, if every blocking
check passed, the sync runs — no second schedule to keep in step. The automation sensor that
evaluates these conditions is orchestration/automation.py's.

Thin wiring: destinations/engine.py does the work. The metadata shows the plan and the
outcome counts (never keys or other personal data). After each run the sync's alert rules
judge it (orchestration/alerts.py).

(No `from __future__ import annotations` here: Dagster reads the asset function's
annotations to find its config and resources.)
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from cdp.settings import warehouse_path
from destinations.definitions import SyncDefinition
from destinations.registry import load_syncs
from orchestration.alerts import evaluate_after_sync
from orchestration.dbt_assets import WAREHOUSE_POOL, cdp_dbt_assets
from orchestration.project import cdp_dbt_project
from orchestration.sync_checks import audience_check_results, audience_check_specs

#: how long a sync waits for the warehouse file when a process outside Dagster (a sensor's
#: read-only glance, a `cdp` command) holds it; Dagster's own writers queue in the pool
WAREHOUSE_WAIT_SECONDS = 30.0

#: the audience is planned whenever what it reads was materialised
AUDIENCE_AUTOMATION = dg.AutomationCondition.eager()
#: the send follows, unless a blocking check upstream (the audience's, the segment's dbt tests) failed
SYNC_AUTOMATION = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


class SyncRunConfig(dg.Config):
    """Launchpad options for one materialisation of a sync asset."""

    dry_run: bool = False
    force: bool = False
    full_resync: bool = False


class SyncEngine(dg.ConfigurableResource):
    """Where syncs read and write: the warehouse file, the destinations file and the alerts
    file (empty: CDP_WAREHOUSE, CDP_DESTINATIONS, CDP_ALERTS or their defaults). The engine
    setting picks the rest (destinations.warehouse.locations.sync_locations): CDP_TARGET
    names the warehouse holding the data (the file above on the duckdb target), CDP_SYNC_STATE
    the state store when it is not the warehouse itself."""

    warehouse: str = ""
    destinations_file: str = ""
    alerts_file: str = ""

    def warehouse_file(self) -> Path:
        return Path(self.warehouse) if self.warehouse else warehouse_path()

    def run(self, sync: SyncDefinition, config: SyncRunConfig, *, enforce_audience_checks: bool = False):
        from destinations.engine import run_sync
        from destinations.registry import destination_connector
        from destinations.warehouse.locations import sync_locations

        data, store = sync_locations(self.warehouse_file())  # CDP_TARGET and CDP_SYNC_STATE
        return run_sync(
            sync,
            warehouse=data.waiting(WAREHOUSE_WAIT_SECONDS),
            state_store=store.waiting(WAREHOUSE_WAIT_SECONDS),
            connect_destination=destination_connector(Path(self.destinations_file) if self.destinations_file else None),
            dry_run=config.dry_run,
            force=config.force,
            full_resync=config.full_resync,
            enforce_audience_checks=enforce_audience_checks,
        )

    def lift_metadata(self, sync: SyncDefinition) -> dict:
        """The lift of the experiment the sync is measured by (its experiment, or its holdout), as
        Markdown under `lift`; nothing for a sync that holds nobody out. Reads dbt's experiment_lift."""
        from cdp.lift import UnknownExperimentError, lift_markdown, read_lift
        from destinations.warehouse import MissingTableError
        from destinations.warehouse.locations import sync_locations

        experiment = sync.measured_as
        if experiment is None:
            return {}
        data, _ = sync_locations(self.warehouse_file())
        try:
            with data.read_only().open() as con:
                arms = read_lift(con, experiment)
        except (MissingTableError, UnknownExperimentError):
            return {"lift": f"{experiment}: not measured yet (experiment_lift has no rows for it; run the dbt build)"}
        return {"lift": dg.MetadataValue.md(lift_markdown(experiment, arms))}


def audience_key(sync: SyncDefinition) -> dg.AssetKey:
    return dg.AssetKey(f"audience_{sync.name}")


def sync_key(sync: SyncDefinition) -> dg.AssetKey:
    return dg.AssetKey(f"sync_{sync.name}")


def _definition_metadata(sync: SyncDefinition) -> dict:
    """What the UI shows on both assets before any run: the definition and its thresholds."""
    return {
        "segment": sync.segment,
        "destination": sync.destination,
        "mode": sync.mode,
        "key": sync.key,
        "schedule": sync.schedule or "manual",
        "paused_in_definition": sync.paused,
        "max_removal_share": sync.max_removal_share,
        "max_missing_key_share": sync.max_missing_key_share,
        "max_shrink_share": sync.max_shrink_share,
        "max_growth_share": sync.max_growth_share,
    }


def _owners(sync: SyncDefinition) -> list[str]:
    """Who answers for the sync in the UI: its exposure's owner.email (none given, no owner)."""
    return [sync.owner_email] if sync.owner_email else []


def _paused_note(sync: SyncDefinition) -> str:
    if sync.paused:
        return " PAUSED in its definition (meta.sync.paused: true): runs record `paused` and send nothing."
    return f" `cdp sync {sync.name} --pause` pauses it: runs then record `paused` and send nothing."


def _audience_asset(sync: SyncDefinition, upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    from destinations.plan import plan_table  # here: importing the definitions must not load DuckDB

    key = audience_key(sync)

    @dg.asset(
        key=key,
        group_name="syncs",
        deps=list(upstream),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        owners=_owners(sync),
        check_specs=audience_check_specs(key),
        automation_condition=AUDIENCE_AUTOMATION,
        description=(
            f"The audience sync {sync.name} would send: planned as a dry run (reviewable in {plan_table(sync)}) "
            f"and checked (keys, segment minimum size, change against what '{sync.destination}' holds) "
            "before anything is sent." + _paused_note(sync)
        ),
        metadata=_definition_metadata(sync),
    )
    def _asset(context: dg.AssetExecutionContext, sync_engine: SyncEngine) -> dg.MaterializeResult:
        result = sync_engine.run(sync, SyncRunConfig(dry_run=True))
        for check in result.checks:
            if not check.passed:
                context.log.warning(f"{sync.name}: {check.name}: {check.message}")
        return dg.MaterializeResult(
            metadata=_metadata(result, sync),
            check_results=audience_check_results(key, result.checks, paused=result.paused is not None),
        )

    return _asset


def _sync_asset(sync: SyncDefinition, upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=sync_key(sync),
        group_name="syncs",
        deps=[*upstream, audience_key(sync)],
        pool=WAREHOUSE_POOL,
        kinds={"reverse_etl"},
        owners=_owners(sync),
        automation_condition=SYNC_AUTOMATION,
        description=(sync.description or f"Sync segment {sync.segment} to {sync.destination} ({sync.mode}).")
        + _paused_note(sync),
        metadata=_definition_metadata(sync),
    )
    def _asset(
        context: dg.AssetExecutionContext, config: SyncRunConfig, sync_engine: SyncEngine
    ) -> dg.MaterializeResult:
        from destinations.alerts import utc_now

        since = utc_now()
        try:
            # the audience was checked upstream; the engine checks its own plan again, so a change in
            # between (another run's build between the two steps) cannot slip through
            result = sync_engine.run(sync, config, enforce_audience_checks=True)
        finally:  # the sync's alert rules judge whatever run it recorded, failed or not
            evaluate_after_sync(
                context,
                sync.name,
                warehouse=sync_engine.warehouse_file(),
                alerts_file=sync_engine.alerts_file,
                since=since,
            )
        metadata = _metadata(result, sync) | sync_engine.lift_metadata(sync)
        if result.status in {"failed", "stopped"}:
            raise dg.Failure(description=result.message, metadata=metadata)
        if result.status in {"partial", "paused"}:
            context.log.warning(result.message)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


def _metadata(result, sync: SyncDefinition) -> dict:
    """What a materialisation shows: a summary line a person reads (no link, no personal data),
    the run, its outcome counts and (once planned) every plan count, under the names of the
    cdp_sync.runs columns, then the identifier coverage and the platform's own figures."""
    from destinations.summary import OUTCOME_COUNTS, PLAN_COUNTS, run_summary

    metadata = {
        "summary": run_summary(result, sync.destination),
        "run_id": result.run_id,
        "status": result.status,
        "message": result.message,
    }
    metadata["paused"] = result.paused or "no"
    metadata.update({count.name: count.of(result) for count in OUTCOME_COUNTS})
    metadata["seconds"] = round(result.seconds, 2)
    if result.plan is not None:
        metadata.update({count.name: count.of(result.plan) for count in PLAN_COUNTS})
        if result.plan.identifier_coverage:
            metadata["identifier_coverage"] = dg.MetadataValue.json(dict(result.plan.identifier_coverage))
    if result.checks:
        metadata["failed_checks"] = ", ".join(check.name for check in result.checks if not check.passed) or "none"
    if result.destination_report:
        metadata["platform"] = dg.MetadataValue.json(dict(result.destination_report))
    return metadata


def sync_assets_for(sync: SyncDefinition, upstream: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The audience and send assets of one sync, downstream of ``upstream`` (its segment model and
    sync_profile_fields in the project; tests on hand-made warehouses pass none)."""
    return [_audience_asset(sync, upstream), _sync_asset(sync, upstream)]


def build_sync_definitions(
    manifest: Path | None = None,
) -> tuple[list[dg.AssetsDefinition], list[dg.ScheduleDefinition]]:
    """Two assets per sync in the manifest (default: the project's), and a schedule per sync that has one.

    Reads the manifest and destinations.yml, so it is called when Dagster loads the
    definitions, never at import.
    """
    dbt_models = cdp_dbt_assets()
    syncs = load_syncs(manifest or cdp_dbt_project().manifest_path)
    assets: list[dg.AssetsDefinition] = []
    for sync in syncs.values():
        models = dict.fromkeys([*sync.models, "sync_profile_fields"])
        assets += sync_assets_for(sync, [get_asset_key_for_model([dbt_models], model) for model in models])
    schedules = [
        dg.ScheduleDefinition(
            name=f"sync_{name}_schedule",
            target=dg.AssetSelection.assets(audience_key(sync), sync_key(sync)),
            cron_schedule=sync.schedule,
            # on purpose: a schedule that talks to real platforms is switched on by a person
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Plans, checks and runs sync {name} ({sync.schedule}).",
        )
        for name, sync in syncs.items()
        if sync.schedule
    ]
    return assets, schedules
