"""Alerts a person sees: rules named in alerts.yml, judged after each sync run, after each
build and when a Dagster run ends, sent to Slack-compatible and generic webhooks once per
condition (no Dagster import here; orchestration/alerts.py and `cdp sync` call it).

- :mod:`destinations.alerts.config`: the file (channels, rules), its errors;
- :mod:`destinations.alerts.rules`: the rule kinds and how each judges a run or a segment;
- :mod:`destinations.alerts.channels`: Slack and signed-webhook delivery;
- :mod:`destinations.alerts.alerter`: once per condition, pending until delivered — its state
  in the warehouse through destinations/state.py (``cdp_sync.alerts``, ``alert_deliveries``).
"""

from __future__ import annotations

from destinations.alerts.alerter import Alerter, AlertReport, utc_now
from destinations.alerts.config import ALERTS_ENV_VAR, AlertConfig, AlertConfigError, alerts_file, load_alerts
from destinations.alerts.rules import (
    RULE_KINDS,
    FailedStep,
    Observation,
    Rule,
    judge_failed_dagster_run,
    judge_succeeded_dagster_run,
)

__all__ = [
    "ALERTS_ENV_VAR",
    "RULE_KINDS",
    "AlertConfig",
    "AlertConfigError",
    "AlertReport",
    "Alerter",
    "FailedStep",
    "Observation",
    "Rule",
    "alerts_file",
    "judge_failed_dagster_run",
    "judge_succeeded_dagster_run",
    "load_alerts",
    "utc_now",
]
