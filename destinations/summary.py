"""What one sync run counts, declared once.

:class:`PlanSummary` is what the plan counted; each of its fields carries the name it has
everywhere else (the ``cdp_sync.runs`` column and the Dagster metadata key) and the label
the CLI shows. :data:`PLAN_COUNTS` is read off those fields, in their order, and
:data:`OUTCOME_COUNTS` lists what happened to the changes sent. The runs table's DDL and
its updates (destinations/state.py), the Dagster metadata and both CLI tables all iterate
these lists: a new count is one field here, not five edits. :func:`run_summary` puts a run's
counts on the one line a person reads in the Dagster UI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine imports this module
    from destinations.engine import SyncRunResult


@dataclass(frozen=True)
class Count:
    """One number a run reports."""

    #: the ``cdp_sync.runs`` column and the Dagster metadata key
    name: str
    #: how the CLI labels it
    label: str
    #: the attribute holding it (on PlanSummary or SyncRunResult)
    attribute: str

    def of(self, record: Any) -> int:
        return getattr(record, self.attribute)


def _count(name: str, label: str, **default: int) -> Any:
    return field(metadata={"name": name, "label": label}, **default)


@dataclass(frozen=True)
class PlanSummary:
    """The plan's counts, in reading order: from the segment to the changes to send."""

    segment_members: int = _count("segment_members", "segment members")
    excluded_consent: int = _count("excluded_consent", "excluded: no consent / deletion")
    excluded_holdout: int = _count("excluded_holdout", "excluded: holdout")
    invalid: int = _count("invalid", "invalid (reported, not sent)")
    #: the invalid rows by reason (INVALID_REASONS): what the audience checks weigh
    invalid_null_key: int = _count("invalid_null_key", "  of which: no key")
    invalid_duplicate_key: int = _count("invalid_duplicate_key", "  of which: key shared by several profiles")
    invalid_malformed_key: int = _count("invalid_malformed_key", "  of which: malformed key")
    desired: int = _count("desired", "desired")
    confirmed_before: int = _count("confirmed_before", "held at destination before")
    adds: int = _count("planned_adds", "planned adds")
    updates: int = _count("planned_updates", "planned updates")
    removes: int = _count("planned_removes", "planned removes")
    #: desired records the destination already holds as they are
    unchanged: int = _count("unchanged", "unchanged")
    skipped_rejected: int = _count("skipped_rejected", "skipped (rejected before)")
    #: members no sync sends: on the global suppression list (cdp suppress)
    excluded_suppressed: int = _count("excluded_suppressed", "excluded: suppressed", default=0)
    #: planned removes for privacy (consent withdrawn, deletion requested, suppressed): never held
    #: by the mass-removal guard or the audience checks, sent even when they stop the rest
    privacy_removes: int = _count("planned_privacy_removes", "  of which privacy removals (never held)", default=0)
    #: people a deletion request erased whom the destination confirmed forgetting this run, before
    #: the plan (destinations/privacy.py; receipts: `cdp privacy status`)
    forgotten: int = _count("forgotten", "forgotten (deletion requests)", default=0)
    #: desired records carrying each mapped identifier, in mapping order (name, count);
    #: stored with the run as JSON (cdp_sync.runs.identifier_coverage), not as a count column
    identifier_coverage: tuple[tuple[str, int], ...] = ()

    @property
    def guarded_removes(self) -> int:
        """Removals the mass-removal guard weighs: every planned removal but the privacy ones."""
        return self.removes - self.privacy_removes

    @property
    def sendable(self) -> int:
        return self.adds + self.updates + self.removes

    @property
    def eligible(self) -> int:
        """Members left once consent, deletion, suppression and holdout are applied: the
        audience the key must address (desired + invalid)."""
        return self.segment_members - self.excluded_consent - self.excluded_suppressed - self.excluded_holdout

    def coverage_lines(self) -> list[str]:
        """ "email: 1,180 of 1,200 (98.3%)" per identifier, for people and logs."""
        return [
            f"{name}: {count:,} of {self.desired:,} ({count / self.desired:.1%})" if self.desired else f"{name}: 0"
            for name, count in self.identifier_coverage
        ]


