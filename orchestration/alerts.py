"""Alerts in Dagster: where the rules of alerts.yml are evaluated. Wiring only — judging,
remembering and delivering are destinations/alerts/'s.

- after each sync run, in the sync asset itself (:func:`evaluate_after_sync`): the sync's
  rules on the runs it just made; the Dagster run is tagged so the failure sensor knows
  the sync's own failure was already judged;
- ``alert_on_run_failure`` (a run-failure sensor): a Dagster run that failed outside a
  sync's own verdict — a dbt build, a sync asset raising before it recorded a run — raises
  a run_failed alert naming the job, the step and the error's class (never its text);
- ``resolve_run_failure_alerts`` (a run-success sensor): the next success of that job's
  failed step clears it (the warehouse is opened only when the job has failed lately);
- ``alert_evaluations`` (a sensor): after each new materialisation of ``segments``, the
  segment-size rules; and failures the failure sensor found the warehouse too busy to
  record (it marks them on the run), so none is lost.

Every sensor starts RUNNING on purpose: alerts only notify (with no alerts.yml they do
nothing), and a failure that reaches nobody is what they exist to prevent. A sensor never
holds the warehouse while it talks to a channel, opens it only when it has something to
record, and skips (trying again next tick) when another process is writing it.

(No `from __future__ import annotations` here: Dagster reads the sensor functions'
annotations to find their resources. destinations.alerts is imported inside the functions,
as the sync assets import the engine: importing the definitions loads no database driver.)
"""

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import dagster as dg
from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

if TYPE_CHECKING:  # imported where used: importing the definitions must not load DuckDB
    from destinations.alerts import AlertConfig, Alerter, AlertReport, FailedStep

#: run tag (one per step) saying a sync step's own alert rules judged the run it made
SYNC_ALERTS_TAG_PREFIX = "cdp/sync_alerts."
#: run tag on a failed run whose alert the failure sensor could not record yet ("pending")
FAILURE_ALERT_TAG = "cdp/failure_alert"
SYNC_ASSET_PREFIX = "sync_"
#: how long an evaluation waits for a warehouse another process is writing
BUSY_WAIT_SECONDS = 20.0
#: a success resolves failure alerts if the job failed within its last this-many successes
FAILURE_MEMORY_RUNS = 50

T = TypeVar("T")


def _alerter(config: "AlertConfig", warehouse: Path) -> "Alerter":
    from destinations.alerts import Alerter
    from destinations.warehouse.locations import sync_locations

    data, store = sync_locations(warehouse)  # CDP_TARGET and CDP_SYNC_STATE
    return Alerter(config, data, state_store=store)


def _load(alerts_file: str) -> "AlertConfig":
    from destinations.alerts import load_alerts

    return load_alerts(Path(alerts_file) if alerts_file else None)


def _waiting_for_the_warehouse(evaluate: Callable[[], T]) -> T:
    """``evaluate()``, tried again for up to BUSY_WAIT_SECONDS while another process writes the warehouse."""
    from cdp.warehouse import WarehouseBusyError

    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        try:
            return evaluate()
        except WarehouseBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def _summary(report: "AlertReport", nothing: str) -> str:
    return "; ".join(report.lines()) or nothing


# -- after a sync run (called by the sync asset) -----------------------------------------------------


def evaluate_after_sync(
    context: dg.AssetExecutionContext, sync_name: str, *, warehouse: Path, alerts_file: str, since: datetime
) -> None:
    """Judge the runs this step made of ``sync_name``; never raises (an alert problem never
    fails a sync: it is logged, and a channel that is down keeps its notice pending)."""
    from cdp.warehouse import WarehouseBusyError
    from destinations.alerts import AlertConfigError

    try:
        config = _load(alerts_file)
        if not config.enabled:
            return
        report = _waiting_for_the_warehouse(lambda: _alerter(config, warehouse).after_sync(sync_name, since))
    except AlertConfigError as error:
        context.log.error(f"alerts not evaluated: {error}")
        return
    except WarehouseBusyError:
        context.log.warning("alerts not evaluated: another process is writing the warehouse")
        return
    except Exception as error:  # an alert problem must not fail the sync; its class only (no data)
        context.log.error(f"alerts not evaluated: {type(error).__name__}")
        return
    for line in report.lines():
        (context.log.warning if "pending" in line else context.log.info)(line)
    if report.runs:
        context.instance.add_run_tags(context.run.run_id, {SYNC_ALERTS_TAG_PREFIX + context.op_def.name: "evaluated"})


