"""`cdp forget` and `cdp privacy …`: erasure requests, the raw rows they leave behind, and what the
destinations still owe them.

`cdp forget IDENTIFIER` records a deletion request (its tombstone only; cdp/privacy/requests.py);
the next `cdp build` erases the person from every table the project writes
(dbt_project/macros/privacy/erasure.sql). The raw tables are the user's: `cdp privacy raw-report`
counts the raw rows still holding an erased identifier, and `--purge-raw` deletes them. Each sync's
next run makes its destination forget the person (destinations/privacy.py); `cdp privacy status`
shows the receipts (ids and the platform's answer only, never an email or phone).
"""

from __future__ import annotations

from datetime import datetime

import click

from cdp.privacy.identifiers import IDENTIFIER_TYPES, IdentifierError, parse_identifier
from cdp.warehouse import WarehouseBusyError
from cli.console import console
from cli.console import table as _table
from cli.options import target_option, use_target, use_warehouse, warehouse_option
from cli.syncs import operator


@click.command("forget")
@click.argument("identifier", required=False)
@click.option(
    "--type",
    "identifier_type",
    type=click.Choice(IDENTIFIER_TYPES),
    default=None,
    help="What IDENTIFIER is (default: detected; an email has an @, a phone starts with + or 00).",
)
@click.option("--by", "actor", default=operator, show_default="the OS user", help="Who asked, for the record.")
@click.option(
    "--purge-raw",
    is_flag=True,
    help="Also delete the raw rows that hold an erased identifier (after the build that erased it).",
)
@target_option
@warehouse_option
def forget_command(
    identifier: str | None,
    identifier_type: str | None,
    actor: str,
    purge_raw: bool,
    target: str | None,
    warehouse: str | None,
) -> None:
    """Erase the person holding IDENTIFIER (email, phone, or an id with --type) at the next build.

    The request stores a salted hash of the identifier, never the identifier. The next `cdp build`
    removes the person from every table the project writes and keeps tombstones so stale raw data
    cannot bring them back. Without IDENTIFIER, --purge-raw purges the raw rows of every erasure.
    """
    if identifier is None and not purge_raw:
        raise click.UsageError(
            "Give the IDENTIFIER to forget (or --purge-raw alone to purge the raw rows of every erasure)."
        )
    use_target(target)
    if identifier is not None:
        _record(identifier, identifier_type, actor, warehouse)
    if purge_raw:
        _raw_rows(purge=True, target=target, warehouse=warehouse)


def _record(text: str, identifier_type: str | None, actor: str, warehouse: str | None) -> None:
    """Store the request in the warehouse of the current target (DuckDB, Postgres or Spark)."""
    from cdp.privacy.requests import record_request
    from destinations.warehouse import WarehouseError
    from destinations.warehouse.locations import sync_locations

    try:
        parsed = parse_identifier(text, identifier_type)
    except IdentifierError as error:
        raise click.BadParameter(str(error), param_hint="IDENTIFIER") from None
    try:
        data, _ = sync_locations(use_warehouse(warehouse))
        if not data.exists():
            raise click.ClickException(
                f"No warehouse at {data.describe()}. Run `cdp generate` (or load raw) and `cdp build` first."
            )
        store = data.open()
    except (WarehouseBusyError, WarehouseError) as error:
        raise click.ClickException(str(error)) from None
    try:
        request = record_request(store, parsed, requested_by=actor.strip() or "unknown")
    finally:
        store.close()
    if request.already_requested:
        console().print(
            f"This {parsed.identifier_type} was already asked to be forgotten: request {request.request_id}."
        )
    else:
        console().print(
            f"Recorded request {request.request_id} to forget a {parsed.identifier_type} (stored as a salted hash)."
        )
    console().print(
        "The next `cdp build` erases the person from every table; then `cdp privacy raw-report` counts the raw rows "
        "still holding their identifiers, and `cdp forget --purge-raw` deletes them."
    )


def _raw_rows(*, purge: bool, target: str | None, warehouse: str | None) -> None:
    from cdp.dbt import DbtError, run_dbt

    use_target(target)
    use_warehouse(warehouse)
    try:
        output = run_dbt(
            ["run-operation", "privacy_raw_rows", "--args", "{purge: true}" if purge else "{purge: false}"], echo=False
        )
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    for line in output.splitlines():
        if line.startswith("raw.") or line.startswith("WARNING: Spark"):
            console().print(line, markup=False, highlight=False)


@click.group("privacy")
def privacy_group() -> None:
    """Erasure: what remains in the raw tables and what the destinations still owe (`cdp forget` records requests)."""


@privacy_group.command("raw-report")
@target_option
@warehouse_option
def raw_report(target: str | None, warehouse: str | None) -> None:
    """Count, per raw table, the rows that still hold an erased identifier (never the values)."""
    _raw_rows(purge=False, target=target, warehouse=warehouse)


@privacy_group.command("purge-raw")
@target_option
@warehouse_option
def purge_raw(target: str | None, warehouse: str | None) -> None:
    """Delete the raw rows that still hold an erased identifier (DuckDB, Postgres; Spark says what to do)."""
    _raw_rows(purge=True, target=target, warehouse=warehouse)


@privacy_group.command("status")
@click.option("--all", "show_all", is_flag=True, help="List confirmed receipts too, not only pending ones.")
@warehouse_option
def privacy_status(show_all: bool, warehouse: str | None) -> None:
    """Per deletion request: complete (every destination that held the person confirmed forgetting
    them) or pending, and which destinations still owe it. Exit code 1 while any is pending."""
    from cli.suppress import sync_state_store
    from destinations import state

    store = sync_state_store(warehouse)
    receipts: list[state.Receipt] = []
    if store.exists():
        with store.read_only().open() as con:
            receipts = state.receipts(con)
    by_request: dict[str, list[state.Receipt]] = {}
    for receipt in receipts:
        by_request.setdefault(receipt.request_id, []).append(receipt)
    pending = {request: rows for request, rows in by_request.items() if any(r.status != "confirmed" for r in rows)}
    out = console()
    out.print(
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
    out.print(table)
    if pending:
        raise SystemExit(1)


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""