#: the plan's invalid_reason values (destinations/sql/desired.sql) -> the PlanSummary field counting them
INVALID_REASONS: dict[str, str] = {
    "null key": "invalid_null_key",
    "duplicate key": "invalid_duplicate_key",
    "malformed key": "invalid_malformed_key",
}

#: every PlanSummary count, in field order
PLAN_COUNTS: tuple[Count, ...] = tuple(
    Count(name=f.metadata["name"], label=f.metadata["label"], attribute=f.name)
    for f in fields(PlanSummary)
    if "name" in f.metadata
)

#: what happened to the changes a run sent (attributes of destinations.engine.SyncRunResult)
OUTCOME_COUNTS: tuple[Count, ...] = (
    Count("sent", "sent", "sent"),
    Count("confirmed", "confirmed", "confirmed"),
    Count("failed", "failed (retried next run)", "failed"),
    Count("rejected", "rejected", "rejected"),
)


def _figure(name: str, value: Any) -> str:
    return f"{name} {value:,}" if isinstance(value, int) and not isinstance(value, bool) else f"{name} {value}"


def format_report(report: Mapping[str, Any]) -> str:
    """A platform's figures on one line ("num_received 1,200; num_invalid_entries 3")."""
    return "; ".join(_figure(name, value) for name, value in report.items())


#: how a run's status opens its summary line
_STATUS_LEAD = {
    "succeeded": "Succeeded",
    "partial": "Partly sent",
    "failed": "Failed",
    "stopped": "Stopped before sending",
    "paused": "Paused (nothing planned or sent)",
    "dry_run": "Dry run (nothing sent)",
}
#: a web address or anything like one (scheme://…, www.…): a summary carries none
_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*")


def _link_free(value: Any) -> Any:
    """A platform's figure fit for the summary: text without links or anything shaped like an
    email or phone (numbers as they are)."""
    if not isinstance(value, str):
        return value
    from destinations.http import redact

    return redact(_LINK.sub("[link removed]", value))


def run_summary(result: SyncRunResult, destination: str) -> str:
    """One line a person reads in the Dagster UI about a sync run: the plan, what was sent and
    confirmed, the failed audience checks and the platform's own figures.

    Counts and names only: never the run's message or errors (which may quote a platform's
    answer), no link and nothing shaped like personal data. E.g. "Succeeded: planned 120 adds,
    3 updates, 4 removes for 5,000 segment members (12 invalid, not sent); sent 127: 126 confirmed,
    0 failed, 1 rejected; demo_meta reports num_received 127, num_invalid_entries 2."
    """
    parts = [_STATUS_LEAD.get(result.status, result.status)]
    plan = result.plan
    if plan is not None:
        planned = (
            f"planned {plan.adds:,} adds, {plan.updates:,} updates, {plan.removes:,} removes "
            f"for {plan.segment_members:,} segment members"
        )
        parts.append(planned + (f" ({plan.invalid:,} invalid, not sent)" if plan.invalid else ""))
    if result.sent or result.status in {"succeeded", "partial"}:
        parts.append(
            f"sent {result.sent:,}: {result.confirmed:,} confirmed, {result.failed:,} failed, {result.rejected:,} rejected"
        )
    if plan is not None and plan.privacy_removes:
        parts.append(f"{plan.privacy_removes:,} of the removes for privacy (consent, deletion, suppression)")
    if result.forgotten:
        parts.append(f"forgot {result.forgotten:,} erased people")
    failed_checks = [check.name for check in result.checks if not check.passed]
    if failed_checks:
        parts.append(f"failed checks: {', '.join(failed_checks)}")
    if result.destination_report:
        figures = ", ".join(_figure(str(name), _link_free(value)) for name, value in result.destination_report.items())
        parts.append(f"{destination} reports {figures}")
    return parts[0] + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "") + "."
