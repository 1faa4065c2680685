"""Alerts in Dagster, against real runs on an ephemeral instance: the run-failure sensor alerts
once on a run that failed outside a sync's own verdict (and never on what a sync already
judged), the next success resolves it, a failure's text never reaches a receiver, segment
rules follow builds of `segments`, and a busy warehouse is tried again at the next tick."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from alert_receivers import Receivers

from cdp.warehouse import connect
from destinations.sandbox.faults import Fault
from destinations.sandbox.webhook import WebhookSandbox

SYNC = "champions_to_webhook"


@pytest.fixture
def receivers():
    with Receivers() as both:
        yield both


@pytest.fixture
def warehouse(built_warehouse: Path, tmp_path: Path) -> Path:
    path = tmp_path / "dagster_alerts.duckdb"
    shutil.copy(built_warehouse, path)
    return path


@pytest.fixture
def demo_destination(monkeypatch: pytest.MonkeyPatch):
    """destinations.yml's demo_webhook, served by a sandbox."""
    with WebhookSandbox() as sandbox:
        monkeypatch.setenv("CDP_SANDBOX_URL", sandbox.origin)
        monkeypatch.setenv("CDP_DEMO_WEBHOOK_SECRET", sandbox.secret)
        yield sandbox


@pytest.fixture
def alerts(receivers: Receivers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An alerts.yml with a run_failed and a segment rule, its secrets in the environment."""
    for name, value in receivers.env().items():
        monkeypatch.setenv(name, value)
    return receivers.write(
        tmp_path / "alerts.yml",
        "failed:\n  kind: run_failed\nsmall:\n  kind: segment_below_minimum\n  segments: [rfm_champions]",
    )


def _sync_assets():
    from orchestration.sync_assets import build_sync_definitions

    assets, _ = build_sync_definitions()
    return assets


def _sensors(assets) -> dict[str, dg.SensorDefinition]:
    from orchestration.alerts import build_alert_sensors

    return {sensor.name: sensor for sensor in build_alert_sensors(assets)}


def _materialize(assets, engine, instance: dg.DagsterInstance, *, key: str = f"sync_{SYNC}"):
    selected = [asset for asset in assets if asset.key == dg.AssetKey(key)] if key else assets
    return dg.materialize(selected, resources={"sync_engine": engine}, instance=instance, raise_on_error=False)


def _on_run_end(sensor: dg.SensorDefinition, result, instance: dg.DagsterInstance, engine):
    """Evaluate a run-status sensor on a finished run, as the daemon would."""
    event = result.get_run_failure_event() if not result.success else result.get_run_success_event()
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"sync_engine": engine},
    )
    return sensor(context)


def test_the_alert_sensors_are_loaded_and_running_by_default(dbt_manifest):
    from orchestration.definitions import defs

    loaded = defs()
    for name in ("alert_on_run_failure", "resolve_run_failure_alerts", "alert_evaluations"):
        assert loaded.get_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING, name


def test_a_sync_asset_raising_before_its_run_alerts_once_and_its_next_success_resolves_it(
    dbt_manifest, warehouse: Path, demo_destination, alerts: Path, receivers: Receivers, tmp_path: Path
):
    from orchestration.sync_assets import SyncEngine

    assets = _sync_assets()
    sensors = _sensors(assets)
    instance = dg.DagsterInstance.ephemeral()
    # destinations.yml is missing: the asset raises before run_sync records anything
    broken = SyncEngine(warehouse=str(warehouse), alerts_file=str(alerts), destinations_file=str(tmp_path / "none.yml"))
    for attempt in (1, 2):
        failed = _materialize(assets, broken, instance)
        assert not failed.success
        verdict = _on_run_end(sensors["alert_on_run_failure"], failed, instance, broken)
        assert ("alert opened" in verdict.skip_message) == (attempt == 1), verdict.skip_message
    job = failed.dagster_run.job_name
    assert receivers.notices() == [("alert.fired", "failed", f"job {job}")]
    facts = receivers.hooks.alerts[0]["alert"]["facts"]
    assert facts["step"] == f"sync_{SYNC}" and facts["sync"] == SYNC
    assert facts["error_class"] == "DestinationConfigError" and facts["job"] == job
    assert facts["dagster_run_id"] == instance.get_runs(limit=2)[1].run_id  # the run that opened it
    assert len(receivers.slack_texts("failed")) == 1

    working = SyncEngine(warehouse=str(warehouse), alerts_file=str(alerts))
    succeeded = _materialize(assets, working, instance)
    assert succeeded.success and demo_destination.state
    verdict = _on_run_end(sensors["resolve_run_failure_alerts"], succeeded, instance, working)
    assert "alert resolved" in verdict.skip_message, verdict.skip_message
    assert [kind for kind, _, _ in receivers.notices()] == ["alert.fired", "alert.resolved"]


def test_a_sync_that_fails_in_its_own_run_alerts_once_from_the_asset_not_again_from_the_sensor(
    dbt_manifest, warehouse: Path, demo_destination, alerts: Path, receivers: Receivers
):
    from orchestration.sync_assets import SyncEngine

    assets = _sync_assets()
    instance = dg.DagsterInstance.ephemeral()
    engine = SyncEngine(warehouse=str(warehouse), alerts_file=str(alerts))
    demo_destination.inject(*[Fault.status(503)] * 20)  # the destination is down for the whole run
    failed = _materialize(assets, engine, instance)
    assert not failed.success
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select status from cdp_sync.runs").fetchall() == [("failed",)]
    assert receivers.notices() == [("alert.fired", "failed", f"sync {SYNC}")]  # from the asset itself
    verdict = _on_run_end(_sensors(assets)["alert_on_run_failure"], failed, instance, engine)
    assert "judged their runs" in verdict.skip_message
    assert len(receivers.notices()) == 1 and len(receivers.slack_texts()) == 1


def test_a_failure_whose_message_holds_personal_data_alerts_with_its_class_only(
    alerts: Path, receivers: Receivers, tmp_path: Path
):
    from orchestration.sync_assets import SyncEngine

    @dg.asset(name="load_crm_extract")
    def load_crm_extract() -> None:
        raise ValueError("row 17: ada.lovelace@example.com, +44 20 7946 0958, Ada Lovelace, 12 Analytical Row")

    instance = dg.DagsterInstance.ephemeral()
    engine = SyncEngine(warehouse=str(tmp_path / "w.duckdb"), alerts_file=str(alerts))
    failed = dg.materialize([load_crm_extract], instance=instance, raise_on_error=False)
    verdict = _on_run_end(_sensors([])["alert_on_run_failure"], failed, instance, engine)
    assert "alert opened" in verdict.skip_message
    (payload,) = receivers.hooks.alerts
    assert payload["alert"]["facts"]["error_class"] == "ValueError"
    assert payload["alert"]["facts"]["step"] == "load_crm_extract"
    received = receivers.everything()
    for personal in ("@", "7946", "Lovelace", "Analytical", "row 17"):
        assert personal not in received, personal


@contextmanager
def _holding(path: Path) -> Iterator[None]:
    """Another process writing the warehouse (it holds DuckDB's file lock) until the block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_segment_rules_follow_builds_and_a_busy_warehouse_is_tried_at_the_next_tick(
    dbt_manifest, warehouse: Path, alerts: Path, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
):
    from dagster_dbt import get_asset_key_for_model

    import orchestration.alerts
    from orchestration.dbt_assets import cdp_dbt_assets
    from orchestration.sync_assets import SyncEngine

    monkeypatch.setattr(orchestration.alerts, "BUSY_WAIT_SECONDS", 0.5)
    sensors = _sensors([])
    instance = dg.DagsterInstance.ephemeral()
    engine = SyncEngine(warehouse=str(warehouse), alerts_file=str(alerts))
    segments = get_asset_key_for_model([cdp_dbt_assets()], "segments")

    def tick(cursor: str | None) -> tuple[str, str | None]:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"sync_engine": engine})
        verdict = sensors["alert_evaluations"](context)
        return verdict.skip_message, context.cursor

    message, cursor = tick(None)
    assert "no new build" in message
    with connect(warehouse) as con:  # the build left rfm_champions with one member (minimum 10)
        con.execute("delete from segment_registry_members where segment_name = 'rfm_champions'")
        con.execute("insert into segment_registry_members values ('rfm_champions', 'rfm_champions', 'p_x')")
    instance.report_runless_asset_event(dg.AssetMaterialization(segments))
    with _holding(warehouse):
        message, busy_cursor = tick(cursor)
        assert "busy" in message and busy_cursor == cursor  # nothing recorded, the cursor stays
        # meanwhile a run fails: the failure sensor cannot record it either, and marks the run
        failed = dg.materialize([_failing_asset()], instance=instance, raise_on_error=False)
        verdict = _on_run_end(sensors["alert_on_run_failure"], failed, instance, engine)
        assert "alert_evaluations records this failure" in verdict.skip_message
    assert receivers.notices() == []
    message, cursor = tick(busy_cursor)  # the next tick, the warehouse free again
    assert "alert opened: small on segment rfm_champions" in message
    assert "alert opened: failed on job" in message
    assert sorted(rule for _, rule, _ in receivers.notices()) == ["failed", "small"]
    message, _ = tick(cursor)
    assert "no new build" in message  # both handled: nothing repeats


def _failing_asset() -> dg.AssetsDefinition:
    @dg.asset(name="nightly_extract")
    def nightly_extract() -> None:
        raise RuntimeError("extract failed")

    return nightly_extract
