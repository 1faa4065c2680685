"""Syncs on any engine: the dialect macros give the same holdout and key hashes everywhere
(checked against Python's hashlib), the templates keep every engine-only construct behind a
macro, and a sync runs from Spark with its state in DuckDB (marked `spark`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sync_world import World, definition, people

from destinations.plan import plan_table
from destinations.sandbox.webhook import WebhookSandbox
from destinations.sql_templates import SQL_DIR, dialect_macros
from destinations.warehouse.base import bind_names, translate_binds
from destinations.warehouse.locations import DuckDBFile, Location, parse_state_url, state_store_for

#: (sync, profile_id, key): plain, unicode, empty, long, and keys that need quoting
GOLDEN = [
    ("test_sync", "p000", "person0@example.com"),
    ("test_sync", "p001", "person1@example.com"),
    ("newsletter_weekly", "0f9c2a7e-4b1d-4c55-9a39-7f0c3e2d1b8a", "Ada.Lovelace+cdp@example.co.uk"),
    ("ads", "", ""),
    ("ads", "ünïcødé-π", "zoë@exämple.de"),
    ("s", "x" * 300, "o'brien@example.com"),
    ("holdout:sync", "p:1", "+447700900123"),
] + [("bulk", f"p{i:04d}", f"p{i}@example.com") for i in range(0, 1000, 37)]


def python_bucket(sync_name: str, profile_id: str) -> int:
    """DuckDB's md5_number (the MD5 digest as an unsigned 128-bit little-endian integer) mod 100."""
    return int.from_bytes(hashlib.md5(f"{sync_name}:{profile_id}".encode()).digest(), "little") % 100


def python_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_the_portable_holdout_formula_is_the_128_bit_number_mod_100():
    """Sum of byte_i * (256^i mod 100), mod 100: what Postgres and Spark compute from the hex digest."""
    for sync_name, profile_id, _ in GOLDEN:
        digest = hashlib.md5(f"{sync_name}:{profile_id}".encode()).hexdigest()
        portable = sum(int(digest[2 * i : 2 * i + 2], 16) * (256**i % 100) for i in range(16)) % 100
        assert portable == python_bucket(sync_name, profile_id)


def _engine_values(location: Location) -> tuple[list[int], list[str]]:
    d = dialect_macros(location.engine)
    sql = f"select {d.holdout_bucket(':sync_name || :colon || :profile_id')}, {d.sha256(':key')}"
    with location.open() as warehouse:
        rows = [
            warehouse.fetch(sql, {"sync_name": s, "colon": ":", "profile_id": p, "key": k})[0] for s, p, k in GOLDEN
        ]
    return [int(row[0]) for row in rows], [row[1] for row in rows]


def test_holdout_buckets_and_key_hashes_are_hashlibs_on_every_transactional_engine(sync_engine: Location):
    buckets, hashes = _engine_values(sync_engine)
    assert buckets == [python_bucket(s, p) for s, p, _ in GOLDEN]
    assert hashes == [python_key_hash(k) for _, _, k in GOLDEN]


def test_a_missing_table_is_one_error_on_every_engine(sync_engine: Location, tmp_path: Path):
    from destinations.definitions import SyncDefinitionError
    from destinations.plan import SyncSources, check_against_warehouse
    from destinations.warehouse import MissingTableError

    with sync_engine.open() as warehouse:
        with pytest.raises(MissingTableError):
            warehouse.columns("main.no_such_table")
        with pytest.raises(SyncDefinitionError, match=r"has no main\.segments table — run `cdp build` first"):
            check_against_warehouse(warehouse, definition(), SyncSources())


def test_the_same_people_are_held_out_on_every_engine(sync_engine: Location, tmp_path: Path):
    """desired.sql's holdout, run end to end: exactly the members hashlib puts below 10."""
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        crowd = people(150)
        world.set_people(crowd)
        sync = definition(holdout_percent=10)
        result = world.run(sync, batch_size=200)
        held_out = {pid for pid in crowd if python_bucket(sync.name, pid) < 10}
        assert result.plan.excluded_holdout == len(held_out) > 0
        assert world.received() == world.desired(holdout=lambda pid: pid in held_out)


