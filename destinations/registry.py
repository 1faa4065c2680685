"""Every configured sync, with its destination connection: the entry point for the CLI,
Dagster and scripts."""

from __future__ import annotations

from pathlib import Path

from destinations.config import connect, load_destinations
from destinations.definitions import SyncDefinition, SyncDefinitionError, load_sync_definitions


def load_syncs(manifest: Path, destinations_path: Path | None = None) -> dict[str, SyncDefinition]:
    """The syncs in a dbt manifest, checked against the configured destinations."""
    return load_sync_definitions(manifest, load_destinations(destinations_path))


def get_sync(syncs: dict[str, SyncDefinition], name: str) -> SyncDefinition:
    if name not in syncs:
        known = ", ".join(sorted(syncs)) or "none defined"
        raise SyncDefinitionError(f"no sync named '{name}' (defined: {known}); syncs are dbt exposures with meta.sync")
    return syncs[name]


def destination_connector(destinations_path: Path | None = None):
    """A ``connect_destination`` callable for the engine, reading destinations.yml once."""
    configs = load_destinations(destinations_path)

    def connect_destination(sync: SyncDefinition):
        return connect(configs[sync.destination], sync_name=sync.name)

    return connect_destination
