"""The sync engine's own tables (schema ``cdp_sync``): their one owner.

Everything that reads or writes them goes through here — the engine's run rows and
per-batch commits, the CLI's listing, the demo's reset — so a change to a table is a
change to this module and the SQL beside it (``destinations/sql/state.sql`` for the DDL,
``commit_batch.sql``, ``log_unsent.sql``, ``last_runs.sql``). The tables:

- ``state``: what each destination confirmed, per (sync, key) — the next plan's baseline;
- ``runs``: one row per run, with the counts of destinations.summary;
- ``changes``: every change attempted and every invalid row reported, per run;
- ``failures``: records the destination did not take, with their attempts;
- ``in_flight``: changes sent whose answer has not arrived (they may have landed);
- ``controls``: pauses and resumes, one row per change; a sync's latest row is in force.
- ``alerts`` and ``alert_deliveries``: each alert raised (once per open condition) and the
  notices owed to its channels (``sql/alerts.sql``; destinations/alerts/ decides what to raise).

The plan table of a sync (``plan__<sync>``) lives in the same schema but belongs to
destinations.plan, which rebuilds it every run; the statements here that read it are
given its name.

These tables live in the sync's state store: a warehouse with transactions (DuckDB, Postgres;
destinations/warehouse/). Every function takes that store as a Warehouse, or a DuckDB
connection (wrapped), and runs its statements through it with ``:name`` binds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import pyarrow as pa

from destinations.sql_templates import render, statements
from destinations.summary import OUTCOME_COUNTS, PLAN_COUNTS, PlanSummary
from destinations.warehouse import as_warehouse
from destinations.warehouse.arrow import int64_column, string_column

#: a Warehouse, or a DuckDB connection (wrapped by destinations.warehouse.as_warehouse)
Store = Any

#: the engine's schema: state, runs, changes, failures, in_flight and the plan tables
STATE_SCHEMA = "cdp_sync"


@dataclass
class BatchOutcomes:
    """What became of a run's sent changes since its last commit, one entry per change in each
    column: its seq in the plan table, its plan op (add | update | remove), the destination's
    verdict (confirmed | failed | rejected) with its error, and the platform's own id for the
    record when the connector named one.

    Columns of plain values, not an object per record: a window's outcomes live beside the
    sending for seconds, and objects that live that long are what the garbage collector walks
    again and again (holding the GIL the sender needs).
    """

    seqs: list[int] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    destination_ids: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)

    def extend(self, seqs: list[int], ops: list[str], outcomes: Sequence[Any]) -> None:
        """One entry per seq: its op and its outcome (a destinations.base.Outcome)."""
        self.seqs += seqs
        self.ops += ops
        self.statuses += [outcome.status for outcome in outcomes]
        self.errors += [outcome.error for outcome in outcomes]
        self.destination_ids += [outcome.destination_id for outcome in outcomes]

    def __add__(self, other: BatchOutcomes) -> BatchOutcomes:
        return BatchOutcomes(
            self.seqs + other.seqs,
            self.ops + other.ops,
            self.statuses + other.statuses,
            self.errors + other.errors,
            self.destination_ids + other.destination_ids,
        )


@dataclass(frozen=True)
class LastRun:
    """The latest run of one sync, as ``cdp syncs`` shows it."""

    status: str
    message: str | None
    started_at: datetime
    finished_at: datetime | None
    #: every count of destinations.summary by name (None where the run never planned)
    counts: dict[str, int | None]
    #: desired records carrying each identifier, as the plan counted them
    identifier_coverage: dict[str, int]
    #: the platform's own figures for the run (Destination.report())
    destination_report: dict[str, Any]


@dataclass(frozen=True)
class Pause:
    """A sync paused from the CLI: its runs record `paused` and send nothing."""

    sync_name: str
    reason: str | None
    changed_by: str
    changed_at: datetime

    def describe(self) -> str:
        """ "since 2026-11-25 10:00 UTC by alice: campaign on hold" """
        because = f": {self.reason}" if self.reason else ""
        return f"since {self.changed_at:%Y-%m-%d %H:%M} UTC by {self.changed_by}{because}"


def ensure_tables(con: Store) -> None:
    """Create the schema and tables if missing, and add columns newer releases need."""
    store = as_warehouse(con)
    store.execute(
        render(
            "state.sql",
            dialect=store.dialect,
            schema=STATE_SCHEMA,
            plan_counts=PLAN_COUNTS,
            outcome_counts=OUTCOME_COUNTS,
        )
    )


def reset(con: Store) -> None:
    """Forget every sync's state, runs and logs (the demo starts each receiver empty)."""
    as_warehouse(con).execute(f"drop schema if exists {STATE_SCHEMA} cascade")