def test_a_value_two_members_share_is_withheld_where_the_destination_keeps_it_unique(
    sync_engine: Location, tmp_path: Path
):
    """desired.sql on every engine: a phone two members share leaves both payloads when the
    destination keeps phones unique (as Klaviyo does); one's own phone stays, and a destination
    without that rule gets every phone."""
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        family, own = "+16505550100", "+16505550199"
        crowd = people(3)
        world.set_people(
            {
                "p000": replace(crowd["p000"], phone=family),
                "p001": replace(crowd["p001"], phone=family),
                "p002": replace(crowd["p002"], phone=own),
            }
        )
        both = definition(identifiers={"email": "email", "phone": "phone"})
        for sync, expected in [
            (both, {"person0@example.com": family, "person1@example.com": family, "person2@example.com": own}),
            (
                replace(both, unique_identifiers=("phone",)),
                {"person0@example.com": None, "person1@example.com": None, "person2@example.com": own},
            ),
        ]:
            assert world.run(sync, dry_run=True).status == "dry_run"
            rows = world.query(f"select record_key, payload from {plan_table(sync)}")
            assert {key: json.loads(payload)["identifiers"]["phone"] for key, payload in rows} == expected


def test_a_warehouse_can_keep_its_sync_state_in_another_store(postgres_server, tmp_path: Path):
    """The Spark route without Spark: desired rows computed in a DuckDB warehouse, loaded into a
    Postgres state store (CDP_SYNC_STATE), diffed and committed there; privacy removals, holdout
    and invalid keys behave as when both are one warehouse."""
    from sync_engines import postgres_database

    with postgres_database(postgres_server) as store, WebhookSandbox() as sandbox:
        world = World(tmp_path / "data.duckdb", sandbox, state_store=store)
        crowd = people(8)
        kept = [pid for pid in crowd if python_bucket("test_sync", pid) >= 20]
        twin = next(f"dup{i}" for i in range(100) if python_bucket("test_sync", f"dup{i}") >= 20)
        crowd[twin] = replace(crowd[kept[0]], first_name="Twin")  # a key two profiles claim
        twins = {crowd[twin].email}
        world.set_people(crowd)
        first = world.run(definition(holdout_percent=20))
        held_out = {pid for pid in crowd if python_bucket("test_sync", pid) < 20}
        assert first.status == "succeeded", first.message
        assert first.plan.excluded_holdout == len(held_out) > 0 and first.plan.invalid_duplicate_key == 2
        assert world.received() == {
            key: value for key, value in world.desired(holdout=lambda pid: pid in held_out).items() if key not in twins
        }
        sent = set(world.received())
        remaining = sorted(pid for pid in crowd if crowd[pid].email not in twins and pid not in held_out)
        crowd[remaining[0]] = replace(crowd[remaining[0]], consent=False)  # leaves: privacy removal
        crowd[remaining[1]] = replace(crowd[remaining[1]], first_name="Grace")  # update
        world.set_people(crowd)
        second = world.run(definition(holdout_percent=20), force=True)
        assert (second.plan.adds, second.plan.updates, second.plan.removes) == (0, 1, 1)
        assert set(world.received()) == sent - {crowd[remaining[0]].email}
        assert set(world.state()) == set(world.received())
    assert not (tmp_path / "data.duckdb").exists() or _no_state_in(tmp_path / "data.duckdb")


def _no_state_in(path: Path) -> bool:
    """The data warehouse got no cdp_sync tables: the state lives only in the store."""
    with DuckDBFile(path).open() as warehouse:
        return not warehouse.has_table("cdp_sync", "state")


@pytest.mark.spark
def test_holdout_buckets_and_key_hashes_are_hashlibs_on_spark(tmp_path: Path):
    result = _spark_child("golden", str(tmp_path), stdin=json.dumps(GOLDEN))
    assert result["buckets"] == [python_bucket(s, p) for s, p, _ in GOLDEN]
    assert result["hashes"] == [python_key_hash(k) for _, _, k in GOLDEN]


@pytest.mark.spark
def test_a_sync_runs_from_spark_with_its_state_in_duckdb(tmp_path: Path):
    """The desired rows are computed in Spark, loaded into the DuckDB state store, diffed and
    sent there; state advances only for confirmed records, as on every engine."""
    state_file = tmp_path / "sync_state.duckdb"
    with WebhookSandbox() as sandbox:
        result = _spark_child("sync", str(tmp_path / "spark"), sandbox.url, sandbox.secret, str(state_file))
        world = World(state_file, sandbox)  # reads the state store and the sandbox; builds nothing
        held = world.received()
    assert result["first"]["status"] == "succeeded", result["first"]["message"]
    # 6 people + 1 without a key: p002 has no consent, n1 is invalid
    assert result["first"]["ops"] == [5, 0, 0] and result["first"]["confirmed"] == 5
    assert result["second"]["status"] == "succeeded", result["second"]["message"]
    assert result["second"]["ops"] == [0, 1, 1]
    expected = {f"person{i}@example.com" for i in (0, 3, 4, 5)}
    assert expected <= set(held) and held["person0@example.com"]["first_name"] == "Grace"
    assert set(world.state()) == expected
    held_out = {f"p{i:03d}" for i in (0, 2, 3, 4, 5) if python_bucket("held_out", f"p{i:03d}") < 50}
    assert result["holdout"]["excluded_holdout"] == len(held_out - {"p002"})


