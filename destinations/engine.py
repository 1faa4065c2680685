"""The sync engine: plan in the warehouse, send in batches, commit what was confirmed.

One run of one sync:

1. take the sync's lock (one run per sync at a time, across processes);
2. mark runs a crash left "running" as crashed (the lock proves they are dead);
3. check the definition against the warehouse, then plan in SQL (destinations/plan.py);
4. dry run: stop here — the plan table is the reviewable output, no state changes;
5. the safety guard: an empty source or removals above ``max_removal_share`` of what
   the destination holds stop the run before anything is sent, unless forced;
6. stream the plan in the destination's batch size (one batch in memory), send, and in
   one transaction per batch: log every change, advance ``cdp_sync.state`` only for records
   the destination confirmed, record failures (retried next run) and rejections
   (skipped until their payload changes).

A crash at any point leaves state at the last committed batch; the next run plans the
difference again and re-sends with the same change ids (idempotent at the destination).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
from filelock import FileLock, Timeout

from cdp.warehouse import connect
from destinations.base import Change, Destination, DestinationConfigError, DestinationUnavailable, Outcome
from destinations.definitions import SyncDefinition
from destinations.http import redact
from destinations.plan import (
    PlanSummary,
    SyncSources,
    build_plan,
    check_against_warehouse,
    ensure_state_tables,
    execute_bound,
    plan_table,
)

#: a record that failed this many runs in a row is treated as rejected until its payload changes
MAX_ATTEMPTS = 5

ProgressCallback = Callable[[int, int], None]


class SyncError(RuntimeError):
    """A run could not go ahead; the message says why and what to do."""


class SyncAlreadyRunning(SyncError):
    """Another run of the same sync holds its lock."""


@dataclass
class SyncRunResult:
    run_id: str
    sync_name: str
    #: dry_run | stopped | succeeded | partial | failed
    status: str
    message: str
    plan: PlanSummary | None = None
    sent: int = 0
    confirmed: int = 0
    failed: int = 0
    rejected: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in {"dry_run", "succeeded"}


def run_sync(
    sync: SyncDefinition,
    *,
    warehouse: Path,
    connect_destination: Callable[[SyncDefinition], Destination],
    sources: SyncSources = SyncSources(),
    dry_run: bool = False,
    force: bool = False,
    full_resync: bool = False,
    progress: ProgressCallback | None = None,
    after_send: Callable[[int], None] | None = None,
) -> SyncRunResult:
    """Run ``sync`` once against the DuckDB file ``warehouse``.

    ``after_send(batch_number)`` is called after each batch is sent and before its
    outcomes are committed (tests use it to simulate a crash at the worst moment).
    """
    warehouse = Path(warehouse).resolve()
    with _sync_lock(warehouse, sync.name):
        con = connect(warehouse)  # another writer: WarehouseBusyError, before anything is planned
        try:
            return _Run(con, sync, sources, dry_run=dry_run, force=force, full_resync=full_resync).execute(
                connect_destination, progress, after_send
            )
        finally:
            con.close()


def lock_path(warehouse: Path, sync_name: str) -> Path:
    return warehouse.parent / f".{warehouse.name}.locks" / f"sync__{sync_name}.lock"


class _sync_lock:
    """A file lock per (warehouse, sync): a second run, in any process, is refused at once."""

    def __init__(self, warehouse: Path, sync_name: str):
        self.path = lock_path(warehouse, sync_name)
        self.owner_path = self.path.with_suffix(".owner")
        self.sync_name = sync_name
        self.lock = FileLock(self.path, timeout=0)

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()
        except Timeout:
            holder = self.owner_path.read_text().strip() if self.owner_path.exists() else "another process"
            raise SyncAlreadyRunning(
                f"sync '{self.sync_name}' is already running ({holder}); "
                "wait for that run to finish — one sync never runs twice at once"
            ) from None
        self.owner_path.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {_now():%Y-%m-%d %H:%M:%S} UTC")

    def __exit__(self, *exc) -> None:
        self.owner_path.unlink(missing_ok=True)
        self.lock.release()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _Run:
    def __init__(self, con, sync: SyncDefinition, sources: SyncSources, *, dry_run: bool, force: bool, full_resync: bool):
        self.con = con
        self.sync = sync
        self.sources = sources
        self.dry_run = dry_run
        self.force = force
        self.full_resync = full_resync
        self.run_id = f"{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.table = plan_table(sync)
        self.started = time.perf_counter()
        self.result = SyncRunResult(run_id=self.run_id, sync_name=sync.name, status="running", message="")

    # -- the run --------------------------------------------------------------------

    def execute(self, connect_destination, progress, after_send) -> SyncRunResult:
        ensure_state_tables(self.con)
        self._mark_crashed_runs()
        check_against_warehouse(self.con, self.sync, self.sources)
        self._insert_run_row()
        plan = build_plan(self.con, self.sync, self.sources, full_resync=self.full_resync, run_id=self.run_id)
        self.result.plan = plan
        self._record_plan(plan)

        if self.dry_run:
            return self._finish(
                "dry_run",
                f"dry run: {plan.adds} to add, {plan.updates} to update, {plan.removes} to remove, "
                f"{plan.invalid} invalid; review {self.table}. Nothing was sent and state is unchanged.",
            )
        stop_reason = None if self.force else self._guard(plan)
        if stop_reason:
            return self._finish("stopped", stop_reason)

        self._log_unsent_rows()
        try:
            destination = connect_destination(self.sync)
        except DestinationConfigError as error:
            self._finish("failed", str(error))
            raise
        try:
            unavailable = self._send_all(destination, plan, progress, after_send)
        except Exception as error:
            # recorded, then raised: what was committed stays committed, the rest is re-planned.
            # (A BaseException — Ctrl-C, a killed process — leaves the run "running"; the next
            # run marks it crashed.)
            self._finish("failed", f"{type(error).__name__}: {redact(str(error))}")
            raise
        finally:
            destination.close()
        return self._finish(*self._verdict(plan, unavailable))

    def _guard(self, plan: PlanSummary) -> str | None:
        """Why this run must not send anything without --force, or None."""
        if plan.removes and plan.desired == 0:
            return (
                f"stopped before sending: segment '{self.sync.segment}' has no profiles to send, "
                f"which would remove all {plan.removes} records this sync holds at "
                f"'{self.sync.destination}'. If that is intended, run again with --force."
            )
        holding = plan.confirmed_before
        if plan.removes and holding and plan.removes / holding > self.sync.max_removal_share:
            return (
                f"stopped before sending: {plan.removes} removals are {plan.removes / holding:.0%} of the "
                f"{holding} records this sync holds at '{self.sync.destination}', above max_removal_share "
                f"{self.sync.max_removal_share:.0%}. Review {self.table}; if it is right, run again with --force."
            )
        return None

    def _send_all(self, destination: Destination, plan: PlanSummary, progress, after_send) -> str | None:
        total = plan.sendable
        batch_size = max(1, int(destination.batch_size))
        if progress:
            progress(0, total)
        for batch_number, first in enumerate(range(1, total + 1, batch_size), start=1):
            rows = self.con.execute(
                f"select seq, change_id, op, record_key, payload from {self.table} "
                "where seq between ? and ? order by seq",
                [first, min(first + batch_size - 1, total)],
            ).fetchall()
            changes = [self._change(row) for row in rows]
            self._mark_in_flight(first, rows[-1][0])
            unavailable = None
            try:
                outcomes = destination.send(changes)
            except DestinationUnavailable as error:
                unavailable = str(error)
                outcomes = [Outcome(change.change_id, "failed", unavailable) for change in changes]
            if after_send is not None:
                after_send(batch_number)
            self._commit_batch(rows, changes, outcomes)
            if progress:
                progress(min(first + batch_size - 1, total), total)
            if unavailable:
                return unavailable
        return None

    def _change(self, row) -> Change:
        _, change_id, op, record_key, payload = row
        if op == "remove":
            # a removal carries only what addresses the record
            return Change(change_id=change_id, op="remove", key=record_key, identifiers={self.sync.key: record_key})
        body = json.loads(payload)
        return Change(
            change_id=change_id,
            op="upsert",
            key=record_key,
            identifiers=body.get("identifiers") or {},
            fields=body.get("fields") or {},
        )

    # -- warehouse writes ----------------------------------------------------------

    def _mark_in_flight(self, first_seq: int, last_seq: int) -> None:
        """Before sending: these changes may land even if we never hear back."""
        self.con.execute(
            f"""
            insert into cdp_sync.in_flight
            select ?, record_key, profile_id, op, payload_hash, change_id, ?, ?
            from {self.table}
            where seq between ? and ?
            """,
            [self.sync.name, self.run_id, _now(), first_seq, last_seq],
        )

    def _commit_batch(self, rows, changes: list[Change], outcomes: list[Outcome]) -> None:
        """Record one batch's outcomes in one transaction. Records not confirmed stay in
        cdp_sync.in_flight: some of them may have landed."""
        by_id = {outcome.change_id: outcome for outcome in outcomes}
        missing = Outcome("", "failed", "the connector returned no outcome for this record")
        seqs, statuses, errors = [], [], []
        for row, change in zip(rows, changes):
            outcome = by_id.get(change.change_id, missing)
            seqs.append(row[0])
            statuses.append(outcome.status)
            errors.append(outcome.error)
        batch = pa.table({"seq": pa.array(seqs, pa.int64()), "status": statuses, "error": pa.array(errors, pa.string())})
        now = _now()
        params = {"sync": self.sync.name, "run": self.run_id, "now": now, "max_attempts": MAX_ATTEMPTS}
        con = self.con

        def run(sql: str) -> None:
            execute_bound(con, sql, params)

        con.register("batch_outcomes", batch)
        con.begin()
        try:
            run(
                f"""
                create or replace temp table batch_rows as
                select
                    p.seq, p.op, p.profile_id, p.record_key, p.key_sha256, p.payload_hash, o.status, o.error,
                    p.first_confirmed_at
                from {self.table} p
                inner join batch_outcomes o on o.seq = p.seq
                where p.seq between {min(seqs)} and {max(seqs)}
                """
            )
            run(
                """
                insert into cdp_sync.changes
                select $run, $sync, seq, op, profile_id, key_sha256, status, error, $now
                from batch_rows
                """
            )
            confirmed_keys = [row[3] for row, status in zip(rows, statuses) if status == "confirmed"]
            if confirmed_keys:
                # keys as values, not a subquery: DuckDB then uses the state_record_key index
                con.execute(
                    "delete from cdp_sync.state where sync_name = ? and record_key in "
                    f"({', '.join('?' * len(confirmed_keys))})",
                    [self.sync.name, *confirmed_keys],
                )
            run(
                """
                insert into cdp_sync.state
                select $sync, record_key, profile_id, payload_hash,
                    coalesce(first_confirmed_at, $now), $now, $run
                from batch_rows
                where status = 'confirmed' and op in ('add', 'update')
                """
            )
            # only a confirmation settles a doubt: a per-record failure after an in-run
            # retry (timeout, dropped connection) may follow an attempt that did land
            run(
                """
                delete from cdp_sync.in_flight
                where sync_name = $sync
                    and record_key in (select record_key from batch_rows where status = 'confirmed')
                """
            )
            run(
                """
                create or replace temp table batch_failures as
                select
                    b.key_sha256,
                    b.op,
                    b.payload_hash,
                    b.error,
                    case
                        when f.op = b.op and f.payload_hash is not distinct from b.payload_hash then f.attempts + 1
                        else 1
                    end as attempts,
                    b.status = 'rejected' as is_rejected,
                    coalesce(f.first_failed_at, $now) as first_failed_at
                from batch_rows b
                left join cdp_sync.failures f on f.sync_name = $sync and f.key_sha256 = b.key_sha256
                where b.status in ('failed', 'rejected')
                """
            )
            run(
                """
                delete from cdp_sync.failures
                where sync_name = $sync
                    and key_sha256 in (select key_sha256 from batch_rows)
                """
            )
            run(
                """
                insert into cdp_sync.failures
                select $sync, key_sha256, op, payload_hash, error, attempts,
                    is_rejected or attempts >= $max_attempts, first_failed_at, $now, $run
                from batch_failures
                """
            )
            counts = con.execute(
                """
                select
                    count(*),
                    count(*) filter (where status = 'confirmed'),
                    count(*) filter (where status = 'failed'),
                    count(*) filter (where status = 'rejected')
                from batch_rows
                """
            ).fetchall()[0]
            con.execute(
                """
                update cdp_sync.runs set
                    sent = sent + ?, confirmed = confirmed + ?, failed = failed + ?, rejected = rejected + ?
                where run_id = ?
                """,
                [*counts, self.run_id],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.unregister("batch_outcomes")
        self.result.sent += counts[0]
        self.result.confirmed += counts[1]
        self.result.failed += counts[2]
        self.result.rejected += counts[3]
        if len(self.result.errors) < 5:
            self.result.errors += [e for e in errors if e][: 5 - len(self.result.errors)]

    def _mark_crashed_runs(self) -> None:
        self.con.execute(
            """
            update cdp_sync.runs
            set status = 'crashed',
                message = 'the process ended before this run finished; the next run re-planned its changes'
            where sync_name = ? and status = 'running'
            """,
            [self.sync.name],
        )

    def _insert_run_row(self) -> None:
        self.con.execute(
            """
            insert into cdp_sync.runs (run_id, sync_name, destination, mode, is_dry_run, is_forced, is_full_resync,
                status, started_at)
            values (?, ?, ?, ?, ?, ?, ?, 'running', ?)
            """,
            [
                self.run_id,
                self.sync.name,
                self.sync.destination,
                self.sync.mode,
                self.dry_run,
                self.force,
                self.full_resync,
                _now(),
            ],
        )

    def _record_plan(self, plan: PlanSummary) -> None:
        self.con.execute(
            """
            update cdp_sync.runs set
                segment_members = ?, desired = ?, excluded_consent = ?, excluded_holdout = ?, invalid = ?,
                planned_adds = ?, planned_updates = ?, planned_removes = ?, unchanged = ?,
                skipped_rejected = ?, confirmed_before = ?, planned_at = ?
            where run_id = ?
            """,
            [
                plan.segment_members,
                plan.desired,
                plan.excluded_consent,
                plan.excluded_holdout,
                plan.invalid,
                plan.adds,
                plan.updates,
                plan.removes,
                plan.unchanged,
                plan.skipped_rejected,
                plan.confirmed_before,
                _now(),
                self.run_id,
            ],
        )

    def _log_unsent_rows(self) -> None:
        """Invalid rows and skipped rejections go into the change log: reported, never sent."""
        self.con.execute(
            f"""
            insert into cdp_sync.changes
            select
                ?, ?, seq, case when op = 'invalid' then null else op end, profile_id, key_sha256,
                case when op = 'invalid' then 'invalid' else 'skipped' end,
                coalesce(invalid_reason, 'rejected by the destination earlier; retried when the record changes'),
                ?
            from {self.table}
            where op in ('invalid', 'skip_rejected')
            """,
            [self.run_id, self.sync.name, _now()],
        )

    def _verdict(self, plan: PlanSummary, unavailable: str | None) -> tuple[str, str]:
        r = self.result
        summary = f"sent {r.sent} of {plan.sendable} planned: {r.confirmed} confirmed, {r.failed} failed, {r.rejected} rejected"
        if plan.invalid:
            summary += f"; {plan.invalid} invalid rows reported, not sent"
        if unavailable:
            return "failed", f"{summary}. Stopped: {unavailable}. The rest is retried next run."
        if r.failed or r.rejected:
            return "partial", f"{summary}. Failed records are retried next run; see cdp_sync.failures."
        return "succeeded", summary

    def _finish(self, status: str, message: str) -> SyncRunResult:
        self.con.execute(
            "update cdp_sync.runs set status = ?, message = ?, finished_at = ? where run_id = ?",
            [status, message, _now(), self.run_id],
        )
        self.result.status = status
        self.result.message = message
        self.result.seconds = time.perf_counter() - self.started
        return self.result
