"""One writer at a time: two Dagster runs that both write the warehouse, started together in two
processes against one real Dagster instance (a copy of dagster_home/dagster.yaml), queue in the
`duckdb_warehouse` pool — the second waits for the first instead of failing on DuckDB's file
lock — and both succeed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from cdp.settings import REPO_ROOT, WAREHOUSE_ENV_VAR
from destinations.sandbox.faults import Fault
from destinations.sandbox.webhook import WebhookSandbox
from orchestration.dbt_assets import WAREHOUSE_POOL

SYNCS = ("sync_champions_to_webhook", "sync_churn_risk_to_webhook")
#: the first delivery is answered this late, so the first run holds the pool's one slot that long
FIRST_ANSWER_SECONDS = 10


def _step_window(instance: dg.DagsterInstance, run_id: str, step_key: str) -> tuple[float, float]:
    """When the step started and when it succeeded, from the instance's event log."""
    events = [entry for entry in instance.all_logs(run_id) if entry.dagster_event and entry.step_key == step_key]
    started = min(e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.STEP_START)
    ended = max(e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS)
    return started, ended


def _wait_for_step_start(dagster_home: Path, step_key: str, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until the instance records the step's start (it then holds its pool slot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-4000:]
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
        try:
            for run in instance.get_runs():
                if any(
                    entry.dagster_event
                    and entry.step_key == step_key
                    and entry.dagster_event.event_type == dg.DagsterEventType.STEP_START
                    for entry in instance.all_logs(run.run_id)
                ):
                    return
        finally:
            instance.dispose()
        time.sleep(0.5)
    raise AssertionError(f"{step_key} did not start within {timeout:.0f}s")


@pytest.mark.slow
def test_two_runs_that_write_the_warehouse_queue_in_the_pool(dbt_manifest, built_warehouse: Path, tmp_path: Path):
    warehouse = tmp_path / "pool.duckdb"
    shutil.copy(built_warehouse, warehouse)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    dagster = Path(sys.executable).with_name("dagster")
    # create the instance's storage once, as a deployment's first start does: two processes
    # opening a fresh SQLite home at the same moment race to create its tables
    dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))).dispose()

    with WebhookSandbox() as sandbox:
        sandbox.inject(Fault.timeout(FIRST_ANSWER_SECONDS))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            WAREHOUSE_ENV_VAR: str(warehouse),
            "CDP_SANDBOX_URL": sandbox.origin,
            "CDP_DEMO_WEBHOOK_SECRET": sandbox.secret,
        }

        def materialize(sync: str) -> subprocess.Popen:
            return subprocess.Popen(
                [str(dagster), "asset", "materialize", "-m", "orchestration.definitions", "--select", sync],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )

        # The second run starts once the first one's step holds the pool's slot: the pool must
        # make it wait. (Two first claims in the same instant can both win on the SQLite
        # instance storage under load, which is why README puts production on Postgres.)
        runs = [materialize(SYNCS[0])]
        _wait_for_step_start(dagster_home, SYNCS[0], runs[0])
        runs.append(materialize(SYNCS[1]))
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output[-4000:]
        assert sandbox.state, "both syncs sent their audiences"

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
    records = instance.get_runs()
    assert len(records) == 2 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in records)
    assert sorted(key.to_user_string() for run in records for key in run.asset_selection) == sorted(SYNCS)
    windows = sorted(
        (_step_window(instance, run.run_id, next(iter(run.asset_selection)).to_user_string()), run.run_id)
        for run in records
    )
    ((first_start, first_end), _), ((second_start, _), second_run) = windows
    assert first_end <= second_start, "the two warehouse writers overlapped"
    assert first_end - first_start >= FIRST_ANSWER_SECONDS - 1
    blocked = [
        entry.message
        for entry in instance.all_logs(second_run)
        if entry.dagster_event and entry.dagster_event.event_type == dg.DagsterEventType.ENGINE_EVENT
    ]
    assert any(f"blocked by limit for pool {WAREHOUSE_POOL}" in message for message in blocked), blocked
