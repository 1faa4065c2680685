"""The engine commits per window of batches, beside the sending (destinations/engine.py), and
bounds the memory of the DuckDB connections a sync opens (destinations/warehouse/duckdb_engine.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from sync_world import Person, World, definition, people

from cdp.settings import REPO_ROOT
from destinations import engine
from destinations.sandbox.webhook import Fault, WebhookSandbox
from destinations.warehouse import WarehouseError
from destinations.warehouse.arrow import int64_column, string_column
from destinations.warehouse.locations import DuckDBFile, Location


@pytest.fixture
def world(tmp_path: Path, sync_engine: Location):
    """A world on each engine (DuckDB, Postgres: tests/sync_engines.py)."""
    with WebhookSandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox, location=sync_engine)


def test_an_outage_leaves_in_flight_only_what_was_sent(world: World, monkeypatch: pytest.MonkeyPatch):
    """One batch a window: while batch 2 is sent, the background job marks batch 3 in flight;
    batch 2 meets an outage, so batch 3 is never sent and must not stay in doubt."""
    monkeypatch.setattr(engine, "COMMIT_RECORDS", 3)
    world.set_people(people(9))
    for attempt in (2, 3, 4):  # batch 2's try and both retries
        world.sandbox.inject_at(attempt, Fault.status(503))
    failed = world.run(definition())
    assert failed.status == "failed" and failed.confirmed == 3 and failed.failed == 3
    in_flight = {row[0] for row in world.query("select record_key from cdp_sync.in_flight")}
    assert len(in_flight) == 3 and not in_flight & set(world.state())
    recovered = world.run(definition())
    assert recovered.status == "succeeded" and recovered.plan.adds == 6
    assert world.received() == world.desired() and set(world.state()) == set(world.desired())
    assert world.query("select count(*) from cdp_sync.in_flight") == [(0,)]


def test_a_crash_in_a_later_window_keeps_the_windows_before(world: World, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine, "COMMIT_RECORDS", 3)
    world.set_people(people(9))

    def crash(batch_number: int) -> None:
        if batch_number == 3:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        world.run(definition(), after_send=crash)
    assert len(world.state()) == 6 and len(world.received()) == 9
    recovered = world.run(definition())
    assert recovered.status == "succeeded" and recovered.plan.adds == 3
    assert world.sandbox.duplicate_deliveries == 1
    assert set(world.state()) == set(world.received()) == set(world.desired())


def test_a_window_of_mixed_changes_reaches_the_receiver_exactly(world: World, monkeypatch: pytest.MonkeyPatch):
    """A window's payloads are read in one go (destinations/plan.py: one JSON array, not a parse per
    row): field values that look like JSON punctuation, escapes, accents, an empty field and removals
    between the upserts still reach the receiver as they were, each with its own record."""
    monkeypatch.setattr(engine, "COMMIT_RECORDS", 4)
    awkward = ['Ada", "x": 1}', "O'Brien, [Jr.]", "},{", "back\\slash", "Zoë 🙂", None, "", r"\u0041"]
    crowd = people(12)
    world.set_people(crowd)
    assert world.run(definition()).status == "succeeded"
    for index, name in enumerate(awkward):
        pid = f"p{index:03d}"
        crowd[pid] = replace(crowd[pid], first_name=name, lifetime_value=index + 0.25)
    crowd["p008"] = replace(crowd["p008"], in_segment=False)
    crowd["p010"] = replace(crowd["p010"], in_segment=False)
    crowd["p100"] = Person(email="new@example.com", first_name='"quoted"')
    world.set_people(crowd)
    second = world.run(definition())
    assert second.status == "succeeded", second.message
    assert (second.plan.adds, second.plan.updates, second.plan.removes) == (1, 8, 2)
    assert world.received() == world.desired()
    assert world.received()["person0@example.com"]["first_name"] == 'Ada", "x": 1}'
    assert world.received()["person5@example.com"]["first_name"] is None


#: for a sync in a fresh interpreter: a hand-made warehouse at argv[1] (made when missing; 50 people, one
#: erasure on record) and a webhook sync of them
_A_WAREHOUSE_AND_A_SYNC = """
import json, sys
from pathlib import Path
import duckdb
from destinations.config import DestinationConfig
from destinations.definitions import parse_sync_definition
from destinations.engine import run_sync
from destinations.sandbox.webhook import WebhookSandbox
from destinations.webhook import WebhookDestination

