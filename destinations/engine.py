"""The sync engine: plan in the warehouse, send in batches, commit what was confirmed.

One run of one sync:

1. take the sync's lock (one run per sync at a time, across processes);
2. mark runs a crash left "running" as crashed (the lock proves they are dead);
3. forget (destinations/privacy.py): every person a deletion request erased whom this sync's
   destination holds gets the platform's strongest removal, with a receipt — before the pause,
   the plan and the guard, since compliance comes first (a dry run forgets nothing);
   then a paused sync (in its definition, or `cdp sync NAME --pause`) stops: the run is
   recorded as `paused` and nothing is planned or sent (a dry run still plans);
4. check the definition against the warehouse, then plan in SQL (destinations/plan.py),
   and weigh the planned audience (destinations/audience_checks.py);
5. dry run: stop here — the plan table is the reviewable output, no state changes;
6. the safety guard: an empty source or removals above ``max_removal_share`` of what
   the destination holds stop the run before anything is sent, unless forced; so do
   failed audience checks when the caller enforces them (Dagster's send does). Privacy
   removals (consent withdrawn, deletion requested, suppressed) are not weighed, and a
   stopped run still sends them (they come first in the plan);
7. stream the plan in the destination's batch size (one window of ``COMMIT_RECORDS`` in
   memory), every change marked in flight before it is sent, and in one transaction per
   window of batches: log every change, advance the confirmed state only for records the
   destination confirmed, record failures (retried next run) and rejections (skipped until
   their payload changes), and mark the next window in flight.

This module is the control flow only: the SQL of the plan is destinations/plan.py's, and
every statement on the engine's tables is destinations/state.py's.

Two places, often one: the warehouse holding the data (the build's engine: DuckDB, Postgres
or Spark), where the desired rows are computed, and the state store holding ``cdp_sync``, which
needs transactions — the warehouse itself unless it lacks them (Spark), then a DuckDB or
Postgres store (destinations/warehouse/locations.py). So state advances only for confirmed
records on every engine.

A crash at any point leaves state at the last committed window (an error or an interrupt
commits the batches already answered first); the next run plans the difference again and
re-sends with the same change ids (idempotent at the destination).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from cdp.warehouse import connect
from destinations import state
from destinations.audience_checks import AudienceCheck, check_audience, failures
from destinations.base import Change, Destination, DestinationConfigError, DestinationUnavailable, Outcome
from destinations.definitions import SyncDefinition
from destinations.http import redact
from destinations.plan import (
    PlannedWindow,
    SyncSources,
    build_plan,
    check_against_warehouse,
    plan_table,
    planned_window,
    segment_min_size,
)
from destinations.privacy import forget_erased
from destinations.summary import PlanSummary
from destinations.warehouse import Warehouse
from destinations.warehouse.locations import DuckDBFile, Location, state_store_for

if TYPE_CHECKING:
    import duckdb

#: a record that failed this many runs in a row is treated as rejected until its payload changes
MAX_ATTEMPTS = 5

#: how many records' outcomes one state transaction commits (at least one batch): fewer commits
#: mean less warehouse work per record; a process killed outright re-sends at most this many
COMMIT_RECORDS = 10_000

ProgressCallback = Callable[[int, int], None]
#: opens the warehouse for writing; raises cdp.warehouse.WarehouseBusyError if another process writes it
OpenWarehouse = Callable[[Path], "duckdb.DuckDBPyConnection"]


class SyncError(RuntimeError):
    """A run could not go ahead; the message says why and what to do."""


class SyncAlreadyRunning(SyncError):
    """Another run of the same sync holds its lock."""


@dataclass
class SyncRunResult:
    run_id: str
    sync_name: str
    #: dry_run | paused | stopped | succeeded | partial | failed
    status: str
    message: str
    plan: PlanSummary | None = None
    #: the audience checks' verdicts on the plan (empty when the run did not plan)
    checks: tuple[AudienceCheck, ...] = ()
    #: why the sync is paused ("in its definition", or the CLI's pause), when it is
    paused: str | None = None
    #: the outcome counts (destinations.summary.OUTCOME_COUNTS)
    sent: int = 0
    confirmed: int = 0
    failed: int = 0
    rejected: int = 0
    #: people a privacy request erased whom the destination confirmed forgetting (destinations/privacy.py);
    #: also PlanSummary.forgotten once the run plans (a paused run records it without a plan)
    forgotten: int = 0
    #: privacy receipts of this sync still pending after the run (retried next run)
    forget_pending: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: the platform's own figures for the run (Destination.report()), e.g. Meta's invalid entries
    destination_report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in {"dry_run", "succeeded"}


def run_sync(
    sync: SyncDefinition,
    *,
    warehouse: Path | Location,
    connect_destination: Callable[[SyncDefinition], Destination],
    sources: SyncSources = SyncSources(),
    dry_run: bool = False,
    force: bool = False,
    full_resync: bool = False,
    progress: ProgressCallback | None = None,
    after_send: Callable[[int], None] | None = None,
    open_warehouse: OpenWarehouse = connect,
    on_plan: Callable[[PlanSummary], None] | None = None,
    enforce_audience_checks: bool = False,
    state_store: Location | None = None,
) -> SyncRunResult:
    """Run ``sync`` once against ``warehouse``: a DuckDB file, or any Location (a Postgres database,
    a Spark catalog). Its state lives in ``state_store`` (default: destinations.warehouse.locations.
    state_store_for: the warehouse itself when it has transactions, else CDP_SYNC_STATE or a DuckDB
    file beside the warehouse file).

    Every run that plans weighs the audience (``result.checks``); with
    ``enforce_audience_checks`` a failed check stops the run before anything is sent, as
    the mass-removal guard does (``force`` overrides both).

    ``after_send(batch_number)`` is called after each batch is sent and before its
    outcomes are committed (tests use it to simulate a crash at the worst moment).
    ``open_warehouse(path)`` opens a DuckDB file's connection, once the sync's lock is
    held (a benchmark hands in one that times each statement); the run closes it.
    ``on_plan(plan)`` is called once the plan is counted, before anything is sent (the CLI
    shows the identifier coverage there, so a poor match rate is visible before upload).
    """
    data_location = (
        warehouse if isinstance(warehouse, Location) else DuckDBFile(Path(warehouse).resolve(), open_warehouse)
    )
    store_location = state_store or state_store_for(data_location)
    with _SyncLock(store_location.lock_dir(), sync.name):
        store = store_location.open()  # another writer: WarehouseBusyError, before anything is planned
        data = store
        try:
            if data_location != store_location:
                data = data_location.open()
            run = _Run(
                store,
                sync,
                sources,
                dry_run=dry_run,
                force=force,
                full_resync=full_resync,
                enforce_audience_checks=enforce_audience_checks,
                data=data,
            )
            return run.execute(connect_destination, progress, after_send, on_plan)
        finally:
            if data is not store:
                data.close()
            store.close()


def lock_path(state_store: Path | Location, sync_name: str) -> Path:
    """The lock file of one sync's runs on a state store (a DuckDB file's path, or a Location)."""
    location = state_store if isinstance(state_store, Location) else DuckDBFile(Path(state_store))
    return location.lock_dir() / f"sync__{sync_name}.lock"


class _SyncLock:
    """A file lock per (state store, sync): a second run, in any process, is refused at once."""

    def __init__(self, lock_dir: Path, sync_name: str):
        self.path = lock_dir / f"sync__{sync_name}.lock"
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
    return datetime.now(UTC).replace(tzinfo=None)


class _Run:
    """One run: ``con`` is the state store, ``data`` the warehouse holding the sources (often the same)."""

    def __init__(
        self,
        con: Warehouse,
        sync: SyncDefinition,
        sources: SyncSources,
        *,
        dry_run: bool,
        force: bool,
        full_resync: bool,
        enforce_audience_checks: bool = False,
        data: Warehouse | None = None,
    ):
        self.con = con
        self.data = con if data is None else data
        self.sync = sync
        self.sources = sources
        self.dry_run = dry_run
        self.force = force
        self.full_resync = full_resync
        self.enforce_audience_checks = enforce_audience_checks
        self.run_id = f"{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.table = plan_table(sync)
        self.started = time.perf_counter()
        self.result = SyncRunResult(run_id=self.run_id, sync_name=sync.name, status="running", message="")

    def execute(self, connect_destination, progress, after_send, on_plan=None) -> SyncRunResult:
        state.ensure_tables(self.con)
        state.mark_crashed_runs(self.con, self.sync.name)  # the lock we hold proves they are dead
        self.result.paused = self._paused()
        if not (self.result.paused and not self.dry_run):
            check_against_warehouse(self.data, self.sync, self.sources)
        state.insert_run(
            self.con,
            run_id=self.run_id,
            sync_name=self.sync.name,
            destination=self.sync.destination,
            mode=self.sync.mode,
            dry_run=self.dry_run,
            force=self.force,
            full_resync=self.full_resync,
            now=_now(),
        )
        if not self.dry_run:
            self._forget(connect_destination)  # compliance first: before the pause, the plan and the guard
        if self.result.paused and not self.dry_run:
            return self._finish(
                "paused",
                f"sync '{self.sync.name}' is paused ({self.result.paused}); nothing was planned or sent. "
                f"{self._how_to_resume()}",
            )
        plan = build_plan(
            self.con, self.sync, self.sources, full_resync=self.full_resync, run_id=self.run_id, data=self.data
        )
        plan = replace(plan, forgotten=self.result.forgotten)  # the forget pass ran before the plan
        self.result.plan = plan
        state.record_plan(self.con, self.run_id, plan, _now())
        self.result.checks = check_audience(self.sync, plan, segment_min_size(self.data, self.sync, self.sources))
        if on_plan is not None:
            on_plan(plan)

        if self.dry_run:
            failed = [check.name for check in self.result.checks if not check.passed]
            return self._finish(
                "dry_run",
                f"dry run: {plan.adds} to add, {plan.updates} to update, {plan.removes} to remove, "
                f"{plan.invalid} invalid; review {self.table}. Nothing was sent and state is unchanged."
                + (f" Failed audience checks: {', '.join(failed)}." if failed else "")
                + (f" The sync is paused ({self.result.paused})." if self.result.paused else ""),
            )
        stop_reason = None if self.force else self._guard(plan)
        if stop_reason is None and self.enforce_audience_checks and not self.force:
            failed = failures(self.result.checks)
            stop_reason = f"stopped before sending: {failed}" if failed else None
        if stop_reason:
            if plan.privacy_removes:
                stop_reason += self._send_privacy_removes(connect_destination, plan, progress, after_send)
            return self._finish("stopped", stop_reason)

        state.log_unsent(self.con, run_id=self.run_id, sync_name=self.sync.name, plan_table=self.table, now=_now())
        try:
            destination = connect_destination(self.sync)
        except DestinationConfigError as error:
            self._finish("failed", str(error))
            raise
        try:
            unavailable = self._send_all(destination, plan, progress, after_send)
            self._record_report(destination)
        except Exception as error:
            # recorded, then raised: what was committed stays committed, the rest is re-planned.
            # (A BaseException — Ctrl-C, a killed process — leaves the run "running"; the next
            # run marks it crashed.)
            self._finish("failed", f"{type(error).__name__}: {redact(str(error))}")
            raise
        finally:
            destination.close()
        return self._finish(*self._verdict(plan, unavailable))

    def _forget(self, connect_destination) -> None:
        """The forget pass (destinations/privacy.py): every erased person this sync's destination
        holds gets the platform's strongest removal; receipts record what was confirmed."""
        try:
            forgotten = forget_erased(
                self.con,
                self.data,
                self.sync,
                self.sources.privacy_erasures,
                connect_destination,
                run_id=self.run_id,
                now=_now,
            )
        except DestinationConfigError as error:
            self._finish("failed", str(error))
            raise
        self.result.forgotten, self.result.forget_pending = forgotten.forgotten, forgotten.pending
        self.result.errors += forgotten.errors[: max(0, 5 - len(self.result.errors))]
        if forgotten.forgotten:
            state.record_forgotten(self.con, self.run_id, forgotten.forgotten)

    def _send_privacy_removes(self, connect_destination, plan: PlanSummary, progress, after_send) -> str:
        """A stopped run still sends its privacy removals (plan seqs 1..privacy_removes): consent
        withdrawn, deletion requested or suppressed is never held by the guard or the checks."""
        state.log_unsent(self.con, run_id=self.run_id, sync_name=self.sync.name, plan_table=self.table, now=_now())
        try:
            destination = connect_destination(self.sync)
        except DestinationConfigError as error:
            self._finish("failed", str(error))
            raise
        try:
            unavailable = self._send_all(destination, plan, progress, after_send, total=plan.privacy_removes)
        finally:
            destination.close()
        r = self.result
        sent = f" Its {plan.privacy_removes} privacy removals were sent all the same: {r.confirmed} confirmed"
        return sent + (f", stopped: {unavailable}." if unavailable else f", {r.failed} failed, {r.rejected} rejected.")

    def _paused(self) -> str | None:
        """Why this sync is paused, or None: its definition first, then the CLI's pause."""
        if self.sync.paused:
            return "paused: true in its definition"
        pause = state.pause_of(self.con, self.sync.name)
        return pause.describe() if pause else None

    def _how_to_resume(self) -> str:
        if self.sync.paused:
            return "Remove `paused: true` from its meta.sync block to resume."
        return f"Resume with `cdp sync {self.sync.name} --resume`."

    def _guard(self, plan: PlanSummary) -> str | None:
        """Why this run must not send anything without --force, or None."""
        if plan.guarded_removes and plan.desired == 0:
            return (
                f"stopped before sending: segment '{self.sync.segment}' has no profiles to send, "
                f"which would remove all {plan.guarded_removes} records this sync holds at "
                f"'{self.sync.destination}'. If that is intended, run again with --force."
            )
        # privacy removals (consent, deletion, suppression) are never held: weigh only the rest
        removes = plan.guarded_removes
        holding = plan.confirmed_before - plan.privacy_removes
        if removes and holding and removes / holding > self.sync.max_removal_share:
            return (
                f"stopped before sending: {removes} removals are {removes / holding:.0%} of the "
                f"{holding} records this sync holds at '{self.sync.destination}', above max_removal_share "
                f"{self.sync.max_removal_share:.0%}. Review {self.table}; if it is right, run again with --force."
            )
        return None

    def _send_all(
        self, destination: Destination, plan: PlanSummary, progress, after_send, *, total: int | None = None
    ) -> str | None:
        """Send the plan batch by batch (its first ``total`` changes: default all); the reason the
        destination became unavailable, or None.

        The warehouse work is done per window of batches (``COMMIT_RECORDS``), not per batch, and
        beside the sending: while a window's batches are sent, one background transaction records
        the previous window's outcomes and marks the next window in flight, then the next window's
        changes are read. So every change is in flight before it is sent, state advances only for
        confirmed records, and the connection is used by one thread at a time. When the loop ends
        early (the destination unavailable, an error, an interrupt), the batches already answered
        are committed and the changes marked but never sent are taken out of flight. A process
        killed outright loses at most two windows of confirmations: their changes stay in flight
        and are sent again next run with the same change ids (the receiver de-duplicates them).
        """
        total = plan.sendable if total is None else total
        batch_size = max(1, int(destination.batch_size))
        ranges = [(first, min(first + batch_size - 1, total)) for first in range(1, total + 1, batch_size)]
        if progress:
            progress(0, total)
        if not ranges:
            return None
        per_window = max(1, COMMIT_RECORDS // batch_size)
        windows = [ranges[index : index + per_window] for index in range(0, len(ranges), per_window)]
        window = _Window(self, state.batch_context(self.con, self.sync.name))
        window.prepare(state.BatchOutcomes(), (windows[0][0][0], windows[0][-1][1]))
        batch_number = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-{self.sync.name}") as worker:
            try:
                for index, batches in enumerate(windows):
                    following = windows[index + 1] if index + 1 < len(windows) else None
                    answered, window.pending = window.pending, state.BatchOutcomes()
                    rows, taken, unavailable = window.rows, 0, None
                    job = worker.submit(window.prepare, answered, following and (following[0][0], following[-1][1]))
                    try:
                        for _, last in batches:
                            batch_number += 1
                            first, taken = taken, bisect_right(rows.seqs, last, taken)
                            window.attempted_upto = last
                            unavailable, outcomes = _send(destination, rows.changes(first, taken))
                            if after_send is not None:
                                after_send(batch_number)
                            window.answered(rows, first, taken, outcomes)
                            if progress:
                                progress(last, total)
                            if unavailable:
                                break
                    except BaseException:
                        window.join(job, answered, quiet=True)
                        raise
                    window.join(job, answered)
                    if unavailable:
                        window.commit(ending=True)
                        return unavailable
                window.commit(ending=True)
            except BaseException:
                window.commit_after_error()
                raise
        return None

    def _count(self, answered: state.BatchOutcomes) -> None:
        """Add committed outcomes to the run's result."""
        statuses = answered.statuses
        self.result.sent += len(statuses)
        self.result.confirmed += statuses.count("confirmed")
        self.result.failed += statuses.count("failed")
        self.result.rejected += statuses.count("rejected")
        if len(self.result.errors) < 5:
            errors = [error for error in answered.errors if error]
            self.result.errors += errors[: 5 - len(self.result.errors)]

    def _record_report(self, destination: Destination) -> None:
        """Keep the platform's own figures with the run (values redacted: never personal data)."""
        report = {
            str(name): redact(value) if isinstance(value, str) else value
            for name, value in dict(destination.report() or {}).items()
        }
        self.result.destination_report = report
        if report:
            state.record_destination_report(self.con, self.run_id, report)

    def _verdict(self, plan: PlanSummary, unavailable: str | None) -> tuple[str, str]:
        r = self.result
        summary = (
            f"sent {r.sent} of {plan.sendable} planned: "
            f"{r.confirmed} confirmed, {r.failed} failed, {r.rejected} rejected"
        )
        if plan.invalid:
            summary += f"; {plan.invalid} invalid rows reported, not sent"
        if unavailable:
            return "failed", f"{summary}. Stopped: {unavailable}. The rest is retried next run."
        if r.failed or r.rejected:
            return "partial", f"{summary}. Failed records are retried next run; see {state.STATE_SCHEMA}.failures."
        return "succeeded", summary

    def _finish(self, status: str, message: str) -> SyncRunResult:
        state.finish_run(self.con, self.run_id, status, message, _now())
        self.result.status = status
        self.result.message = message
        self.result.seconds = time.perf_counter() - self.started
        return self.result


def _send(destination: Destination, changes: list[Change]) -> tuple[str | None, list[Outcome]]:
    """(why the destination is unavailable or None, the outcomes); unavailable fails every change."""
    try:
        return None, destination.send(changes)
    except DestinationUnavailable as error:
        return str(error), [Outcome(change.change_id, "failed", str(error)) for change in changes]


class _Window:
    """What a run has sent since its last state commit, and what is in flight.

    ``marked_upto`` is the last seq marked in flight, ``attempted_upto`` the last seq handed to
    the destination; ``rows`` are the next window's changes, read from the plan table once;
    ``pending`` the outcomes not yet committed. Only one thread at a time uses the connection:
    the background job (``prepare``) is always joined before the run's thread commits.
    """

    def __init__(self, run: _Run, context: state.BatchContext):
        self.run = run
        self.context = context
        self.marked_upto = 0
        self.attempted_upto = 0
        self.rows = PlannedWindow()
        self.pending = state.BatchOutcomes()

    def answered(self, rows: PlannedWindow, first: int, last: int, outcomes: list[Outcome]) -> None:
        """Keep the outcomes of a sent batch (``rows`` first..last, by index) for the next commit;
        a change the connector did not answer for failed."""
        by_id = {outcome.change_id: outcome for outcome in outcomes}
        missing = Outcome("", "failed", "the connector returned no outcome for this record")
        matched = [by_id.get(change_id, missing) for change_id in rows.change_ids[first:last]]
        self.pending.extend(rows.seqs[first:last], rows.ops[first:last], matched)

    def prepare(self, answered: state.BatchOutcomes, mark: tuple[int, int] | None) -> None:
        """One transaction: ``answered`` outcomes recorded and the window ``mark`` in flight; then
        that window's changes read (the background job; the first window's runs inline)."""
        self._commit(answered, mark=mark)
        self.rows = planned_window(self.run.con, self.run.sync, *mark) if mark else PlannedWindow()

    def join(self, job: Future, answered: state.BatchOutcomes, *, quiet: bool = False) -> None:
        """Wait for the background job; if it failed, its outcomes are pending again and its
        error is raised (``quiet``: not, another error is on its way)."""
        try:
            job.result()
        except BaseException:
            self.pending = answered + self.pending
            if not quiet:
                raise

    def commit(self, *, ending: bool = False) -> None:
        """The pending outcomes; when the loop is ``ending``, the changes marked but never handed
        to the destination out of flight."""
        unmark = (
            (self.attempted_upto + 1, self.marked_upto) if ending and self.attempted_upto < self.marked_upto else None
        )
        self._commit(self.pending, unmark=unmark)
        self.pending = state.BatchOutcomes()
        if unmark is not None:
            self.marked_upto = self.attempted_upto

    def _commit(self, answered: state.BatchOutcomes, *, mark: tuple[int, int] | None = None, unmark=None) -> None:
        run = self.run
        state.commit_batch(
            run.con,
            run_id=run.run_id,
            sync_name=run.sync.name,
            plan_table=run.table,
            outcomes=answered,
            context=self.context,
            mark=mark,
            unmark=unmark,
            max_attempts=MAX_ATTEMPTS,
            now=_now(),
        )
        run._count(answered)
        if mark is not None:
            self.marked_upto = mark[1]

    def commit_after_error(self) -> None:
        """The loop ended with an error: what the destination answered is a fact worth keeping,
        and what was never sent is not in doubt. The error in hand is the one reported; if this
        commit fails too, the next run re-plans (everything attempted is still in flight)."""
        with contextlib.suppress(Exception):  # the original error propagates
            self.commit(ending=True)