# -- run rows ------------------------------------------------------------------------


def mark_crashed_runs(con: Store, sync_name: str) -> None:
    """Runs of this sync still marked running are dead: the caller holds the sync's lock."""
    as_warehouse(con).execute(
        f"""
        update {STATE_SCHEMA}.runs
        set status = 'crashed',
            message = 'the process ended before this run finished; the next run re-planned its changes'
        where sync_name = :sync_name and status = 'running'
        """,
        {"sync_name": sync_name},
    )


def insert_run(
    con: Store,
    *,
    run_id: str,
    sync_name: str,
    destination: str,
    mode: str,
    dry_run: bool,
    force: bool,
    full_resync: bool,
    now: datetime,
) -> None:
    as_warehouse(con).execute(
        f"""
        insert into {STATE_SCHEMA}.runs (
            run_id, sync_name, destination, mode, is_dry_run, is_forced, is_full_resync, status, started_at
        )
        values (:run_id, :sync_name, :destination, :mode, :dry_run, :force, :full_resync, 'running', :now)
        """,
        {
            "run_id": run_id,
            "sync_name": sync_name,
            "destination": destination,
            "mode": mode,
            "dry_run": dry_run,
            "force": force,
            "full_resync": full_resync,
            "now": now,
        },
    )


def record_plan(con: Store, run_id: str, plan: PlanSummary, now: datetime) -> None:
    """Write the plan's counts into the run's row."""
    assignments = ", ".join(f"{count.name} = :{count.name}" for count in PLAN_COUNTS)
    as_warehouse(con).execute(
        f"update {STATE_SCHEMA}.runs set {assignments}, identifier_coverage = :coverage, planned_at = :now "
        "where run_id = :run_id",
        {
            **{count.name: count.of(plan) for count in PLAN_COUNTS},
            "coverage": json.dumps(dict(plan.identifier_coverage)),
            "now": now,
            "run_id": run_id,
        },
    )


def record_destination_report(con: Store, run_id: str, report: Mapping[str, Any]) -> None:
    """Keep the platform's own figures for the run (counts and statuses, never personal data)."""
    as_warehouse(con).execute(
        f"update {STATE_SCHEMA}.runs set destination_report = :report where run_id = :run_id",
        {"report": json.dumps(dict(report), sort_keys=True, default=str), "run_id": run_id},
    )


def finish_run(con: Store, run_id: str, status: str, message: str, now: datetime) -> None:
    as_warehouse(con).execute(
        f"update {STATE_SCHEMA}.runs set status = :status, message = :message, finished_at = :now "
        "where run_id = :run_id",
        {"status": status, "message": message, "now": now, "run_id": run_id},
    )


# -- the change log and the batches ------------------------------------------------------


def log_unsent(con: Store, *, run_id: str, sync_name: str, plan_table: str, now: datetime) -> None:
    """Invalid rows and skipped rejections go into the change log: reported, never sent."""
    store = as_warehouse(con)
    store.execute(
        render("log_unsent.sql", dialect=store.dialect, schema=STATE_SCHEMA, plan_table=plan_table),
        {"run_id": run_id, "sync_name": sync_name, "now": now},
    )


#: a seq range of the plan marked in flight: these changes may land even if we never hear back
_MARK_IN_FLIGHT = f"""
    insert into {STATE_SCHEMA}.in_flight
    select :sync_name, record_key, profile_id, op, payload_hash, change_id, :run_id, :now
    from {{plan_table}}
    where seq between :mark_first_seq and :mark_last_seq and op in ('add', 'update', 'remove')
"""

#: a seq range this run marked in flight and then never sent (the run stopped before it): not in doubt
_UNMARK_IN_FLIGHT = f"""
    delete from {STATE_SCHEMA}.in_flight
    where sync_name = :sync_name and run_id = :run_id
        and change_id in (
            select change_id from {{plan_table}} where seq between :unmark_first_seq and :unmark_last_seq
        )
"""


