"""The sync engine's tables have one owner (destinations/state.py), and the run's counts
one declaration (destinations/summary.py) that the runs row, the CLI and Dagster share."""

from __future__ import annotations

import io
import re
import tomllib
from pathlib import Path

import pytest
from rich.console import Console
from sync_world import World, definition, people

from cdp.settings import REPO_ROOT
from cdp.warehouse import connect
from destinations import state
from destinations.engine import SyncRunResult
from destinations.sandbox.webhook import Fault, WebhookSandbox
from destinations.summary import OUTCOME_COUNTS, PLAN_COUNTS, PlanSummary
from destinations.warehouse.locations import Location


@pytest.fixture
def world(tmp_path: Path, sync_engine: Location):
    """A world on each engine (DuckDB, Postgres: tests/sync_engines.py)."""
    with WebhookSandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox, location=sync_engine)


@pytest.fixture
def duckdb_world(tmp_path: Path):
    """A world in a DuckDB file, for what only a DuckDB file has (the open_warehouse seam)."""
    with WebhookSandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox)


def test_the_runs_row_holds_every_count_under_its_one_name(world: World):
    world.set_people(people(5))
    world.sandbox.inject(Fault.reject(keys={"person1@example.com"}, retryable=False))
    result = world.run(definition())
    row = world.last_run()
    assert {count.name: row[count.name] for count in PLAN_COUNTS} == {
        count.name: count.of(result.plan) for count in PLAN_COUNTS
    }
    assert {count.name: row[count.name] for count in OUTCOME_COUNTS} == {
        "sent": 5,
        "confirmed": 4,
        "failed": 0,
        "rejected": 1,
    }
    assert (row["planned_adds"], row["desired"], row["segment_members"]) == (5, 5, 5)


def test_the_plan_summary_declares_each_count_once():
    counted = [name for name, spec in PlanSummary.__dataclass_fields__.items() if "name" in spec.metadata]
    assert [count.attribute for count in PLAN_COUNTS] == counted
    names = [count.name for count in PLAN_COUNTS + OUTCOME_COUNTS]
    assert len(names) == len(set(names))
    assert all(hasattr(SyncRunResult("r", "s", "x", ""), count.attribute) for count in OUTCOME_COUNTS)


def test_last_runs_and_held_counts_are_read_through_the_state_module(world: World):
    with world.open() as con:
        assert state.last_runs(con) == {} and state.held_counts(con) == {}  # no sync has run here
    world.set_people(people(4))
    world.run(definition("first_sync"))
    world.run(definition("second_sync"), dry_run=True)
    with world.open() as con:
        runs = state.last_runs(con)
        held = state.held_counts(con)
    assert set(runs) == {"first_sync", "second_sync"}
    assert runs["first_sync"].status == "succeeded" and runs["first_sync"].counts["confirmed"] == 4
    assert runs["second_sync"].status == "dry_run" and runs["second_sync"].counts["planned_adds"] == 4
    assert held == {"first_sync": 4}


def test_reset_forgets_every_sync(world: World):
    world.set_people(people(2))
    world.run(definition())
    with world.open() as con:
        state.reset(con)
        assert state.last_runs(con) == {} and state.held_counts(con) == {}
    assert world.run(definition()).plan.adds == 2  # the next run starts from empty state


def test_run_sync_uses_the_connection_it_is_given(duckdb_world: World):
    """The seam the sync benchmark uses to time statements, instead of patching the engine."""
    from destinations.engine import run_sync

    executed: list[str] = []
    closed: list[bool] = []

    class Recording:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            executed.append(sql)
            return self._con.execute(sql, *args)

        def close(self):
            closed.append(True)
            self._con.close()

        def __getattr__(self, name):
            return getattr(self._con, name)

    duckdb_world.set_people(people(3))
    result = run_sync(
        definition(),
        warehouse=duckdb_world.path,
        connect_destination=lambda _: duckdb_world.destination(),
        open_warehouse=lambda path: Recording(connect(path)),
    )
    assert result.status == "succeeded" and duckdb_world.received() == duckdb_world.desired()
    assert any("in_flight" in sql for sql in executed) and closed == [True]


def test_the_cli_table_and_the_dagster_metadata_show_every_count(world: World, dbt_manifest: Path):
    from cli.syncs import _print_result
    from orchestration.sync_assets import _metadata

    world.set_people(people(3))
    result = world.run(definition())
    out = io.StringIO()
    _print_result(Console(file=out, width=200), result)
    printed = out.getvalue()
    for count in PLAN_COUNTS + OUTCOME_COUNTS:
        assert count.label in printed, count.label
    metadata = _metadata(result, definition())
    assert {count.name for count in PLAN_COUNTS + OUTCOME_COUNTS} <= set(metadata)
    assert metadata["planned_adds"] == metadata["confirmed"] == 3
    assert metadata["summary"] == (
        "Succeeded: planned 3 adds, 0 updates, 0 removes for 3 segment members; "
        "sent 3: 3 confirmed, 0 failed, 0 rejected."
    )


