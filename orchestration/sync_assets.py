"""One Dagster asset per sync definition, downstream of the segment model it reads, and
one schedule per sync that names a cron expression.

Thin wiring: destinations/engine.py does the work. The asset's materialisation metadata
shows the plan and the outcome counts and a short preview of profile ids (never keys or
other personal data). After each run the sync's alert rules judge it (orchestration/alerts.py).

(No `from __future__ import annotations` here: Dagster reads the asset function's
annotations to find its config and resources.)
"""

from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from cdp.settings import warehouse_path
from destinations.definitions import SyncDefinition
from destinations.registry import load_syncs
from orchestration.alerts import evaluate_after_sync
from orchestration.dbt_assets import WAREHOUSE_POOL, cdp_dbt_assets
from orchestration.project import cdp_dbt_project


class SyncRunConfig(dg.Config):
    """Launchpad options for one materialisation of a sync asset."""

    dry_run: bool = False
    force: bool = False
    full_resync: bool = False


class SyncEngine(dg.ConfigurableResource):
    """Where syncs read and write: the warehouse file, the destinations file and the alerts
    file (empty: CDP_WAREHOUSE, CDP_DESTINATIONS, CDP_ALERTS or their defaults)."""

    warehouse: str = ""
    destinations_file: str = ""
    alerts_file: str = ""

    def warehouse_file(self) -> Path:
        return Path(self.warehouse) if self.warehouse else warehouse_path()

    def run(self, sync: SyncDefinition, config: SyncRunConfig):
        from destinations.engine import run_sync
        from destinations.registry import destination_connector

        return run_sync(
            sync,
            warehouse=self.warehouse_file(),
            connect_destination=destination_connector(Path(self.destinations_file) if self.destinations_file else None),
            dry_run=config.dry_run,
            force=config.force,
            full_resync=config.full_resync,
        )


def _sync_asset(sync: SyncDefinition, dbt_models: dg.AssetsDefinition) -> dg.AssetsDefinition:
    models = [*sync.models, "sync_profile_fields"]
    upstream = [get_asset_key_for_model([dbt_models], model) for model in dict.fromkeys(models)]

    @dg.asset(
        name=f"sync_{sync.name}",
        group_name="syncs",
        deps=upstream,
        pool=WAREHOUSE_POOL,
        kinds={"reverse_etl"},
        owners=[],
        description=sync.description or f"Sync segment {sync.segment} to {sync.destination} ({sync.mode}).",
        metadata={
            "segment": sync.segment,
            "destination": sync.destination,
            "mode": sync.mode,
            "schedule": sync.schedule or "manual",
        },
    )
    def _asset(
        context: dg.AssetExecutionContext, config: SyncRunConfig, sync_engine: SyncEngine
    ) -> dg.MaterializeResult:
        from destinations.alerts import utc_now

        since = utc_now()
        try:
            result = sync_engine.run(sync, config)
        finally:  # the sync's alert rules judge whatever run it recorded, failed or not
            evaluate_after_sync(
                context,
                sync.name,
                warehouse=sync_engine.warehouse_file(),
                alerts_file=sync_engine.alerts_file,
                since=since,
            )
        metadata = _metadata(result)
        if result.status in {"failed", "stopped"}:
            raise dg.Failure(description=result.message, metadata=metadata)
        if result.status == "partial":
            context.log.warning(result.message)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


def _metadata(result) -> dict:
    """What a materialisation shows: the run, its outcome counts and (once planned) every
    plan count, under the names of the cdp_sync.runs columns (destinations.summary)."""
    from destinations.summary import OUTCOME_COUNTS, PLAN_COUNTS

    metadata = {"run_id": result.run_id, "status": result.status, "message": result.message}
    metadata.update({count.name: count.of(result) for count in OUTCOME_COUNTS})
    metadata["seconds"] = round(result.seconds, 2)
    if result.plan is not None:
        metadata.update({count.name: count.of(result.plan) for count in PLAN_COUNTS})
        if result.plan.identifier_coverage:
            metadata["identifier_coverage"] = dg.MetadataValue.json(dict(result.plan.identifier_coverage))
    if result.destination_report:
        metadata["platform"] = dg.MetadataValue.json(dict(result.destination_report))
    return metadata


def build_sync_definitions(
    manifest: Path | None = None,
) -> tuple[list[dg.AssetsDefinition], list[dg.ScheduleDefinition]]:
    """One asset per sync in the manifest (default: the project's), and a schedule per sync that has one.

    Reads the manifest and destinations.yml, so it is called when Dagster loads the
    definitions, never at import.
    """
    dbt_models = cdp_dbt_assets()
    syncs = load_syncs(manifest or cdp_dbt_project().manifest_path)
    assets = {name: _sync_asset(sync, dbt_models) for name, sync in syncs.items()}
    schedules = [
        dg.ScheduleDefinition(
            name=f"sync_{name}_schedule",
            target=assets[name],
            cron_schedule=sync.schedule,
            # on purpose: a schedule that talks to real platforms is switched on by a person
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Runs sync {name} ({sync.schedule}).",
        )
        for name, sync in syncs.items()
        if sync.schedule
    ]
    return list(assets.values()), schedules
