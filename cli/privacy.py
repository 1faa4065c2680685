"""`cdp suppress add|remove|list` and `cdp privacy status`: the global suppression list, and
what the destinations still owe a deletion request.

Thin wiring: destinations/suppression.py normalises and hashes a value, destinations/state.py
keeps the list and the receipts in the sync state store (CDP_SYNC_STATE, else the warehouse),
destinations/privacy.py sends the removals during each sync run. Nothing here prints an email
or phone: the list holds hashes, a receipt ids and the platform's answer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.console import console as _console
from cli.console import table as _table
from cli.options import use_warehouse as _use_warehouse
from cli.options import warehouse_option

#: how long a change waits for a writer that holds the state store before giving up
WAIT_SECONDS = 10.0


def _store(warehouse: str | None):
    from destinations.warehouse.locations import sync_locations

    _, store = sync_locations(_use_warehouse(warehouse))
    return store


def _operator() -> str:
    from cli.syncs import _operator as operator

    return operator()


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
    with _store(warehouse).waiting(WAIT_SECONDS).open() as con:
        added = state.add_suppression(
            con, entry.identifier_type, entry.value_sha256, reason=reason, added_by=_operator(), now=_now()
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
    with _store(warehouse).waiting(WAIT_SECONDS).open() as con:
        removed = state.remove_suppression(
            con, entry.identifier_type, entry.value_sha256, removed_by=_operator(), now=_now()
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

    store = _store(warehouse)
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


@click.group("privacy")
def privacy() -> None:
    """Deletion requests as the destinations answered them."""


@privacy.command("status")
@click.option("--all", "show_all", is_flag=True, help="List confirmed receipts too, not only pending ones.")
@warehouse_option
def privacy_status(show_all: bool, warehouse: str | None) -> None:
    """Per deletion request: complete (every destination that held the person confirmed forgetting
    them) or pending, and which destinations still owe it. Exit code 1 while any is pending."""
    from destinations import state

    store = _store(warehouse)
    receipts: list[state.Receipt] = []
    if store.exists():
        with store.read_only().open() as con:
            receipts = state.receipts(con)
    by_request: dict[str, list[state.Receipt]] = {}
    for receipt in receipts:
        by_request.setdefault(receipt.request_id, []).append(receipt)
    pending = {request: rows for request, rows in by_request.items() if any(r.status != "confirmed" for r in rows)}
    console = _console()
    console.print(
        f"{len(by_request)} deletion requests reached a destination: "
        f"{len(by_request) - len(pending)} complete, {len(pending)} pending"
    )
    table = _table("Privacy receipts" if show_all else "Pending privacy receipts")
    for column in (
        "request",
        "complete",
        "sync",
        "destination",
        "status",
        "requested",
        "sent",
        "confirmed",
        "tries",
        "answer",
    ):
        table.add_column(column)
    for request, rows in sorted(by_request.items()):
        if request not in pending and not show_all:
            continue
        for r in rows:
            if r.status == "confirmed" and not show_all:
                continue
            table.add_row(
                request,
                "no" if request in pending else "yes",
                r.sync_name,
                r.destination,
                r.status,
                _at(r.requested_at),
                _at(r.sent_at),
                _at(r.confirmed_at),
                str(r.attempts),
                r.answer or "",
            )
    console.print(table)
    if pending:
        raise SystemExit(1)


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""
