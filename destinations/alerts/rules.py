"""The alert rule kinds, and how each judges what happened: a pure function of a run, a
segment's size or a Dagster run, never of the warehouse or the network.

A rule names its kind, a threshold (one frozen dataclass per kind, parsed by the shared
option parser of destinations/options.py) and optionally the syncs or segments it watches.
Judging yields :class:`Observation` records — "rule R's condition for subject S holds (or
not)" — that destinations/alerts/alerter.py turns into alerts, once per condition.

Every text here is built from names and counts, in our own words: a failed run's message
is not forwarded (:func:`failure_reason`: a platform's error text or an exception's text may
quote a record), and every text passes through destinations.http.redact again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from destinations.http import redact
from destinations.options import option
from destinations.state import STATE_SCHEMA, RunRecord

#: what a rule watches: one sync's runs, or a segment's size after a build
SYNC_SCOPE = "sync"
SEGMENT_SCOPE = "segment"

#: run statuses a run_failed rule alerts on (cdp_sync.runs.status)
FAILED_STATUSES = frozenset({"failed", "stopped"})
#: run statuses that say the sync's own code ran to a verdict (dry runs change nothing: not judged)
JUDGED_STATUSES = frozenset({"succeeded", "partial", "failed", "stopped"})


# -- the thresholds, one record per kind -------------------------------------------------------


@dataclass(frozen=True)
class RunFailedOptions:
    """A run failed or was stopped by its guard (cdp_sync.runs), or a Dagster run failed
    outside a sync's own code (a dbt build, a crash before the sync recorded a run)."""


@dataclass(frozen=True)
class RejectedShareOptions:
    """Too many of the records a run sent were rejected by the destination."""

    max_share: float = option(help="alert when rejected / sent is above this share (0 to 1)", minimum=0, maximum=1)
    min_sent: int = option(default=1, minimum=1, help="judge only runs that sent at least this many records")


@dataclass(frozen=True)
class AudienceChangeOptions:
    """The audience a run wants differs too much from what the destination held before."""

    max_change_share: float = option(
        help="alert when |desired - held before| / held before is above this share (0.5 = 50%)", above=0
    )
    min_held: int = option(default=1, minimum=1, help="judge only runs whose destination held at least this many")


@dataclass(frozen=True)
class PrivacyRemovalsOptions:
    """A run removed people for privacy: forgot erased people (a deletion request) or removed
    those whose consent was withdrawn or who were suppressed. Never held by the guard, so they are
    told apart from ordinary removals here."""

    min_count: int = option(
        default=1, minimum=1, help="alert when a run's forgotten + privacy removals reach this many"
    )


@dataclass(frozen=True)
class SlowRunOptions:
    """A run took longer than a limit."""

    max_seconds: float = option(help="alert when a run takes longer than this many seconds", above=0)


@dataclass(frozen=True)
class SegmentMinimumOptions:
    """A segment has fewer members than its minimum size after a build."""

    min_size: int | None = option(
        default=None, minimum=1, help="the minimum for every watched segment (default: each segment's own min_size)"
    )


@dataclass(frozen=True)
class RuleKind:
    name: str
    scope: str
    options_type: type
    help: str


#: every rule kind alerts.yml may name
RULE_KINDS: dict[str, RuleKind] = {
    kind.name: kind
    for kind in (
        RuleKind("run_failed", SYNC_SCOPE, RunFailedOptions, "a sync run failed or was stopped; a Dagster run failed"),
        RuleKind("rejected_share", SYNC_SCOPE, RejectedShareOptions, "rejected records above a share of those sent"),
        RuleKind("audience_change", SYNC_SCOPE, AudienceChangeOptions, "audience size change past a threshold"),
        RuleKind("slow_run", SYNC_SCOPE, SlowRunOptions, "a sync run slower than a limit"),
        RuleKind(
            "privacy_removals",
            SYNC_SCOPE,
            PrivacyRemovalsOptions,
            "a sync run forgot erased people or removed people for consent or suppression",
        ),
        RuleKind("segment_below_minimum", SEGMENT_SCOPE, SegmentMinimumOptions, "a segment below its minimum size"),
    )
}


@dataclass(frozen=True)
class Rule:
    """One named rule of alerts.yml."""

    name: str
    kind: str
    #: the kind's threshold record (RejectedShareOptions …)
    options: Any
    #: channel names, in the file's order
    channels: tuple[str, ...]
    #: the syncs (sync-scoped kinds) or segments (segment kind) it watches; empty: all of them
    subjects: tuple[str, ...] = ()
    #: send a "resolved" notice when the condition clears
    notify_resolved: bool = True

    @property
    def scope(self) -> str:
        return RULE_KINDS[self.kind].scope

    def watches(self, name: str) -> bool:
        return not self.subjects or name in self.subjects