@dataclass(frozen=True)
class BatchContext:
    """What a run's batch commits may skip, known once before the first batch is sent.

    Every key appears once in a plan, so a batch's keys are its own for the whole run: when
    the sync had no departed or failure rows before the run, the statements that clear a
    batch's keys from those tables have nothing to do, and an added key is never in state
    (the plan adds only keys the state does not hold, unless a pending privacy receipt hid
    its state row from the plan; then every confirmed key is cleared, as before).
    """

    has_departed: bool = True
    has_failures: bool = True
    state_may_hold_adds: bool = True


def batch_context(con: Store, sync_name: str) -> BatchContext:
    """The sync's BatchContext, read before its first batch is sent."""
    has_departed, has_failures, pending_receipts = as_warehouse(con).fetch(
        f"""
        select
            exists (select 1 from {STATE_SCHEMA}.departed where sync_name = :sync_name),
            exists (select 1 from {STATE_SCHEMA}.failures where sync_name = :sync_name),
            exists (
                select 1 from {STATE_SCHEMA}.privacy_receipts where sync_name = :sync_name and status = 'pending'
            )
        """,
        {"sync_name": sync_name},
    )[0]
    return BatchContext(bool(has_departed), bool(has_failures), bool(pending_receipts))


def commit_batch(
    con: Store,
    *,
    run_id: str,
    sync_name: str,
    plan_table: str,
    outcomes: BatchOutcomes,
    max_attempts: int,
    now: datetime,
    context: BatchContext = BatchContext(),
    mark: tuple[int, int] | None = None,
    unmark: tuple[int, int] | None = None,
) -> None:
    """Record sent batches' outcomes in one transaction (sql/commit_batch.sql): log every
    change, advance state for what was confirmed, count failures, update the run's totals.

    Each outcome's plan op (add | update | remove) lets the commit delete from state only the
    keys it may hold (see BatchContext). In the same transaction, ``mark`` (first, last seq) puts
    the plan's next changes in flight before any of them is sent, and ``unmark`` takes back
    changes this run marked but never sent. ``outcomes`` may be empty (only marking).
    """
    params: dict = {"run_id": run_id, "sync_name": sync_name, "now": now}
    sql: list[str] = []
    store = as_warehouse(con)
    if outcomes:
        ops, statuses = outcomes.ops, outcomes.statuses
        confirmed_ops = {op for op, status in zip(ops, statuses, strict=True) if status == "confirmed"}
        clears_state = bool(confirmed_ops - {"add"}) or ("add" in confirmed_ops and context.state_may_hold_adds)
        counts = {status: statuses.count(status) for status in ("confirmed", "failed", "rejected")}
        params |= {
            "max_attempts": max_attempts,
            "first_seq": min(outcomes.seqs),
            "last_seq": max(outcomes.seqs),
            "sent": len(statuses),
            **counts,
        }
        sql += statements(
            "commit_batch.sql",
            dialect=store.dialect,
            schema=STATE_SCHEMA,
            plan_table=plan_table,
            clears_state=clears_state,
            state_may_hold_adds=context.state_may_hold_adds,
            any_confirmed=counts["confirmed"] > 0,
            confirmed_removes="remove" in confirmed_ops,
            any_failed=counts["failed"] + counts["rejected"] > 0,
            clear_departed=context.has_departed,
            clear_failures=context.has_failures,
        )
    if unmark is not None:
        params["unmark_first_seq"], params["unmark_last_seq"] = unmark
        sql.append(_UNMARK_IN_FLIGHT.format(plan_table=plan_table))
    if mark is not None:
        params["mark_first_seq"], params["mark_last_seq"] = mark
        sql.append(_MARK_IN_FLIGHT.format(plan_table=plan_table))
    if not sql:
        return
    if outcomes:
        batch = pa.table(
            {
                "seq": int64_column(outcomes.seqs),
                "status": string_column(outcomes.statuses),
                "error": string_column(outcomes.errors),
                "destination_id": string_column(outcomes.destination_ids),
            }
        )
        store.load_rows("batch_outcomes", batch, temporary=True)
    try:
        with store.transaction():
            for statement in sql:
                store.execute(statement, params)
    finally:
        if outcomes:
            store.drop_loaded("batch_outcomes")