def _spark_child(*args: str, stdin: str | None = None) -> dict:
    from engines import engine_missing, spark_missing_reason
    from spark_sync import RESULT_MARKER

    reason = spark_missing_reason()
    if reason:
        engine_missing(reason)

    command = [sys.executable, str(Path(__file__).with_name("spark_sync.py")), *args]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=900, env=os.environ)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER))
    return json.loads(line[len(RESULT_MARKER) :])


# -- one place per construct -----------------------------------------------------------------------

#: DuckDB-only spellings the templates must leave to sql/_dialect.sql
_ENGINE_ONLY = {
    "a $name bind (binds are :name)": re.compile(r"\$[A-Za-z_]"),
    "md5_number": re.compile(r"\bmd5_number\s*\("),
    "arg_max": re.compile(r"(?<![.\w])arg_max\s*\("),
    "any_value": re.compile(r"(?<![.\w])any_value\s*\("),
    "json_object": re.compile(r"(?<![.\w])json_object\s*\("),
    "sha256": re.compile(r"(?<![.\w])sha256\s*\("),
    "regexp_full_match": re.compile(r"(?<![.\w])regexp_full_match\s*\("),
    "create or replace": re.compile(r"create\s+or\s+replace", re.IGNORECASE),
    "qualify": re.compile(r"\bqualify\b", re.IGNORECASE),
    'a "quoted" column (use d.quote)': re.compile(r'"\{\{'),
}


def test_the_templates_leave_every_engine_only_construct_to_the_dialect_macros():
    found = [
        f"{path.name}: {name}"
        for path in sorted(SQL_DIR.glob("*.sql"))
        if path.name != "_dialect.sql"
        for name, pattern in _ENGINE_ONLY.items()
        if pattern.search(path.read_text())
    ]
    assert found == []


def test_only_the_duckdb_implementation_imports_duckdb_in_the_sync_engine():
    """Type hints may name DuckDB (under TYPE_CHECKING, indented); nothing else imports it."""
    root = SQL_DIR.parent
    sync_engine = [
        root / "engine.py",
        root / "plan.py",
        root / "state.py",
        root / "sql_templates.py",
        *(root / "warehouse").glob("*.py"),
    ]
    importing = [
        str(path.relative_to(root))
        for path in sync_engine
        if path.name != "duckdb_engine.py" and re.search(r"^(import duckdb|from duckdb)", path.read_text(), re.M)
    ]
    assert importing == []


def test_named_binds_skip_literals_comments_and_casts():
    sql = "select ':not_a_bind', a::int, :value -- :nor_this\nwhere b like '%x' and c % 100 < :limit"
    assert bind_names(sql) == {"value", "limit"}
    assert translate_binds(sql, "dollar").endswith("c % 100 < $limit")
    assert "%(value)s" in translate_binds(sql, "pyformat") and "'%%x'" in translate_binds(sql, "pyformat")


def test_the_state_store_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    warehouse = DuckDBFile(tmp_path / "w.duckdb")
    monkeypatch.delenv("CDP_SYNC_STATE", raising=False)
    assert state_store_for(warehouse) is warehouse  # a transactional warehouse keeps its own state
    assert parse_state_url(f"duckdb://{tmp_path}/s.duckdb") == DuckDBFile((tmp_path / "s.duckdb").resolve())
    store = parse_state_url("postgresql://cdp:secret@db.internal:6543/cdp_state")
    assert dict(store.settings) == {
        "host": "db.internal",
        "port": 6543,
        "user": "cdp",
        "password": "secret",
        "dbname": "cdp_state",
    }
    assert "secret" not in store.describe()
    with pytest.raises(Exception, match="CDP_SYNC_STATE: unknown state store 'mysql'"):
        parse_state_url("mysql://x/y")
    monkeypatch.setenv("CDP_SYNC_STATE", f"duckdb://{tmp_path}/elsewhere.duckdb")
    assert state_store_for(warehouse) == DuckDBFile((tmp_path / "elsewhere.duckdb").resolve())


def test_spark_keeps_its_state_in_a_duckdb_file_beside_the_warehouse(monkeypatch: pytest.MonkeyPatch):
    from cdp.settings import warehouse_path
    from destinations.warehouse.locations import SparkCatalog

    monkeypatch.delenv("CDP_SYNC_STATE", raising=False)
    assert state_store_for(SparkCatalog({"method": "session"})) == DuckDBFile(
        warehouse_path().parent / "sync_state.duckdb"
    )
    monkeypatch.setenv("CDP_SYNC_STATE", "postgresql://u@h/db")
    assert state_store_for(SparkCatalog({"method": "session"})).engine == "postgres"