# -- what the rules judge ------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """Whether one rule's condition holds for one subject now.

    ``subject`` names what it is about ("sync champions_to_webhook", "segment vip",
    "job __ASSET_JOB"); ``condition`` tells apart several conditions of one rule on one
    subject (a Dagster job's failed steps), else "". ``summary`` and ``facts`` describe an
    open condition for a person: names and counts only.
    """

    rule: Rule
    subject: str
    condition: str
    holds: bool
    summary: str = ""
    facts: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SegmentSize:
    name: str
    member_count: int
    min_size: int


@dataclass(frozen=True)
class FailedStep:
    """A step of a failed Dagster run: its key, the error's class, and the sync it runs (if any)."""

    step_key: str
    error_class: str
    sync_name: str | None = None


def sync_subject(name: str) -> str:
    return f"sync {name}"


def job_subject(name: str) -> str:
    return f"job {name}"


def judge_sync_run(rules: Iterable[Rule], run: RunRecord) -> list[Observation]:
    """What every sync-scoped rule watching this sync says about one of its runs.

    A rule that cannot judge the run (a dry run; nothing sent for a share of rejections; no
    baseline for a size change) says nothing, so an open alert neither resolves nor repeats.
    """
    if run.status not in JUDGED_STATUSES:
        return []
    observations = []
    for rule in rules:
        if rule.scope != SYNC_SCOPE or not rule.watches(run.sync_name):
            continue
        observation = _JUDGES[rule.kind](rule, run)
        if observation is not None:
            observations.append(observation)
    return observations


def _run_facts(rule: Rule, run: RunRecord, **extra: Any) -> tuple[tuple[str, Any], ...]:
    return (
        ("rule", rule.name),
        ("sync", run.sync_name),
        ("destination", run.destination),
        ("run_id", run.run_id),
        ("status", run.status),
        *extra.items(),
    )


def _observe(rule: Rule, run: RunRecord, holds: bool, summary: str, **facts: Any) -> Observation:
    return Observation(rule, sync_subject(run.sync_name), "", holds, summary, _run_facts(rule, run, **facts))


def _count(run: RunRecord, name: str) -> int | None:
    """A count of the run (destinations.summary's names); None when the run never got that far."""
    value = run.counts.get(name)
    return None if value is None else int(value)


#: the HTTP status an engine message names ("(HTTP 503: …)")
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
#: an engine message that is an exception's text: "DestinationConfigError: …"
_EXCEPTION_TEXT = re.compile(r"^([A-Z]\w*(?:Error|Exception|Unavailable|Timeout)): ")


def failure_reason(message: str | None) -> str:
    """Why a run failed, in our own words only: the exception's class, or that the destination
    became unavailable (with the HTTP status it answered).

    The engine's failure messages quote a platform's error title or an exception's text,
    which may quote a record — and a name is not something redact can recognise — so an
    alert never forwards them; the full message stays in cdp_sync.runs.
    """
    if not message:
        return "no reason recorded"
    exception = _EXCEPTION_TEXT.match(message)
    if exception:
        return exception.group(1)
    status = _HTTP_STATUS.search(message)
    if "Stopped:" in message:
        return "the destination became unavailable" + (f" (HTTP {status.group(1)})" if status else "")
    return "see the run's message"


def _judge_failed(rule: Rule, run: RunRecord) -> Observation:
    counts = {name: _count(run, name) or 0 for name in ("sent", "confirmed", "failed", "rejected")}
    if run.status == "stopped":  # the guard's message: the engine's own words, names and counts
        summary = f"Sync {run.sync_name} was stopped by its guard (run {run.run_id}): {redact(run.message or '')}"
    else:
        summary = (
            f"Sync {run.sync_name} failed (run {run.run_id}, destination {run.destination}): "
            f"{failure_reason(run.message)}; sent {counts['sent']:,}: {counts['confirmed']:,} confirmed, "
            f"{counts['failed']:,} failed, {counts['rejected']:,} rejected. "
            f"The full message is in {STATE_SCHEMA}.runs (cdp syncs)."
        )
    return _observe(rule, run, run.status in FAILED_STATUSES, summary, **counts)


def _judge_rejected(rule: Rule, run: RunRecord) -> Observation | None:
    threshold: RejectedShareOptions = rule.options
    sent, rejected = _count(run, "sent") or 0, _count(run, "rejected") or 0
    if sent < threshold.min_sent:
        return None
    share = rejected / sent
    summary = (
        f"Sync {run.sync_name}: {rejected:,} of {sent:,} records sent were rejected ({share:.1%}), "
        f"above {threshold.max_share:.1%} (run {run.run_id})."
    )
    return _observe(
        rule,
        run,
        share > threshold.max_share,
        summary,
        sent=sent,
        rejected=rejected,
        rejected_share=round(share, 4),
        max_share=threshold.max_share,
    )


def _judge_audience_change(rule: Rule, run: RunRecord) -> Observation | None:
    threshold: AudienceChangeOptions = rule.options
    held, desired = _count(run, "confirmed_before"), _count(run, "desired")
    if held is None or desired is None or held < threshold.min_held:
        return None
    change = (desired - held) / held
    summary = (
        f"Sync {run.sync_name}: the audience would go from {held:,} to {desired:,} records ({change:+.1%}), "
        f"past ±{threshold.max_change_share:.1%} (run {run.run_id}, status {run.status})."
    )
    return _observe(
        rule,
        run,
        abs(change) > threshold.max_change_share,
        summary,
        held_before=held,
        desired=desired,
        change_share=round(change, 4),
        max_change_share=threshold.max_change_share,
    )


def _judge_slow(rule: Rule, run: RunRecord) -> Observation:
    threshold: SlowRunOptions = rule.options
    summary = (
        f"Sync {run.sync_name}: run {run.run_id} took {run.seconds:,.1f} s, "
        f"longer than {threshold.max_seconds:,.0f} s (status {run.status})."
    )
    return _observe(
        rule,
        run,
        run.seconds > threshold.max_seconds,
        summary,
        seconds=round(run.seconds, 1),
        max_seconds=threshold.max_seconds,
    )


def _judge_privacy_removals(rule: Rule, run: RunRecord) -> Observation | None:
    threshold: PrivacyRemovalsOptions = rule.options
    forgotten, removed = _count(run, "forgotten") or 0, _count(run, "planned_privacy_removes")
    if removed is None and not forgotten:
        return None  # the run never planned and forgot no one: nothing to judge
    removed = removed or 0
    summary = (
        f"Sync {run.sync_name}: run {run.run_id} forgot {forgotten:,} erased people (deletion requests) and "
        f"planned {removed:,} privacy removals (consent withdrawn or suppressed); destination {run.destination}. "
        "Receipts: cdp privacy status."
    )
    return _observe(
        rule,
        run,
        forgotten + removed >= threshold.min_count,
        summary,
        forgotten=forgotten,
        privacy_removes=removed,
        min_count=threshold.min_count,
    )


_JUDGES = {
    "run_failed": _judge_failed,
    "rejected_share": _judge_rejected,
    "audience_change": _judge_audience_change,
    "slow_run": _judge_slow,
    "privacy_removals": _judge_privacy_removals,
}


def judge_segments(rules: Iterable[Rule], segments: Sequence[SegmentSize]) -> list[Observation]:
    """What every segment rule says about the segments a build left (segments.member_count).

    A segment with no minimum (min_size 0, and none in the rule) is not judged.
    """
    observations = []
    for rule in rules:
        if rule.kind != "segment_below_minimum":
            continue
        for segment in segments:
            if not rule.watches(segment.name):
                continue
            minimum = rule.options.min_size or segment.min_size
            if not minimum:
                continue
            summary = f"Segment {segment.name} has {segment.member_count:,} members, below its minimum of {minimum:,}."
            facts = (("rule", rule.name), ("segment", segment.name), ("members", segment.member_count))
            observations.append(
                Observation(
                    rule,
                    f"segment {segment.name}",
                    "",
                    segment.member_count < minimum,
                    summary,
                    (*facts, ("min_size", minimum)),
                )
            )
    return observations


def judge_failed_dagster_run(
    rules: Iterable[Rule], *, job_name: str, run_id: str, steps: Sequence[FailedStep]
) -> list[Observation]:
    """run_failed rules on a Dagster run that failed outside a sync's own verdict.

    One condition per failed step (a run that failed before any step ran counts as the
    step "run"). A rule watching named syncs sees only the steps that run one of them.
    The alert names the job, the step and the error's class — never the error's text,
    which may quote data.
    """
    observations = []
    for rule in rules:
        if rule.kind != "run_failed":
            continue
        for step in steps:
            if rule.subjects and (step.sync_name is None or step.sync_name not in rule.subjects):
                continue
            where = f"step {step.step_key}" if step.step_key != "run" else "before any step ran"
            summary = f"Dagster run {run_id} of job {job_name} failed at {where} ({step.error_class})."
            facts = (
                ("rule", rule.name),
                ("job", job_name),
                ("step", step.step_key),
                ("error_class", step.error_class),
                ("dagster_run_id", run_id),
                *((("sync", step.sync_name),) if step.sync_name else ()),
            )
            observations.append(Observation(rule, job_subject(job_name), step.step_key, True, summary, facts))
    return observations


def judge_succeeded_dagster_run(rules: Iterable[Rule], *, job_name: str, step_keys: Sequence[str]) -> list[Observation]:
    """A Dagster run that succeeded clears the failure conditions of the steps it ran."""
    return [
        Observation(rule, job_subject(job_name), step_key, False)
        for rule in rules
        if rule.kind == "run_failed"
        for step_key in [*step_keys, "run"]
    ]