# -- pause and resume ---------------------------------------------------------------------


def set_paused(
    con: Store,
    sync_name: str,
    *,
    paused: bool,
    reason: str | None,
    changed_by: str,
    now: datetime,
) -> Pause | None:
    """Pause or resume a sync (a new row in controls); returns the pause that was in force before."""
    ensure_tables(con)
    before = pause_of(con, sync_name)
    as_warehouse(con).execute(
        f"insert into {STATE_SCHEMA}.controls (sync_name, paused, reason, changed_by, changed_at) "
        "values (:sync_name, :paused, :reason, :changed_by, :now)",
        {"sync_name": sync_name, "paused": paused, "reason": reason, "changed_by": changed_by, "now": now},
    )
    return before


def pauses(con: Store) -> dict[str, Pause]:
    """Every sync paused now, by name; works on a read-only connection and a fresh warehouse."""
    if not _has_table(con, "controls"):
        return {}
    rows = as_warehouse(con).fetch(
        f"""
        select sync_name, paused, reason, changed_by, changed_at
        from (
            select
                *,
                row_number() over (partition by sync_name order by changed_at desc) as recency
            from {STATE_SCHEMA}.controls
        ) as controls
        where recency = 1
        """
    )
    return {name: Pause(name, reason, by, at) for name, paused, reason, by, at in rows if paused}


def pause_of(con: Store, sync_name: str) -> Pause | None:
    """The pause in force for one sync, or None."""
    return pauses(con).get(sync_name)


# -- reads -------------------------------------------------------------------------------


def held_count(con: Store, sync_name: str) -> int:
    """How many records the destination has confirmed for this sync."""
    return as_warehouse(con).fetch(
        f"select count(*) from {STATE_SCHEMA}.state where sync_name = :sync_name", {"sync_name": sync_name}
    )[0][0]


def held_counts(con: Store) -> dict[str, int]:
    """Confirmed records per sync; empty when no sync has run in this warehouse."""
    if not _has_tables(con):
        return {}
    return dict(as_warehouse(con).fetch(f"select sync_name, count(*) from {STATE_SCHEMA}.state group by sync_name"))


def last_runs(con: Store) -> dict[str, LastRun]:
    """The latest run of every sync that has run; works on a read-only connection."""
    if not _has_tables(con):
        return {}
    counts = PLAN_COUNTS + OUTCOME_COUNTS
    store = as_warehouse(con)
    rows = store.fetch(render("last_runs.sql", dialect=store.dialect, schema=STATE_SCHEMA, counts=counts))
    return {
        name: LastRun(
            status=status,
            message=message,
            started_at=started_at,
            finished_at=finished_at,
            counts={count.name: value for count, value in zip(counts, values, strict=True)},
            identifier_coverage=json.loads(coverage) if coverage else {},
            destination_report=json.loads(report) if report else {},
        )
        for name, status, message, started_at, finished_at, coverage, report, *values in rows
    }


def _has_tables(con: Store) -> bool:
    """Whether a run ever created the tables (a fresh warehouse has none)."""
    return _has_table(con, "runs")


# -- alerts (destinations/alerts/: rules judge, these statements remember) ------------------------


@dataclass(frozen=True)
class RunRecord:
    """One run of a sync as cdp_sync.runs holds it, for the alert rules."""

    run_id: str
    sync_name: str
    destination: str
    status: str
    message: str | None
    started_at: datetime
    finished_at: datetime | None
    #: every count of destinations.summary by name (None where the run never planned)
    counts: dict[str, int | None]

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else 0.0


class PendingNotice(NamedTuple):
    """A notice owed to a channel, with what its alert says."""

    alert_id: str
    channel: str
    #: fired | resolved
    notice: str
    rule_name: str
    rule_kind: str
    subject: str
    summary: str
    facts: dict[str, Any]
    first_seen_at: datetime
    resolved_at: datetime | None
    attempts: int


def ensure_alert_tables(con: Store) -> None:
    store = as_warehouse(con)
    store.execute(render("alerts.sql", dialect=store.dialect, schema=STATE_SCHEMA))


