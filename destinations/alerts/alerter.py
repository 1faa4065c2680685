"""Turning what the rules observe into alerts a person sees: once per condition, delivered
to every channel of the rule, retried until it arrives.

One evaluation, wherever it runs (after a sync run, after a build, on a Dagster run's end):

1. a short transaction on the warehouse: judge (the sync's new runs, the segments' sizes, or
   observations handed in), then per observation open an alert (and owe each channel a
   "fired" notice), keep an open one quiet, or resolve it (and owe a "resolved" notice);
   then read every notice still owed, from this evaluation or an earlier one;
2. the warehouse closed, send those notices over HTTP;
3. a second short transaction records what arrived; what did not stays pending for the
   next evaluation (and the report says so).

The alerts live beside the runs they judge, in the sync state store (the warehouse itself, or
CDP_SYNC_STATE's store: destinations/warehouse/locations.py); segment sizes are read where the
build left them. The store is never held while talking to a channel. A DuckDB file another
process is writing raises cdp.warehouse.WarehouseBusyError before anything is judged: the
caller skips and tries again later (a sensor's next tick).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.warehouse import connect
from destinations import state
from destinations.alerts.channels import Channel, Notice
from destinations.alerts.config import AlertConfig
from destinations.alerts.rules import Observation, SegmentSize, judge_segments, judge_sync_run
from destinations.http import redact
from destinations.warehouse import Warehouse, as_warehouse
from destinations.warehouse.locations import DuckDBFile, Location, state_store_for

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("cdp.alerts")

OpenWarehouse = Callable[[Path], "duckdb.DuckDBPyConnection"]


def utc_now() -> datetime:
    """Now, as the engine stamps runs (UTC, naive): pass it as ``since`` before a sync runs."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class AlertReport:
    """What one evaluation did, as lines for a log or a terminal."""

    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    #: notices that did not arrive (the channel's error): sent again at the next evaluation
    pending: list[str] = field(default_factory=list)
    #: runs of the sync this evaluation judged (after_sync only)
    runs: list[state.RunRecord] = field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            [f"alert opened: {line}" for line in self.opened]
            + [f"alert resolved: {line}" for line in self.resolved]
            + [f"alert sent: {line}" for line in self.sent]
            + [f"alert pending (retried at the next evaluation): {line}" for line in self.pending]
        )