# -- a Dagster run's end ------------------------------------------------------------------------------


def failed_steps(instance: dg.DagsterInstance, run: dg.DagsterRun, sync_steps: Mapping[str, str]) -> list["FailedStep"]:
    """The failed steps of ``run`` that a sync's own rules did not already judge.

    A run that failed with no failed step (it never started one) is the step "run".
    """
    from destinations.alerts import FailedStep

    judged = {key.removeprefix(SYNC_ALERTS_TAG_PREFIX) for key in run.tags if key.startswith(SYNC_ALERTS_TAG_PREFIX)}
    steps = []
    failures = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    for entry in failures:
        event = entry.dagster_event
        if event is None or event.step_key in judged:
            continue
        steps.append(
            FailedStep(event.step_key, _error_class(event.step_failure_data.error), sync_steps.get(event.step_key))
        )
    if not failures:
        run_failures = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
        error = run_failures[-1].dagster_event.event_specific_data.error if run_failures else None
        steps.append(FailedStep("run", _error_class(error)))
    return steps


def _error_class(error) -> str:
    """The user's exception class, not Dagster's wrapper around it."""
    if error is None:
        return "unknown error"
    while error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    return error.cls_name or "unknown error"


def record_run_failure(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    sync_steps: Mapping[str, str],
    *,
    warehouse: Path,
    alerts_file: str,
) -> dg.SkipReason:
    """Judge a failed run and record what it raises; if the warehouse stays busy, mark the run
    so ``alert_evaluations`` records it later. A broken alerts.yml raises (a failed tick)."""
    from cdp.warehouse import WarehouseBusyError
    from destinations.alerts import judge_failed_dagster_run

    steps = failed_steps(instance, run, sync_steps)
    if not steps:
        return dg.SkipReason("the failed steps were syncs whose own alert rules judged their runs")
    config = _load(alerts_file)
    observations = judge_failed_dagster_run(
        config.rules.values(), job_name=run.job_name, run_id=run.run_id, steps=steps
    )
    if not observations:
        return dg.SkipReason("no run_failed rule watches this run")
    try:
        report = _waiting_for_the_warehouse(lambda: _alerter(config, warehouse).record(observations))
    except WarehouseBusyError:
        instance.add_run_tags(run.run_id, {FAILURE_ALERT_TAG: "pending"})
        return dg.SkipReason("the warehouse is busy: alert_evaluations records this failure at a later tick")
    instance.add_run_tags(run.run_id, {FAILURE_ALERT_TAG: "recorded"})
    return dg.SkipReason(_summary(report, "the alert for this failure is already open: not sent again"))


