"""`cdp suppress add|remove|list`: the global suppression list no sync ever sends.

Thin wiring: destinations/suppression.py normalises and hashes a value, destinations/state.py
keeps the list in the sync state store (CDP_SYNC_STATE, else the warehouse), and the plan applies
it beside consent. Nothing here prints an email or phone: the list holds hashes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.console import console as _console
from cli.console import table as _table
from cli.options import use_warehouse as _use_warehouse
from cli.options import warehouse_option
from cli.syncs import operator

#: how long a change waits for a writer that holds the state store before giving up
WAIT_SECONDS = 10.0


def sync_state_store(warehouse: str | None):
    """The sync state store of the current target (CDP_TARGET, CDP_SYNC_STATE)."""
    from destinations.warehouse.locations import sync_locations

    _, store = sync_locations(_use_warehouse(warehouse))
    return store


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _entry(value: str, kind: str | None, region: str | None):
    from destinations.suppression import SuppressionError, suppressed_value

    try:
        return suppressed_value(value, kind, default_region=region)
    except SuppressionError as error:
        raise click.BadParameter(str(error), param_hint="VALUE") from None


_type_option = click.option(
    "--type", "kind", type=click.Choice(["email", "phone"]), default=None, help="Default: email if it has an @."
)
_region_option = click.option("--region", default=None, help="ISO country of a national phone number (e.g. GB).")


@click.group("suppress")
def suppress() -> None:
    """The global suppression list: emails and phones no sync ever sends.

    Suppressing someone a destination holds removes them there on the sync's next run (never
    held by the mass-removal guard). Values are kept only as SHA-256 of their normalised form.
    """


@suppress.command("add")
@click.argument("value")
@click.option("--reason", required=True, help="Why (kept with the entry; no personal data).")
@_type_option
@_region_option
@warehouse_option
def suppress_add(value: str, reason: str, kind: str | None, region: str | None, warehouse: str | None) -> None:
    """Put an email or phone on the list."""
    from destinations import state

    entry = _entry(value, kind, region)
    with sync_state_store(warehouse).waiting(WAIT_SECONDS).open() as con:
        added = state.add_suppression(
            con, entry.identifier_type, entry.value_sha256, reason=reason, added_by=operator(), now=_now()
        )
    what = f"{entry.identifier_type} {entry.value_sha256[:12]}…"
    _console().print(
        f"suppressed {what}: no sync sends it; destinations holding it remove it on the next run"
        if added
        else f"{what} was already suppressed"
    )


@suppress.command("remove")
@click.argument("value")
@_type_option
@_region_option
@warehouse_option
def suppress_remove(value: str, kind: str | None, region: str | None, warehouse: str | None) -> None:
    """Take an email or phone off the list (the entry is kept, marked removed, for audit)."""
    from destinations import state

    entry = _entry(value, kind, region)
    with sync_state_store(warehouse).waiting(WAIT_SECONDS).open() as con:
        removed = state.remove_suppression(
            con, entry.identifier_type, entry.value_sha256, removed_by=operator(), now=_now()
        )
    what = f"{entry.identifier_type} {entry.value_sha256[:12]}…"
    _console().print(f"{what} is no longer suppressed" if removed else f"{what} was not suppressed")
    if not removed:
        raise SystemExit(1)


@suppress.command("list")
@warehouse_option
def suppress_list(warehouse: str | None) -> None:
    """Every suppressed value (as its hash), with its reason and who added it."""
    from destinations import state

    store = sync_state_store(warehouse)
    entries = []
    if store.exists():
        with store.read_only().open() as con:
            entries = state.suppressions(con)
    table = _table(f"Suppressed ({len(entries)})")
    for column in ("type", "sha256", "reason", "added by", "added at"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.identifier_type, entry.value_sha256, entry.reason, entry.added_by, f"{entry.added_at:%Y-%m-%d %H:%M}"
        )
    _console().print(table)
