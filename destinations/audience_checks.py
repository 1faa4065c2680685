"""The checks that guard a sync: is this audience fit to send? Dagster-free, pure.

Each check reads the plan's counts (destinations.summary.PlanSummary), the segment's
minimum size and the sync's thresholds (destinations.definitions.SyncDefinition), and says
what a person would read: counts and names, never a key or any other personal data.

- ``keys_unique_and_not_null``: no key is claimed by two profiles (such a key is never
  sent, and the destination would hold one of them at random), and no more than
  ``max_missing_key_share`` of the audience lacks a usable key (a phone-only person in an
  email sync is normal; most of the audience without one is a broken mapping);
- ``audience_not_below_min_size``: the audience is at least the segment's ``min_size``
  (``segments.min_size``, from the segment's YAML);
- ``audience_change_within_limits``: against what the destination holds for this sync (the
  last confirmed state), the audience shrinks by at most ``max_shrink_share`` and grows by at
  most ``max_growth_share``. The first sync (nothing held yet) passes.

Dagster runs them as blocking asset checks on the sync's audience asset
(orchestration/sync_checks.py), and the send asks the engine to run them again on its own
plan (run_sync(enforce_audience_checks=True)), so a send never goes ahead on an audience
that no longer passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from destinations.definitions import SyncDefinition
from destinations.summary import PlanSummary


@dataclass(frozen=True)
class AudienceCheck:
    """One check's verdict on one planned audience."""

    name: str
    passed: bool
    #: what a person reads: counts and names, no personal data
    message: str
    #: the figures behind the verdict (counts, shares, thresholds)
    metadata: dict[str, int | float | str | None] = field(default_factory=dict)


#: every check by name, with what it guards (the Dagster check's description)
CHECKS: dict[str, str] = {
    "keys_unique_and_not_null": (
        "No key is shared by several profiles, and the share of the audience without a usable key "
        "stays within max_missing_key_share."
    ),
    "audience_not_below_min_size": "The audience is at least the segment's min_size (segments.min_size).",
    "audience_change_within_limits": (
        "Against what the destination holds for this sync, the audience shrinks by at most max_shrink_share "
        "and grows by at most max_growth_share. The first sync passes."
    ),
}

NOT_SENT = "nothing was sent"


def check_audience(sync: SyncDefinition, plan: PlanSummary, min_size: int | None) -> tuple[AudienceCheck, ...]:
    """Every check of CHECKS on one plan, in that order."""
    return (
        _keys_unique_and_not_null(sync, plan),
        _not_below_min_size(sync, plan, min_size),
        _change_within_limits(sync, plan),
    )


def failures(checks: tuple[AudienceCheck, ...]) -> str | None:
    """The failed checks' messages as one line, or None when every check passed."""
    failed = [check.message for check in checks if not check.passed]
    return "; ".join(failed) if failed else None


def _keys_unique_and_not_null(sync: SyncDefinition, plan: PlanSummary) -> AudienceCheck:
    audience = plan.eligible
    missing = plan.invalid_null_key + plan.invalid_malformed_key
    share = missing / audience if audience else 0.0
    metadata = {
        "audience": audience,
        "key": sync.key,
        "duplicate_key_profiles": plan.invalid_duplicate_key,
        "null_keys": plan.invalid_null_key,
        "malformed_keys": plan.invalid_malformed_key,
        "missing_key_share": round(share, 4),
        "max_missing_key_share": sync.max_missing_key_share,
    }
    problems = []
    if plan.invalid_duplicate_key:
        problems.append(
            f"{plan.invalid_duplicate_key:,} profiles in the audience of {audience:,} share their {sync.key} "
            "with another profile (a shared key is never sent)"
        )
    if share > sync.max_missing_key_share:
        malformed = f", {plan.invalid_malformed_key:,} malformed" if plan.invalid_malformed_key else ""
        problems.append(
            f"{missing:,} of {audience:,} profiles in the audience ({share:.0%}) have no usable {sync.key} "
            f"({plan.invalid_null_key:,} missing{malformed}), above max_missing_key_share "
            f"{sync.max_missing_key_share:.0%}"
        )
    if problems:
        return AudienceCheck("keys_unique_and_not_null", False, "; ".join(problems) + f"; {NOT_SENT}", metadata)
    return AudienceCheck(
        "keys_unique_and_not_null",
        True,
        f"every {sync.key} is unique; {missing:,} of {audience:,} ({share:.0%}) lack one, "
        f"within max_missing_key_share {sync.max_missing_key_share:.0%}",
        metadata,
    )


def _not_below_min_size(sync: SyncDefinition, plan: PlanSummary, min_size: int | None) -> AudienceCheck:
    audience = plan.desired
    metadata = {"audience": audience, "segment": sync.segment, "min_size": min_size}
    if min_size is None:
        return AudienceCheck(
            "audience_not_below_min_size", True, f"segment '{sync.segment}' sets no minimum size", metadata
        )
    if audience < min_size:
        return AudienceCheck(
            "audience_not_below_min_size",
            False,
            f"audience of {audience:,} is below the minimum size {min_size:,} of segment '{sync.segment}'; {NOT_SENT}",
            metadata,
        )
    return AudienceCheck(
        "audience_not_below_min_size",
        True,
        f"audience of {audience:,} is at least the minimum size {min_size:,} of segment '{sync.segment}'",
        metadata,
    )


def _change_within_limits(sync: SyncDefinition, plan: PlanSummary) -> AudienceCheck:
    # privacy removals (consent, deletion, suppression) never count as shrinkage: they are not held
    audience, held = plan.desired, plan.confirmed_before - plan.privacy_removes
    change = (audience - held) / held if held else 0.0
    metadata = {
        "audience": audience,
        "held": held,
        "change_share": round(change, 4),
        "max_shrink_share": sync.max_shrink_share,
        "max_growth_share": sync.max_growth_share,
    }
    name = "audience_change_within_limits"
    if not held:
        return AudienceCheck(name, True, f"first sync: '{sync.destination}' holds nothing for it yet", metadata)
    holding = f"the {held:,} records this sync holds at '{sync.destination}'"
    if -change > sync.max_shrink_share:
        return AudienceCheck(
            name,
            False,
            f"audience of {audience:,} is {-change:.0%} smaller than {holding}, beyond max_shrink_share "
            f"{sync.max_shrink_share:.0%}; {NOT_SENT}",
            metadata,
        )
    if change > sync.max_growth_share:
        return AudienceCheck(
            name,
            False,
            f"audience of {audience:,} is {change:.0%} larger than {holding}, beyond max_growth_share "
            f"{sync.max_growth_share:.0%}; {NOT_SENT}",
            metadata,
        )
    return AudienceCheck(
        name,
        True,
        f"audience of {audience:,} is within limits of {holding} ({change:+.0%})",
        metadata,
    )
