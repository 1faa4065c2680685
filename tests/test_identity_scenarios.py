"""Identity resolution's hard cases, on hand-built worlds, through a real `dbt build`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from identity_scenarios import (
    CHAIN_RECORDS,
    blocklisted_email,
    chain_of_records,
    email_change,
    merge_worlds,
    shared_device,
    two_strangers_later_linked,
)
from raw_data import write_raw

from cdp.dbt import run_dbt
from cdp.warehouse import connect

IDENTITY_MODELS = "+profiles +profile_identifiers +profile_merges +profile_id_registry +identity_guard_decisions"


#: Runs identity's connected components with the portable SQL fixpoint on DuckDB too (dbt_project.yml).
COMPONENTS_IN_SQL = ["--vars", "{identity_components_in_sql: true}"]


def build(path: Path, extra_args: list[str] | None = None) -> None:
    # cautious: leave out tests of downstream models (attributes, scores) this world does not build
    run_dbt(
        ["build", "--select", IDENTITY_MODELS, "--indirect-selection", "cautious", *(extra_args or [])],
        warehouse=path,
        echo=False,
    )


def rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def profile_of(path: Path, identifier_type: str, value: str) -> str | None:
    found = rows(
        path,
        "select profile_id from profile_identifiers where identifier_type = ? and identifier_value = ?",
        [identifier_type, value],
    )
    assert len(found) <= 1, f"{identifier_type} {value} is in {len(found)} profiles"
    return found[0][0] if found else None


def build_world(path: Path, extra_args: list[str] | None = None) -> dict:
    """One warehouse holding every scenario, built once; then rebuilt unchanged. (The tests add
    a sign-in that links two existing profiles: ``after_extra``.)"""
    before, after_extra = two_strangers_later_linked()
    base = merge_worlds(chain_of_records(), shared_device(), blocklisted_email(), email_change(), before)
    write_raw(path, base)
    build(path, extra_args)
    first = dict(rows(path, "select identifier_type || ':' || identifier_value, profile_id from profile_identifiers"))
    first_merges = rows(path, "select * from profile_merges")
    build(path, extra_args)
    second = dict(rows(path, "select identifier_type || ':' || identifier_value, profile_id from profile_identifiers"))
    return {
        "path": path,
        "first": first,
        "second": second,
        "first_merges": first_merges,
        "after_extra": after_extra,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every scenario, built as `cdp build` builds it on DuckDB (connected components in memory)."""
    return build_world(tmp_path_factory.mktemp("identity") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def sql_world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same scenarios with the portable SQL fixpoint (what Postgres and Spark run)."""
    return build_world(tmp_path_factory.mktemp("identity_sql") / "warehouse.duckdb", COMPONENTS_IN_SQL)


def test_chain_of_records_resolves_to_one_profile(world):
    path = world["path"]
    profiles = rows(
        path,
        "select count(distinct profile_id), count(*) from profile_identifiers "
        "where identifier_value ilike '%chain%' and identifier_type in ('email', 'customer_id')",
    )
    assert profiles == [(1, CHAIN_RECORDS + 1)]


def test_chain_converges_in_logarithmic_passes(sql_world):
    (passes,) = rows(sql_world["path"], "select passes from intermediate.int_identity__strong__passes")[0]
    # one pass per link would be 60; hooking + pointer jumping needs about log2(61) ≈ 6
    assert passes <= 2 * math.ceil(math.log2(CHAIN_RECORDS + 1)) + 1, passes


def test_shared_device_does_not_merge_two_people(world):
    path = world["path"]
    alice = profile_of(path, "customer_id", "SD-1")
    bob = profile_of(path, "customer_id", "SD-2")
    assert alice and bob and alice != bob
    # the tablet links nobody, and the analyst can see why
    assert profile_of(path, "anonymous_id", "tablet-1") is None
    decision = rows(
        path,
        "select people, max_people, is_shared from identity_guard_decisions "
        "where identifier_type = 'anonymous_id' and identifier_value = 'tablet-1'",
    )
    assert decision == [(2, 1, True)]


def test_blocklisted_email_merges_nobody(world):
    path = world["path"]
    first = profile_of(path, "loyalty_card_id", "LC-BL-1")
    second = profile_of(path, "loyalty_card_id", "LC-BL-2")
    assert first and second and first != second
    assert profile_of(path, "email", "test@test.com") is None
    assert rows(
        path, "select count(*) from staging.stg_crm__contacts where contact_id like 'BL-%' and email is not null"
    ) == [(0,)]


def test_email_change_gives_one_profile_with_the_new_email(world):
    path = world["path"]
    old = profile_of(path, "email", "carol.old@example.com")
    new = profile_of(path, "email", "carol.new@example.com")
    assert old is not None and old == new == profile_of(path, "customer_id", "EC-S1")
    # survivorship: shop (login) email before CRM; phone from the CRM, parsed as a UK number
    assert rows(path, "select email, phone, country from profiles where profile_id = ?", [old]) == [
        ("carol.new@example.com", "+442079460958", "GB")
    ]


def test_rebuilding_unchanged_data_keeps_every_profile_id(world):
    assert world["first"] and world["first"] == world["second"]
    assert world["first_merges"] == []


def test_merge_keeps_the_older_profile_id_and_records_it(world, tmp_path):
    import shutil

    path = tmp_path / "merge.duckdb"
    shutil.copy(world["path"], path)
    older = profile_of(path, "email", "dave@example.com")  # CRM, 2024
    newer = profile_of(path, "customer_id", "MG-S1")  # shop, 2025
    assert older and newer and older != newer

    write_raw(path, world["after_extra"], replace=False)
    build(path)

    assert profile_of(path, "email", "dave@example.com") == older
    assert profile_of(path, "customer_id", "MG-S1") == older
    assert profile_of(path, "email", "dave.shop@example.com") == older
    merges = rows(path, "select merged_profile_id, surviving_profile_id from profile_merges")
    assert merges == [(newer, older)]
    # everyone else kept their id through the merge
    after = dict(rows(path, "select identifier_type || ':' || identifier_value, profile_id from profile_identifiers"))
    unchanged = {k: v for k, v in world["first"].items() if v not in (older, newer)}
    assert {k: after[k] for k in unchanged} == unchanged


#: What identity writes, without the build's timestamps (assigned_at, merged_at): both component
#: paths must leave these identical, row for row.
IDENTITY_TABLES = {
    "strong groups": "select node_id, group_id from intermediate.int_identity__strong_groups",
    "components": "select node_id, component_id from intermediate.int_identity__components",
    "guard": "select node_id, people, is_shared from identity_guard_decisions",
    "assignments": "select node_id, component_id, profile_id, previous_profile_id "
    "from intermediate.int_identity__profile_assignments",
    "registry": "select identifier_type, identifier_value, profile_id, profile_first_seen_at from profile_id_registry",
    "merges": "select merged_profile_id, surviving_profile_id from profile_merges",
    "profiles": "select identifier_type, identifier_value, profile_id from profile_identifiers",
}


def identity_tables(path: Path) -> dict[str, list[tuple]]:
    return {name: sorted(rows(path, sql), key=repr) for name, sql in IDENTITY_TABLES.items()}


def test_components_in_memory_and_in_sql_give_the_same_identity(world, sql_world, tmp_path):
    """The in-memory path (DuckDB) and the SQL fixpoint (Postgres, Spark) on the same data: the same
    partition with the same labels, so the same profile ids — also when new data merges two profiles."""
    import shutil

    work_tables = "select count(*) from information_schema.tables where table_name like 'int_identity__%__passes'"
    assert rows(world["path"], work_tables) == [(0,)], "the in-memory path ran the SQL fixpoint"
    assert rows(sql_world["path"], work_tables) == [(2,)], "the SQL path did not run the SQL fixpoint"
    in_memory, in_sql = identity_tables(world["path"]), identity_tables(sql_world["path"])
    assert in_memory["components"] and in_memory["strong groups"]
    assert in_memory == in_sql

    memory_path, sql_path = tmp_path / "memory.duckdb", tmp_path / "sql.duckdb"
    shutil.copy(world["path"], memory_path)
    shutil.copy(sql_world["path"], sql_path)
    for path, extra_args in ((memory_path, None), (sql_path, COMPONENTS_IN_SQL)):
        write_raw(path, world["after_extra"], replace=False)
        build(path, extra_args)
    in_memory, in_sql = identity_tables(memory_path), identity_tables(sql_path)
    assert len(in_memory["merges"]) == 1
    assert in_memory == in_sql