path = Path(sys.argv[1])
with duckdb.connect(str(path)) as con:
  if not con.execute("select count(*) from duckdb_tables() where table_name = 'segments'").fetchone()[0]:
      con.execute("create table main.segments as select 'everyone' as segment_name")
      con.execute(\"\"\"create table main.sync_profile_fields as select 'p' || i as profile_id,
          'person' || i || '@example.com' as email, 'Ada' as first_name, true as has_email_marketing_consent,
          false as is_deletion_requested from range(50) as t(i)\"\"\")
      con.execute("create table main.segment_membership as select 'everyone' as segment_name, profile_id "
                  "from main.sync_profile_fields")
      con.execute("create table main.privacy_erasures as select 'r1' as request_id, 'p999' as profile_id, "
                  "timestamp '2026-01-01' as requested_at")
spec = {"segment": "everyone", "destination": "hook", "mode": "mirror", "key": "email",
        "identifiers": {"email": "email"}, "fields": {"first_name": "first_name"},
        "consent_purpose": "email_marketing"}
sync = parse_sync_definition({"name": "fresh", "depends_on": {"nodes": []}}, spec,
                             {"hook": DestinationConfig("hook", "webhook", {})})
"""

#: two runs (adds, then removals) with a webhook receiver; prints whether anything imported pandas on the way
_SYNC_IN_A_FRESH_PROCESS = (
    _A_WAREHOUSE_AND_A_SYNC
    + """
statuses = []
with WebhookSandbox() as sandbox:
    connect = lambda _: WebhookDestination("hook", sandbox.url, sandbox.secret, sync_name="fresh", batch_size=7)
    statuses.append(run_sync(sync, warehouse=path, connect_destination=connect).status)
    with duckdb.connect(str(path)) as con:
        con.execute("delete from main.segment_membership")
    statuses.append(run_sync(sync, warehouse=path, connect_destination=connect, force=True).status)
print(json.dumps({"statuses": statuses, "pandas": "pandas" in sys.modules}))
"""
)


def test_a_sync_run_never_imports_pandas(tmp_path: Path):
    """pyarrow imports pandas the first time it converts a Python list (a third of a second or more,
    paid by every CLI run and Dagster step); the relations a run builds in Python are made without it
    (destinations/warehouse/arrow.py)."""
    done = subprocess.run(
        [sys.executable, "-c", _SYNC_IN_A_FRESH_PROCESS, str(tmp_path / "warehouse.duckdb")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"statuses": ["succeeded", "succeeded"], "pandas": False}


#: a run to the receiver at argv[2] (secret argv[3]) in windows of 5 records; with argv[4] == "kill", the
#: process kills itself after batch 5 is sent: no close, so no checkpoint, and no Python clean-up
_RUN_KILLED_AFTER_BATCH_5 = (
    _A_WAREHOUSE_AND_A_SYNC
    + """
import os, signal
from destinations import engine
engine.COMMIT_RECORDS = 5
url, secret, kill = sys.argv[2], sys.argv[3], sys.argv[4] == "kill"
def after_send(batch_number):
    if kill and batch_number == 5:
        os.kill(os.getpid(), signal.SIGKILL)
connect = lambda _: WebhookDestination("hook", url, secret, sync_name="fresh", batch_size=5)
print(json.dumps({"status": run_sync(sync, warehouse=path, connect_destination=connect, after_send=after_send).status}))
"""
)


def test_a_sync_process_killed_mid_run_keeps_what_it_committed_and_the_next_run_converges(tmp_path: Path):
    """A sync's commits stay in DuckDB's write-ahead log until 64 MB of it (SYNC_CHECKPOINT_THRESHOLD):
    a process killed mid-run (SIGKILL: no close, no checkpoint) leaves its confirmed windows in the log,
    the next open replays them, and the next run sends only what was not confirmed."""
    path = tmp_path / "warehouse.duckdb"
    with WebhookSandbox() as sandbox:

        def run(mode: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-c", _RUN_KILLED_AFTER_BATCH_5, str(path), sandbox.url, sandbox.secret, mode],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO_ROOT,
            )

        killed = run("kill")
        assert killed.returncode == -9, killed.stderr[-2000:]
        assert path.with_name(path.name + ".wal").stat().st_size > 0, "the confirmed windows are only in the log"
        assert len(sandbox.state) == 25
        with DuckDBFile(path).open() as warehouse:
            (confirmed,) = warehouse.fetch("select count(*) from cdp_sync.state")[0]
        # windows 1 to 3 committed; window 4's outcomes were being committed beside batch 5's send (at
        # most two windows of confirmations are lost: engine._send_all), and a kill mid-commit loses it whole
        assert confirmed in (15, 20)

        resumed = run("resume")
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert json.loads(resumed.stdout.splitlines()[-1]) == {"status": "succeeded"}
        # the unconfirmed sent batches go again with their webhook ids, and are applied once
        assert len(sandbox.state) == 50 and sandbox.applied == 50
        assert sandbox.duplicate_deliveries == (25 - confirmed) // 5
        with DuckDBFile(path).open() as warehouse:
            assert warehouse.fetch("select count(*) from cdp_sync.state") == [(50,)]


@pytest.mark.parametrize(
    "values",
    [[], ["a"], [None], ["a", None, "Zoë 🙂", "", None, "xyz"], [None] * 9 + ["z"], ["q"] * 17, ["", ""]],
)
def test_arrow_string_columns_hold_what_they_were_given(values: list[str | None]):
    column = string_column(values)
    column.validate(full=True)
    assert column.type == pa.string() and column.to_pylist() == values
    assert column.null_count == values.count(None)


def test_arrow_int64_columns_hold_what_they_were_given():
    assert int64_column([1, -2, 2**62]).to_pylist() == [1, -2, 2**62]
    assert int64_column([]).to_pylist() == [] and int64_column([5]).type == pa.int64()


def test_a_sync_connection_has_the_memory_limit_and_checkpoint_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "warehouse.duckdb"
    settings = "select current_setting('memory_limit'), current_setting('checkpoint_threshold')"
    with DuckDBFile(path).open() as warehouse:
        assert warehouse.fetch(settings) == [("953.6 MiB", "61.0 MiB")]
    monkeypatch.setenv("CDP_SYNC_DUCKDB_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("CDP_SYNC_DUCKDB_CHECKPOINT_THRESHOLD", "8MB")
    monkeypatch.setenv("CDP_SYNC_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    with DuckDBFile(path).open() as warehouse:
        assert warehouse.fetch(settings) == [("488.2 MiB", "7.6 MiB")]
        assert warehouse.fetch("select current_setting('temp_directory')") == [(str(tmp_path / "spill"),)]


def test_a_sync_commit_checkpoints_only_past_the_sync_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Windows of 10,000 logged rows (a sync's commits; smaller than a row group, so they go to the
    write-ahead log) stay in the log past DuckDB's own 16 MB under the sync's threshold, and are
    checkpointed into the file when the connection closes."""

    def log_windows(warehouse, table: str) -> None:
        warehouse.execute(f"create table {table} (seq bigint, key_sha256 varchar, change_id varchar)")
        for first in range(0, 300_000, 10_000):
            warehouse.execute(
                f"insert into {table} select range, sha256(range::varchar), md5(range::varchar)"
                f" from range({first}, {first + 10_000})"
            )

    path = tmp_path / "warehouse.duckdb"
    wal = path.with_name(path.name + ".wal")
    with DuckDBFile(path).open() as warehouse:
        log_windows(warehouse, "logged")
        assert wal.stat().st_size > 16 * 2**20
    assert not wal.exists()
    monkeypatch.setenv("CDP_SYNC_DUCKDB_CHECKPOINT_THRESHOLD", "")  # DuckDB's own default: 16 MB
    with DuckDBFile(path).open() as warehouse:
        log_windows(warehouse, "logged_again")
        assert not wal.exists() or wal.stat().st_size < 16 * 2**20


@pytest.mark.parametrize("variable", ["CDP_SYNC_DUCKDB_MEMORY_LIMIT", "CDP_SYNC_DUCKDB_CHECKPOINT_THRESHOLD"])
def test_a_bad_sync_setting_is_an_error_that_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
):
    monkeypatch.setenv(variable, "lots")
    with pytest.raises(WarehouseError, match=f"{variable}='lots' is not a valid DuckDB"):
        DuckDBFile(tmp_path / "warehouse.duckdb").open()