def _failed_lately(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the job failed in its recent runs (only then can one of its failure alerts be open)."""
    recent = instance.get_run_records(
        filters=RunsFilter(job_name=run.job_name, statuses=[DagsterRunStatus.FAILURE]), limit=1
    )
    if not recent:
        return False
    successes = instance.get_run_records(
        filters=RunsFilter(job_name=run.job_name, statuses=[DagsterRunStatus.SUCCESS]), limit=FAILURE_MEMORY_RUNS
    )
    # failed after the oldest of the job's recent successes: a failure alert may still be open
    return len(successes) < FAILURE_MEMORY_RUNS or recent[0].create_timestamp >= successes[-1].create_timestamp


def resolve_after_success(
    instance: dg.DagsterInstance, run: dg.DagsterRun, *, warehouse: Path, alerts_file: str
) -> dg.SkipReason:
    from cdp.warehouse import WarehouseBusyError
    from destinations.alerts import judge_succeeded_dagster_run

    if not _failed_lately(instance, run):
        return dg.SkipReason("the job has not failed lately: no failure alert to resolve")
    config = _load(alerts_file)
    step_keys = sorted(
        {
            entry.dagster_event.step_key
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
            if entry.dagster_event is not None
        }
    )
    observations = judge_succeeded_dagster_run(config.rules.values(), job_name=run.job_name, step_keys=step_keys)
    if not observations:
        return dg.SkipReason("no run_failed rule")
    try:
        report = _waiting_for_the_warehouse(lambda: _alerter(config, warehouse).record(observations))
    except WarehouseBusyError:
        return dg.SkipReason("the warehouse is busy: the job's next success resolves its failure alerts")
    return dg.SkipReason(_summary(report, "no failure alert was open for this job"))


# -- after builds, and failures recorded late ---------------------------------------------------------


def evaluate_pending(
    context: dg.SensorEvaluationContext,
    segments_key: dg.AssetKey,
    sync_steps: Mapping[str, str],
    *,
    warehouse: Path,
    alerts_file: str,
) -> dg.SkipReason:
    """Segment rules after a new materialisation of ``segments``, and failures marked pending.

    The cursor moves on only once they are recorded: a busy warehouse is tried next tick.
    """
    from cdp.warehouse import WarehouseBusyError
    from destinations.alerts import judge_failed_dagster_run

    instance = context.instance
    cursor = json.loads(context.cursor) if context.cursor else {}
    latest = instance.fetch_materializations(segments_key, limit=1).records
    segments_id = latest[0].storage_id if latest else None
    new_build = segments_id is not None and segments_id != cursor.get("segments")
    pending = instance.get_runs(filters=RunsFilter(tags={FAILURE_ALERT_TAG: "pending"}), limit=20)
    if not new_build and not pending:
        return dg.SkipReason("no new build of segments and no failure waiting to be recorded")
    config = _load(alerts_file)
    alerter = _alerter(config, warehouse)
    lines: list[str] = []
    try:
        if new_build:
            lines += alerter.after_build().lines()
            cursor["segments"] = segments_id
            context.update_cursor(json.dumps(cursor))
        for run in pending:
            observations = judge_failed_dagster_run(
                config.rules.values(),
                job_name=run.job_name,
                run_id=run.run_id,
                steps=failed_steps(instance, run, sync_steps),
            )
            lines += alerter.record(observations).lines()
            instance.add_run_tags(run.run_id, {FAILURE_ALERT_TAG: "recorded"})
    except WarehouseBusyError:
        return dg.SkipReason("the warehouse is busy (another process is writing it): trying again next tick")
    return dg.SkipReason("; ".join(lines) or "evaluated: nothing new to send")


def build_alert_sensors(sync_assets: Sequence[dg.AssetsDefinition]) -> list[dg.SensorDefinition]:
    """The three alert sensors, for the sync assets given (their steps map to sync names)."""
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets
    from orchestration.sync_assets import SyncEngine  # here: sync_assets imports this module

    segments_key = get_asset_key_for_model([cdp_dbt_assets()], "segments")

    sync_steps = {
        asset.op.name: asset.key.path[-1].removeprefix(SYNC_ASSET_PREFIX)
        for asset in sync_assets
        if asset.key.path[-1].startswith(SYNC_ASSET_PREFIX)
    }

    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts (alerts.yml, run_failed rules) on a run that failed outside a sync's own verdict: "
        "a dbt build, a sync asset raising before it recorded a run. Names the job, step and error class.",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext, sync_engine: SyncEngine):
        return record_run_failure(
            context.instance,
            context.dagster_run,
            sync_steps,
            warehouse=sync_engine.warehouse_file(),
            alerts_file=sync_engine.alerts_file,
        )

    @dg.run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name="resolve_run_failure_alerts",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Resolves a job's run-failure alerts when it next succeeds (sends the 'resolved' notice).",
    )
    def resolve_run_failure_alerts(context: dg.RunStatusSensorContext, sync_engine: SyncEngine):
        return resolve_after_success(
            context.instance,
            context.dagster_run,
            warehouse=sync_engine.warehouse_file(),
            alerts_file=sync_engine.alerts_file,
        )

    @dg.sensor(
        name="alert_evaluations",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each build of `segments`: the segment_below_minimum rules of alerts.yml. Also records "
        "run failures the failure sensor found the warehouse too busy to record.",
    )
    def alert_evaluations(context: dg.SensorEvaluationContext, sync_engine: SyncEngine):
        return evaluate_pending(
            context,
            segments_key,
            sync_steps,
            warehouse=sync_engine.warehouse_file(),
            alerts_file=sync_engine.alerts_file,
        )

    return [alert_on_run_failure, resolve_run_failure_alerts, alert_evaluations]