def runs_started_since(con: Store, sync_name: str, since: datetime) -> list[RunRecord]:
    """The runs of one sync started at or after ``since``, oldest first (none before any run)."""
    if not _has_tables(con):
        return []
    counts = PLAN_COUNTS + OUTCOME_COUNTS
    rows = as_warehouse(con).fetch(
        f"""
        select run_id, sync_name, destination, status, message, started_at, finished_at,
            {", ".join(count.name for count in counts)}
        from {STATE_SCHEMA}.runs
        where sync_name = :sync_name and started_at >= :since
        order by started_at
        """,
        {"sync_name": sync_name, "since": since},
    )
    return [
        RunRecord(*row[:7], counts={count.name: value for count, value in zip(counts, row[7:], strict=True)})
        for row in rows
    ]


def open_alert(con: Store, rule_name: str, subject: str, condition_key: str) -> str | None:
    """The id of the unresolved alert of this rule on this subject and condition, or None."""
    rows = as_warehouse(con).fetch(
        f"""
        select alert_id from {STATE_SCHEMA}.alerts
        where rule_name = :rule_name and subject = :subject and condition_key = :condition_key
            and resolved_at is null
        """,
        {"rule_name": rule_name, "subject": subject, "condition_key": condition_key},
    )
    return rows[0][0] if rows else None


def insert_alert(
    con: Store,
    *,
    alert_id: str,
    rule_name: str,
    rule_kind: str,
    subject: str,
    condition_key: str,
    summary: str,
    facts: Mapping[str, Any],
    channels: Sequence[str],
    now: datetime,
) -> None:
    """A condition opened: its alert, and a pending "fired" notice per channel."""
    as_warehouse(con).execute(
        f"insert into {STATE_SCHEMA}.alerts values "
        "(:alert_id, :rule_name, :rule_kind, :subject, :condition_key, :summary, :facts, :now, :now, null, null)",
        {
            "alert_id": alert_id,
            "rule_name": rule_name,
            "rule_kind": rule_kind,
            "subject": subject,
            "condition_key": condition_key,
            "summary": summary,
            "facts": _json(facts),
            "now": now,
        },
    )
    _owe_notices(con, alert_id, "fired", channels, now)


def touch_alert(con: Store, alert_id: str, now: datetime) -> None:
    """The condition still holds: nothing is sent again."""
    as_warehouse(con).execute(
        f"update {STATE_SCHEMA}.alerts set last_seen_at = :now where alert_id = :alert_id",
        {"now": now, "alert_id": alert_id},
    )


def resolve_alert(con: Store, alert_id: str, channels: Sequence[str], now: datetime) -> None:
    """The condition cleared: the alert is resolved; a "resolved" notice is owed to ``channels``."""
    as_warehouse(con).execute(
        f"update {STATE_SCHEMA}.alerts set resolved_at = :now where alert_id = :alert_id",
        {"now": now, "alert_id": alert_id},
    )
    _owe_notices(con, alert_id, "resolved", channels, now)


def _owe_notices(con: Store, alert_id: str, notice: str, channels: Sequence[str], now) -> None:
    as_warehouse(con).execute_many(
        f"insert into {STATE_SCHEMA}.alert_deliveries "
        "values (:alert_id, :channel, :notice, 'pending', 0, null, :now, null, null)",
        [{"alert_id": alert_id, "channel": channel, "notice": notice, "now": now} for channel in channels],
    )


def pending_notices(con: Store) -> list[PendingNotice]:
    """Every notice not yet delivered, oldest first (an alert's "fired" before its "resolved")."""
    rows = as_warehouse(con).fetch(
        f"""
        select d.alert_id, d.channel, d.notice, a.rule_name, a.rule_kind, a.subject, a.summary, a.facts,
            a.first_seen_at, a.resolved_at, d.attempts
        from {STATE_SCHEMA}.alert_deliveries as d
        inner join {STATE_SCHEMA}.alerts as a using (alert_id)
        where d.status = 'pending'
        order by d.created_at, d.alert_id, d.notice = 'resolved', d.channel
        """
    )
    return [PendingNotice(*row[:7], json.loads(row[7] or "{}"), *row[8:]) for row in rows]


