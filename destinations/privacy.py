"""Every destination forgets: the sync side of a deletion request.

The erasure build (dbt model ``privacy_erasures``, the contract between the two sides) keeps
one row per (deletion request, erased profile) after removing the person from every table it
writes. Each run of a sync then, before it plans:

1. reads the erasures through the warehouse interface and opens a pending receipt
   (``cdp_sync.privacy_receipts``) for each request whose profile this sync's destination holds,
   may hold (an unanswered change) or held (a record removed plainly, which Mailchimp archives and
   Klaviyo keeps as a profile) — the sync state is the only place that still knows who that was;
2. sends each pending person the platform's strongest removal (``forget``, destinations/base.py:
   Mailchimp's permanent delete, Klaviyo's data privacy deletion job, a webhook ``forget`` event;
   an ad audience's plain removal) in the destination's batch size. Compliance comes first: no
   mass-removal guard, audience check or pause holds it back;
3. in one transaction: a profile every record of which the destination confirmed has its
   receipts confirmed (with the platform's answer: codes and ids only) and every other row of
   that profile in the sync state deleted — state, in-flight, departed, failures, the change log,
   the plan table. Anything else stays pending with its error and is sent again next run (the
   plan meanwhile leaves that person alone: a plain removal must not erase the key the forget
   needs). Nothing is lost, and a confirmed forget is never sent again.

A request is complete when every receipt of it is confirmed (`cdp privacy status`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from destinations import state
from destinations.base import Change, Destination, DestinationUnavailable, Outcome, forget_records
from destinations.definitions import SyncDefinition
from destinations.http import redact
from destinations.identifiers import sha256_hex
from destinations.warehouse import MissingTableError, Warehouse
from destinations.warehouse.arrow import string_column

#: what the erasure build's audit trail must hold for the sync side (the contract's columns it reads)
ERASURE_COLUMNS = ("request_id", "profile_id", "requested_at")


@dataclass
class ForgetResult:
    """What one run's forget pass did: receipts opened and confirmed, and what stays pending."""

    opened: int = 0
    forgotten: int = 0
    pending: int = 0
    sent: int = 0
    errors: list[str] = field(default_factory=list)


def erasures(data: Warehouse, relation: str) -> pa.Table | None:
    """The erased profiles (request_id, profile_id, requested_at) of ``relation``; None before the
    first build that made it (no table: nothing was ever erased)."""
    schema, _, name = relation.rpartition(".")
    if not data.has_table(schema or "main", name):
        return None
    try:
        table = data.fetch_arrow(
            f"select request_id, profile_id, requested_at from {relation} where profile_id is not null"
        )
    except MissingTableError:
        return None
    return pa.table(
        {
            "request_id": string_column([str(v) for v in table.column(0).to_pylist()]),
            "profile_id": string_column([str(v) for v in table.column(1).to_pylist()]),
            "requested_at": table.column(2).cast(pa.timestamp("us")),
        }
    )


def forget_erased(
    store: Warehouse,
    data: Warehouse,
    sync: SyncDefinition,
    relation: str,
    connect_destination: Callable[[SyncDefinition], Destination],
    *,
    run_id: str,
    now: Callable[[], datetime],
) -> ForgetResult:
    """One forget pass of ``sync`` (see the module's docstring); ``store`` holds the sync state,
    ``data`` the erasure build's ``relation``."""
    result = ForgetResult()
    erased = erasures(data, relation)
    if erased is not None and erased.num_rows:
        result.opened = state.open_receipts(
            store, erasures=erased, sync_name=sync.name, destination=sync.destination, run_id=run_id, now=now()
        )
    records, unaddressed = state.pending_forgets(store, sync.name)
    confirmed: dict[str, str] = dict.fromkeys(unaddressed, "no record of the person is held any more")
    pending: dict[str, str] = {}
    if records:
        outcomes = _send(records, sync, connect_destination)
        result.sent = len(records)
        for record in records:
            outcome = outcomes[record.record_key]
            if outcome.status == "confirmed":
                if record.profile_id not in pending:
                    confirmed[record.profile_id] = _answer(confirmed.get(record.profile_id), outcome.answer)
            else:
                error = redact(outcome.error or "not confirmed", record.record_key)
                pending[record.profile_id] = f"{outcome.status}: {error}"
                confirmed.pop(record.profile_id, None)
                if len(result.errors) < 5:
                    result.errors.append(error)
    if confirmed or pending:
        result.forgotten = state.settle_receipts(
            store, sync_name=sync.name, run_id=run_id, confirmed=confirmed, pending=pending, now=now()
        )
    result.pending = len(pending)
    return result


def _send(
    records: list[state.HeldRecord],
    sync: SyncDefinition,
    connect_destination: Callable[[SyncDefinition], Destination],
) -> dict[str, Outcome]:
    """Each record's outcome, by key: the destination's answer, or failed when it could not be
    reached (then the rest is not sent: it is all retried next run)."""
    changes = [
        Change(
            change_id=sha256_hex(f"forget|{sync.name}|{'|'.join(record.request_ids)}|{record.record_key}")[:32],
            op="forget",
            key=record.record_key,
            identifiers={sync.key: record.record_key},
            destination_id=record.destination_id,
        )
        for record in records
    ]
    by_id: dict[str, Outcome] = {}
    destination = connect_destination(sync)
    try:
        size = max(1, int(destination.batch_size))
        for first in range(0, len(changes), size):
            batch = changes[first : first + size]
            try:
                answered = forget_records(destination, batch)
            except DestinationUnavailable as error:
                reason = str(error)
                for change in changes[first:]:
                    by_id[change.change_id] = Outcome(change.change_id, "failed", reason)
                break
            by_id.update({outcome.change_id: outcome for outcome in answered})
    finally:
        destination.close()
    missing = Outcome("", "failed", "the connector returned no outcome for this record")
    return {change.key: by_id.get(change.change_id, missing) for change in changes}


def _answer(before: str | None, answer: str | None) -> str:
    """The platform's answers for a profile's records, joined (codes and ids only)."""
    answer = redact(answer or "confirmed")
    return answer if not before or before == answer else f"{before}; {answer}"
