"""The audience checks (destinations/audience_checks.py) as blocking Dagster asset checks.

They sit on each sync's audience asset (``audience_<sync>``, the dry run). Blocking: when one
fails, Dagster fails that step, so the send (``sync_<sync>``, downstream) does not run in the
same run, and declarative automation does not start it later
(``AutomationCondition.all_deps_blocking_checks_passed``). Other syncs do not depend on it and go on.

A paused sync still plans and is still checked, but its checks report as warnings: nothing
will be sent anyway, and a paused sync should not fail runs or raise alerts.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from destinations.audience_checks import CHECKS, AudienceCheck


def audience_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """One blocking check per audience check, on the audience asset."""
    return [
        dg.AssetCheckSpec(name=name, asset=asset_key, description=description, blocking=True)
        for name, description in CHECKS.items()
    ]


def audience_check_results(
    asset_key: dg.AssetKey, checks: Iterable[AudienceCheck], *, paused: bool
) -> list[dg.AssetCheckResult]:
    """The engine's verdicts as check results; a paused sync's failures are warnings."""
    severity = dg.AssetCheckSeverity.WARN if paused else dg.AssetCheckSeverity.ERROR
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=check.name,
            passed=check.passed,
            severity=severity,
            description=check.message,
            metadata={"message": check.message, **{k: v for k, v in check.metadata.items() if v is not None}},
        )
        for check in checks
    ]