def record_delivery(
    con: Store,
    notice: PendingNotice,
    *,
    status: str,
    error: str | None,
    now: datetime,
) -> None:
    """What became of one attempt: sent, still pending (with the channel's error), or abandoned."""
    store = as_warehouse(con)
    store.execute(
        f"""
        update {STATE_SCHEMA}.alert_deliveries
        set status = :status, attempts = attempts + 1, last_error = :error, last_attempt_at = :now,
            sent_at = case when :status = 'sent' then cast(:now as timestamp) end
        where alert_id = :alert_id and channel = :channel and notice = :notice and status = 'pending'
        """,
        {
            "status": status,
            "error": error,
            "now": now,
            "alert_id": notice.alert_id,
            "channel": notice.channel,
            "notice": notice.notice,
        },
    )
    if status == "sent":
        store.execute(
            f"update {STATE_SCHEMA}.alerts set last_sent_at = :now where alert_id = :alert_id",
            {"now": now, "alert_id": notice.alert_id},
        )


def open_alerts(con: Store) -> list[tuple[str, str, str, datetime, datetime]]:
    """(rule, subject, summary, first seen, last seen) of every unresolved alert, oldest first."""
    if not _has_table(con, "alerts"):
        return []
    return as_warehouse(con).fetch(
        f"""
        select rule_name, subject, summary, first_seen_at, last_seen_at
        from {STATE_SCHEMA}.alerts where resolved_at is null order by first_seen_at
        """
    )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, default=str)


def _has_table(con: Store, table: str) -> bool:
    return as_warehouse(con).has_table(STATE_SCHEMA, table)


# -- suppression (destinations/suppression.py normalises and hashes; these statements keep) -----------


@dataclass(frozen=True)
class Suppression:
    """One entry of the global suppression list: a hash, never the value."""

    identifier_type: str
    value_sha256: str
    reason: str
    added_by: str
    added_at: datetime


def suppressed_hashes(con: Store) -> pa.Table:
    """The SHA-256 of every value on the suppression list now (one column, ``value_sha256``)."""
    hashes: list[str] = []
    if _has_table(con, "suppressions"):
        hashes = [
            row[0]
            for row in as_warehouse(con).fetch(
                f"select distinct value_sha256 from {STATE_SCHEMA}.suppressions where removed_at is null"
            )
        ]
    return pa.table({"value_sha256": string_column(hashes)})


def add_suppression(
    con: Store, identifier_type: str, value_sha256: str, *, reason: str, added_by: str, now: datetime
) -> bool:
    """Put a hashed value on the list; False when it is there already (nothing changes)."""
    ensure_tables(con)
    store = as_warehouse(con)
    with store.transaction():
        if _active_suppression(store, identifier_type, value_sha256):
            return False
        store.execute(
            f"insert into {STATE_SCHEMA}.suppressions "
            "values (:identifier_type, :value_sha256, :reason, :added_by, :now, null, null)",
            {
                "identifier_type": identifier_type,
                "value_sha256": value_sha256,
                "reason": reason,
                "added_by": added_by,
                "now": now,
            },
        )
    return True


def remove_suppression(con: Store, identifier_type: str, value_sha256: str, *, removed_by: str, now: datetime) -> bool:
    """Take a hashed value off the list (the row stays, with who and when); False when it was not on it."""
    ensure_tables(con)
    store = as_warehouse(con)
    with store.transaction():
        if not _active_suppression(store, identifier_type, value_sha256):
            return False
        store.execute(
            f"""
            update {STATE_SCHEMA}.suppressions set removed_by = :removed_by, removed_at = :now
            where identifier_type = :identifier_type and value_sha256 = :value_sha256 and removed_at is null
            """,
            {"identifier_type": identifier_type, "value_sha256": value_sha256, "removed_by": removed_by, "now": now},
        )
    return True


def suppressions(con: Store) -> list[Suppression]:
    """Every value on the list now, oldest first."""
    if not _has_table(con, "suppressions"):
        return []
    rows = as_warehouse(con).fetch(
        f"""
        select identifier_type, value_sha256, reason, added_by, added_at
        from {STATE_SCHEMA}.suppressions where removed_at is null order by added_at, value_sha256
        """
    )
    return [Suppression(*row) for row in rows]