class Alerter:
    """Evaluates alert rules against one warehouse and delivers what they raise."""

    def __init__(
        self,
        config: AlertConfig,
        warehouse: Path | Location,
        *,
        open_warehouse: OpenWarehouse = connect,
        channel_tuning: Mapping[str, Any] | None = None,
        state_store: Location | None = None,
    ) -> None:
        """``warehouse`` holds the segments (a DuckDB file, opened with ``open_warehouse``, or a
        Location); ``state_store`` the sync runs and the alerts (default: state_store_for it).
        ``channel_tuning`` goes to every channel (tests pass ``backoff_factor=0``)."""
        self.config = config
        self.data = warehouse if isinstance(warehouse, Location) else DuckDBFile(Path(warehouse), open_warehouse)
        self.store = state_store or state_store_for(self.data)
        self._tuning = dict(channel_tuning or {})

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    # -- the evaluation points --------------------------------------------------------------

    def after_sync(self, sync_name: str, since: datetime) -> AlertReport:
        """Judge the runs of ``sync_name`` started since ``since`` (those this attempt made)."""
        report = AlertReport()

        def observe(con: Warehouse) -> list[Observation]:
            report.runs = state.runs_started_since(con, sync_name, since)
            return [o for run in report.runs for o in judge_sync_run(self.config.rules.values(), run)]

        return self._evaluate(observe, report)

    def after_build(self) -> AlertReport:
        """Judge every segment's size as the last build left it (``segments``)."""

        def observe(con: Warehouse) -> list[Observation]:
            if self.data == self.store:
                return judge_segments(self.config.rules.values(), segment_sizes(con))
            with self.data.open() as data:
                return judge_segments(self.config.rules.values(), segment_sizes(data))

        return self._evaluate(observe)

    def record(self, observations: Sequence[Observation]) -> AlertReport:
        """Record observations made elsewhere (a Dagster run's end) and deliver what is owed."""
        return self._evaluate(lambda con: list(observations))

    # -- the steps ----------------------------------------------------------------------------

    def _evaluate(
        self, observe: Callable[[Warehouse], list[Observation]], report: AlertReport | None = None
    ) -> AlertReport:
        report = report if report is not None else AlertReport()
        if not self.enabled:
            return report
        with self._warehouse() as con:
            state.ensure_alert_tables(con)
            observations = observe(con)
            with con.transaction():
                for observation in observations:
                    self._apply(con, observation, report)
            owed = state.pending_notices(con)
        outcomes = self._deliver(owed, report)
        if outcomes:
            with self._warehouse() as con, con.transaction():
                for notice, status, error in outcomes:
                    state.record_delivery(con, notice, status=status, error=error, now=utc_now())
        for line in report.pending:
            log.warning("alert pending, retried at the next evaluation: %s", line)
        return report

    def _apply(self, con: Warehouse, observation: Observation, report: AlertReport) -> None:
        rule = observation.rule
        name = f"{rule.name} on {observation.subject}" + (
            f" ({observation.condition})" if observation.condition else ""
        )
        alert_id = state.open_alert(con, rule.name, observation.subject, observation.condition)
        now = utc_now()
        if observation.holds and alert_id is None:
            state.insert_alert(
                con,
                alert_id=uuid.uuid4().hex[:20],
                rule_name=rule.name,
                rule_kind=rule.kind,
                subject=observation.subject,
                condition_key=observation.condition,
                summary=redact(observation.summary),
                facts={key: redact(value) if isinstance(value, str) else value for key, value in observation.facts},
                channels=rule.channels,
                now=now,
            )
            report.opened.append(name)
        elif observation.holds:
            state.touch_alert(con, alert_id, now)
        elif alert_id is not None:
            state.resolve_alert(con, alert_id, rule.channels if rule.notify_resolved else (), now)
            report.resolved.append(name)

    def _deliver(
        self, owed: Sequence[state.PendingNotice], report: AlertReport
    ) -> list[tuple[state.PendingNotice, str, str | None]]:
        """Send each owed notice; (notice, sent | pending | abandoned, error) for each one tried.

        A channel that fails once is not tried again in this evaluation (its retries were
        spent on the first notice); the rest of its notices wait, untouched, for the next.
        """
        outcomes: list[tuple[state.PendingNotice, str, str | None]] = []
        live: dict[str, Channel] = {}
        down: set[str] = set()
        try:
            for owed_notice in owed:
                name = f"{owed_notice.notice} {owed_notice.rule_name} on {owed_notice.subject} → {owed_notice.channel}"
                config = self.config.channels.get(owed_notice.channel)
                if config is None:
                    error = f"channel '{owed_notice.channel}' is no longer in {self.config.path}"
                    outcomes.append((owed_notice, "abandoned", error))
                    report.pending.append(f"{name}: {error}; abandoned")
                    continue
                if owed_notice.channel in down:
                    report.pending.append(f"{name}: channel unavailable")
                    continue
                if owed_notice.channel not in live:
                    live[owed_notice.channel] = config.connect(**self._tuning)
                channel = live[owed_notice.channel]
                delivery = channel.send(_notice(owed_notice))
                if delivery.ok:
                    outcomes.append((owed_notice, "sent", None))
                    report.sent.append(name)
                else:
                    down.add(owed_notice.channel)
                    outcomes.append((owed_notice, "pending", delivery.error))
                    report.pending.append(f"{name}: {delivery.error}")
        finally:
            for channel in live.values():
                channel.close()
        return outcomes

    @contextmanager
    def _warehouse(self) -> Iterator[Warehouse]:
        """The state store, open (alerts live beside the runs they judge)."""
        con = self.store.open()
        try:
            yield con
        finally:
            con.close()


def _notice(owed: state.PendingNotice) -> Notice:
    return Notice(
        alert_id=owed.alert_id,
        notice=owed.notice,
        rule=owed.rule_name,
        kind=owed.rule_kind,
        subject=owed.subject,
        summary=owed.summary,
        facts=owed.facts,
        first_seen_at=owed.first_seen_at,
        resolved_at=owed.resolved_at,
    )


def segment_sizes(con: Any) -> list[SegmentSize]:
    """Every segment's size and minimum as the last build registered them (none before a build).
    ``con`` is the warehouse holding the build (a Warehouse, or a DuckDB connection)."""
    data = as_warehouse(con)
    if not data.has_table("main", "segments"):
        return []
    rows = data.fetch(
        "select segment_name, member_count, coalesce(min_size, 0) from main.segments order by segment_name"
    )
    return [SegmentSize(name, int(count or 0), int(minimum)) for name, count, minimum in rows]