def test_the_summary_line_of_a_run_carries_counts_and_names_but_no_link_or_personal_data(world: World):
    """What a person reads on a sync asset in the Dagster UI: a real run with a rejected record,
    then a run whose platform answered with a link and an email (as a processing error might)."""
    from destinations.summary import run_summary

    world.set_people(people(5))
    world.sandbox.inject(Fault.reject(keys={"person1@example.com"}, retryable=False))
    result = world.run(definition())
    assert result.status == "partial"
    summary = run_summary(result, "hook")
    assert summary == (
        "Partly sent: planned 5 adds, 0 updates, 0 removes for 5 segment members; "
        "sent 5: 4 confirmed, 0 failed, 1 rejected."
    )

    answered = SyncRunResult(
        run_id="r1",
        sync_name="lapsed_to_meta",
        status="succeeded",
        message="sent 2 of 2 planned to jane.doe@example.com; see https://business.facebook.com/adsmanager",
        plan=PlanSummary(
            segment_members=5_000,
            excluded_consent=0,
            excluded_holdout=0,
            invalid=12,
            invalid_null_key=12,
            invalid_duplicate_key=0,
            invalid_malformed_key=0,
            desired=4_988,
            confirmed_before=0,
            adds=120,
            updates=3,
            removes=4,
            unchanged=0,
            skipped_rejected=0,
        ),
        sent=127,
        confirmed=126,
        rejected=1,
        errors=["jane.doe@example.com: invalid, see https://developers.facebook.com/docs/x"],
        destination_report={
            "num_received": 127,
            "num_invalid_entries": 2,
            "processing_errors": "INVALID_FORMAT: 2 (jane.doe@example.com, +44 20 7946 0958), see www.facebook.com/help",
        },
    )
    summary = run_summary(answered, "meta_ads")
    assert summary.startswith(
        "Succeeded: planned 120 adds, 3 updates, 4 removes for 5,000 segment members (12 invalid, not sent); "
        "sent 127: 126 confirmed, 0 failed, 1 rejected; meta_ads reports num_received 127, num_invalid_entries 2, "
        "processing_errors INVALID_FORMAT: 2 ("
    ), summary
    for leak in ("http", "www.", "facebook.com", "jane", "@", "7946", "person1", "Ada", "Lovelace"):
        assert leak not in summary, f"{leak!r} in the summary: {summary}"


#: a SQL statement that names the engine's schema
_STATEMENT_ON_SCHEMA = re.compile(
    rf"\b(from|into|update|join|table|schema)\s+(if\s+(not\s+)?exists\s+)?{state.STATE_SCHEMA}\b", re.IGNORECASE
)


def test_only_the_state_module_writes_sql_against_the_engine_schema():
    """One owner: no other module of the product spells out a statement on cdp_sync (it
    asks destinations.state, or renders the schema name it gets from there)."""
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    modules = [path for pattern in packages["include"] for path in REPO_ROOT.glob(f"{pattern.rstrip('*')}/**/*.py")]
    assert any(path.name == "engine.py" for path in modules)
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in modules
        if path != REPO_ROOT / "destinations" / "state.py" and _STATEMENT_ON_SCHEMA.search(path.read_text())
    ]
    assert offenders == []
    for sql in (REPO_ROOT / "destinations" / "sql").glob("*.sql"):
        assert not _STATEMENT_ON_SCHEMA.search(sql.read_text()), f"{sql.name}: render {{{{ schema }}}} instead"


def test_the_state_table_is_indexed_by_key_on_postgres_only(sync_engine: Location):
    """DuckDB's semi-join deletes never use an ART index, yet every window commit that removes
    keys paid to maintain one (removals ran at 0.4x the connector's speed): an index an older
    release created is dropped; Postgres keeps its index (its deletes and lookups use it)."""
    store = sync_engine.open()
    try:
        if store.dialect == "duckdb":
            store.execute(f"create schema if not exists {state.STATE_SCHEMA}")
            store.execute(f"create table {state.STATE_SCHEMA}.state (sync_name varchar, record_key varchar)")
            store.execute(f"create index state_record_key on {state.STATE_SCHEMA}.state (record_key)")
            state.ensure_tables(store)
            state.ensure_tables(store)  # and again, with nothing left to drop
            indexes = store.fetch(
                "select index_name from duckdb_indexes() where schema_name = :schema and table_name = 'state'",
                {"schema": state.STATE_SCHEMA},
            )
            assert indexes == []
        else:
            state.ensure_tables(store)
            indexes = store.fetch(
                "select indexname from pg_indexes where schemaname = :schema and tablename = 'state'",
                {"schema": state.STATE_SCHEMA},
            )
            assert indexes == [("state_record_key",)]
    finally:
        store.close()