def _active_suppression(store: Any, identifier_type: str, value_sha256: str) -> bool:
    return bool(
        store.fetch(
            f"""
            select count(*) from {STATE_SCHEMA}.suppressions
            where identifier_type = :identifier_type and value_sha256 = :value_sha256 and removed_at is null
            """,
            {"identifier_type": identifier_type, "value_sha256": value_sha256},
        )[0][0]
    )


# -- privacy receipts (destinations/privacy.py decides; these statements remember) ------------------


@dataclass(frozen=True)
class Receipt:
    """One (deletion request, sync) pair: whether its destination confirmed forgetting the person."""

    request_id: str
    sync_name: str
    destination: str
    requested_at: datetime | None
    opened_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None
    status: str
    attempts: int
    answer: str | None


class HeldRecord(NamedTuple):
    """A record of an erased profile that a sync's destination holds, or may hold, or held."""

    request_ids: tuple[str, ...]
    profile_id: str
    record_key: str
    destination_id: str | None


def open_receipts(
    con: Store, *, erasures: pa.Table, sync_name: str, destination: str, run_id: str, now: datetime
) -> int:
    """A pending receipt for every erasure (request_id, profile_id, requested_at) whose profile
    this sync's destination holds (state), may hold (in_flight) or held (departed), unless the
    pair has one already. Returns how many were opened."""
    store = as_warehouse(con)
    params = {"sync_name": sync_name, "destination": destination, "run_id": run_id, "now": now}
    store.load_rows("sync_erasures", erasures, temporary=True)
    try:
        with store.transaction():
            before = _receipt_count(store, sync_name)
            store.execute(
                f"""
                insert into {STATE_SCHEMA}.privacy_receipts
                select distinct
                    erasures.request_id, :sync_name, :destination, erasures.profile_id, erasures.requested_at,
                    :now, cast(null as timestamp), cast(null as timestamp), 'pending', 0, cast(null as varchar), :run_id
                from sync_erasures as erasures
                where erasures.profile_id in ({_held_profiles()})
                    and not exists (
                        select 1 from {STATE_SCHEMA}.privacy_receipts as receipts
                        where receipts.request_id = erasures.request_id and receipts.sync_name = :sync_name
                    )
                """,
                params,
            )
            return _receipt_count(store, sync_name) - before
    finally:
        store.drop_loaded("sync_erasures")


def _held_profiles() -> str:
    """The profiles whose records a sync's destination holds, may hold or held (:sync_name)."""
    return " union ".join(
        f"select profile_id from {STATE_SCHEMA}.{table} where sync_name = :sync_name and profile_id is not null"
        for table in ("state", "in_flight", "departed")
    )


def _receipt_count(store: Any, sync_name: str) -> int:
    return store.fetch(
        f"select count(*) from {STATE_SCHEMA}.privacy_receipts where sync_name = :sync_name", {"sync_name": sync_name}
    )[0][0]


def pending_forgets(con: Store, sync_name: str) -> tuple[list[HeldRecord], list[str]]:
    """The records to forget for this sync's pending receipts, one per key (with every request
    naming its profile), and the pending profiles no record addresses any more."""
    rows = as_warehouse(con).fetch(
        f"""
        with

        pending as (
            select request_id, profile_id from {STATE_SCHEMA}.privacy_receipts
            where sync_name = :sync_name and status = 'pending'
        ),

        held as (
            select profile_id, record_key, destination_id from {STATE_SCHEMA}.state where sync_name = :sync_name
            union
            select profile_id, record_key, cast(null as varchar) from {STATE_SCHEMA}.in_flight
            where sync_name = :sync_name
            union
            select profile_id, record_key, destination_id from {STATE_SCHEMA}.departed where sync_name = :sync_name
        )

        select pending.request_id, pending.profile_id, held.record_key, held.destination_id
        from pending
        left join held on held.profile_id = pending.profile_id
        order by pending.profile_id, held.record_key, held.destination_id, pending.request_id
        """,
        {"sync_name": sync_name},
    )
    records: dict[str, HeldRecord] = {}
    unaddressed: list[str] = []
    for request_id, profile_id, record_key, destination_id in rows:
        if record_key is None:
            unaddressed.append(profile_id)
            continue
        known = records.get(record_key)
        if known is None:
            records[record_key] = HeldRecord((request_id,), profile_id, record_key, destination_id)
        else:
            requests = known.request_ids if request_id in known.request_ids else (*known.request_ids, request_id)
            records[record_key] = known._replace(
                request_ids=requests, destination_id=known.destination_id or destination_id
            )
    return list(records.values()), sorted(set(unaddressed))


def settle_receipts(
    con: Store,
    *,
    sync_name: str,
    run_id: str,
    confirmed: Mapping[str, str],
    pending: Mapping[str, str],
    now: datetime,
) -> int:
    """Record one forget pass, in one transaction: per profile, ``confirmed`` (profile -> the
    platform's answer) or still ``pending`` (profile -> the error, retried next run). A confirmed
    profile's every row in this schema for the sync goes: state, in_flight, departed, failures,
    the change log and the plan table. Returns how many receipts were confirmed."""
    store = as_warehouse(con)
    plan = f'{STATE_SCHEMA}."plan__{sync_name}"'
    has_plan = store.has_table(STATE_SCHEMA, f"plan__{sync_name}")
    settled = 0
    with store.transaction():
        for profile_id, answer in pending.items():
            store.execute(
                f"""
                update {STATE_SCHEMA}.privacy_receipts
                set sent_at = coalesce(sent_at, :now), attempts = attempts + 1, answer = :answer, last_run_id = :run_id
                where sync_name = :sync_name and profile_id = :profile_id and status = 'pending'
                """,
                {"now": now, "answer": answer, "run_id": run_id, "sync_name": sync_name, "profile_id": profile_id},
            )
        for profile_id, answer in confirmed.items():
            params = {"sync_name": sync_name, "profile_id": profile_id}
            settled += store.fetch(
                f"""
                select count(*) from {STATE_SCHEMA}.privacy_receipts
                where sync_name = :sync_name and profile_id = :profile_id and status = 'pending'
                """,
                params,
            )[0][0]
            store.execute(
                f"""
                update {STATE_SCHEMA}.privacy_receipts
                set sent_at = coalesce(sent_at, :now), confirmed_at = :now, status = 'confirmed',
                    attempts = attempts + 1, answer = :answer, last_run_id = :run_id
                where sync_name = :sync_name and profile_id = :profile_id and status = 'pending'
                """,
                {**params, "now": now, "answer": answer, "run_id": run_id},
            )
            keys = f"""
                select record_key from {STATE_SCHEMA}.state where sync_name = :sync_name and profile_id = :profile_id
                union select record_key from {STATE_SCHEMA}.in_flight
                where sync_name = :sync_name and profile_id = :profile_id
                union select record_key from {STATE_SCHEMA}.departed
                where sync_name = :sync_name and profile_id = :profile_id
            """
            store.execute(
                f"""
                delete from {STATE_SCHEMA}.failures
                where sync_name = :sync_name
                    and key_sha256 in (select {_sha256(store.dialect, "record_key")} from ({keys}) as held_keys)
                """,
                params,
            )
            for table in ("state", "in_flight", "departed", "changes"):
                store.execute(
                    f"delete from {STATE_SCHEMA}.{table} where sync_name = :sync_name and profile_id = :profile_id",
                    params,
                )
            if has_plan:
                store.execute(f"delete from {plan} where profile_id = :profile_id", {"profile_id": profile_id})
    return settled


def _sha256(dialect: str, expression: str) -> str:
    from destinations.sql_templates import dialect_macros

    return str(dialect_macros(dialect).sha256(expression))


def record_forgotten(con: Store, run_id: str, forgotten: int) -> None:
    """The run's count of people its destination confirmed forgetting."""
    as_warehouse(con).execute(
        f"update {STATE_SCHEMA}.runs set forgotten = :forgotten where run_id = :run_id",
        {"forgotten": forgotten, "run_id": run_id},
    )


def receipts(con: Store) -> list[Receipt]:
    """Every privacy receipt, by request then sync; works on a read-only connection."""
    if not _has_table(con, "privacy_receipts"):
        return []
    rows = as_warehouse(con).fetch(
        f"""
        select request_id, sync_name, destination, requested_at, opened_at, sent_at, confirmed_at, status,
            attempts, answer
        from {STATE_SCHEMA}.privacy_receipts
        order by request_id, sync_name
        """
    )
    return [Receipt(*row) for row in rows]
