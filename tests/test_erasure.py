"""Erasure (issue 13, item 1): a deletion request makes a person disappear from every table the dbt
project writes, on the next build, and stale raw data does not bring them back.

One world per module: the session's sample, built; a person is picked (unique last name, email,
phone, on a manual list); the scan finds them in many tables; a deletion request lands in raw (in
mixed case, as loaders deliver it) and one build later the scan finds them nowhere. A stale CRM
export with the same email then arrives, and a third build still finds them nowhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from erasure_scan import Person, pick_person, scan

from cdp import manual_segments
from cdp.dbt import run_dbt
from cdp.privacy.identifiers import IdentifierError, detect_type, parse_identifier
from cdp.privacy.tombstones import tombstone


@dataclass
class World:
    path: Path
    person: Person
    before: dict[str, set[str]]


@pytest.fixture(scope="module")
def world(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    path = tmp_path_factory.mktemp("erasure") / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    with duckdb.connect(str(path)) as con:
        person = pick_person(con)
    with manual_segments.open_warehouse(path, read_only=False) as con:
        manual_segments.create_segment(con, "erasure_vip", description="test list", owner="tests", actor="tests")
        manual_segments.add_members(con, "erasure_vip", [person.profile_id], actor="tests")
    run_dbt(["build", "--selector", "refresh_manual_segments"], warehouse=path, echo=False)
    with duckdb.connect(str(path), read_only=True) as con:
        before = scan(con, person)
    with duckdb.connect(str(path)) as con:
        # as a loader delivers it: padded and in capitals; staging normalises it
        con.execute(
            "insert into raw.deletion_requests (request_id, identifier_type, identifier_value, requested_at) "
            "values ('erasure-test-1', 'email', ?, timestamp '2026-10-31 12:00:00')",
            [f"  {person.email.upper()} "],
        )
    run_dbt(["build"], warehouse=path, echo=False)
    return World(path, person, before)


def test_the_scan_finds_the_person_before_the_erasure(world: World):
    """The scan can fail: before the request it finds each needle in the tables that hold it."""
    before = world.before
    assert {"main.profiles", "main.profile_identifiers", "staging.stg_crm__contacts"} <= before["email"] | before[
        "phone"
    ]
    assert {"main.profiles", "intermediate.int_identity__person_records"} <= before["last_name"]
    assert "intermediate.int_identity__record_identifiers" in before["email"]
    assert {"main.segment_membership", "manual_segments.members", "manual_segments.audit_log"} <= before["profile_id"]
    assert "main.profile_id_registry" in before["profile_id"]


def test_after_one_build_no_table_the_project_writes_holds_the_person(world: World):
    with duckdb.connect(str(world.path), read_only=True) as con:
        after = scan(con, world.person)
    assert after == {"email": set(), "phone": set(), "last_name": set(), "profile_id": set()}


def test_the_staged_events_of_the_person_are_deleted_though_raw_keeps_them(world: World):
    """stg_web__events is a table kept between builds (macros/incremental/append_only_staging.sql): the
    build that erases someone deletes the events it staged before, not only the new ones."""
    ids = list(world.person.customer_ids)
    with duckdb.connect(str(world.path), read_only=True) as con:
        raw = con.execute("select count(*) from raw.web_events where trim(user_id) in ?", [ids]).fetchall()[0][0]
        staged = con.execute("select count(*) from staging.stg_web__events where customer_id in ?", [ids]).fetchall()[
            0
        ][0]
        kind = con.execute(
            "select table_type from information_schema.tables where table_schema = 'staging' "
            "and table_name = 'stg_web__events'"
        ).fetchall()
    assert kind == [("BASE TABLE",)]
    assert raw > 0, "the person browsed while logged in (the raw rows stay: they are the loader's)"
    assert staged == 0


def test_the_erasure_is_recorded_with_tombstones_only(world: World):
    with duckdb.connect(str(world.path), read_only=True) as con:
        erasures = con.execute(
            "select request_id, profile_id, identifier_type, tombstone, source from main.privacy_erasures "
            "where request_id = 'erasure-test-1'"
        ).fetchall()
        tombstones = {row[0] for row in con.execute("select tombstone from main.privacy_tombstones").fetchall()}
    expected = tombstone(parse_identifier(world.person.email, "email"))
    assert erasures == [("erasure-test-1", world.person.profile_id, "email", expected, "raw")]
    # every identifier of the profile is tombstoned, not only the one requested
    assert tombstone(parse_identifier(world.person.phone, "phone")) in tombstones
    for customer_id in world.person.customer_ids:
        assert tombstone(parse_identifier(customer_id, "customer_id")) in tombstones


@pytest.fixture(scope="module")
def stale_world(world: World) -> World:
    """An old CRM export (same email, different case, new contact id) and a late web event with the
    customer id arrive after the erasure; the project builds again."""
    person = world.person
    with duckdb.connect(str(world.path)) as con:
        con.execute(
            "insert into raw.crm_contacts (contact_id, email, phone, first_name, last_name, country, created_at, updated_at) "
            "values ('stale-export-1', ?, null, ?, ?, 'GB', timestamp '2020-01-01', timestamp '2020-01-01')",
            [person.email.title(), person.first_name, person.last_name],
        )
        con.execute(
            "insert into raw.web_events (event_id, anonymous_id, user_id, email, event_type, properties, occurred_at) "
            "values ('stale-event-1', 'stale-device', ?, null, 'page_viewed', '{}', timestamp '2026-10-30 10:00:00')",
            [person.customer_ids[0]],
        )
    run_dbt(["build"], warehouse=world.path, echo=False)
    return world


def test_the_person_in_a_stale_raw_export_is_not_rebuilt(stale_world: World):
    with duckdb.connect(str(stale_world.path), read_only=True) as con:
        after = scan(con, stale_world.person)
        erasures = con.execute(
            "select count(*) from main.privacy_erasures where request_id = 'erasure-test-1'"
        ).fetchall()
        stale_device = con.execute(
            "select count(*) from main.profile_identifiers where identifier_value = 'stale-device'"
        ).fetchall()
    assert after == {"email": set(), "phone": set(), "last_name": set(), "profile_id": set()}
    assert erasures == [(1,)], "the request is erased once and kept, not re-resolved every build"
    # the late event carried the erased customer id: the whole record stays out, its device too
    assert stale_device == [(0,)]


def test_raw_report_counts_the_rows_left_and_purge_raw_deletes_them(stale_world: World):
    output = _cdp("privacy", "raw-report", "--warehouse", str(stale_world.path))
    counts = dict(re.findall(r"raw\.(\w+): (\d+) row", output))
    assert int(counts["crm_contacts"]) >= 2  # the original contact and the stale export
    assert int(counts["web_events"]) >= 1
    with duckdb.connect(str(stale_world.path), read_only=True) as con:
        requests = con.execute("select count(*) from raw.deletion_requests").fetchall()[0][0]
    assert int(counts["deletion_requests"]) == requests  # the sample's own and ours: every one erased
    assert stale_world.person.email not in output.lower() and stale_world.person.last_name not in output

    with duckdb.connect(str(stale_world.path)) as con:
        raw_contacts = con.execute("select count(*) from raw.crm_contacts").fetchall()[0][0]
        # arrived after the last build: not staged yet, and nobody's erasure holds them out
        con.execute(
            "insert into raw.web_events (event_id, anonymous_id, user_id, email, event_type, properties, occurred_at) "
            "values ('not-staged-yet-1', 'new-device', null, null, 'page_viewed', '{}', timestamp '2026-10-31 09:00:00')"
        )
        con.execute(
            "insert into raw.email_events (event_id, campaign_id, email, event_type, occurred_at) "
            "values ('not-staged-yet-2', 'c1', 'new.reader@example.org', 'opened', timestamp '2026-10-31 09:00:00')"
        )
    assert (
        dict(re.findall(r"raw\.(\w+): (\d+) row", _cdp("privacy", "raw-report", "--warehouse", str(stale_world.path))))
        == counts
    )
    purge = _cdp("forget", "--purge-raw", "--warehouse", str(stale_world.path))
    assert "deleted" in purge
    after = dict(
        re.findall(r"raw\.(\w+): (\d+) row", _cdp("privacy", "raw-report", "--warehouse", str(stale_world.path)))
    )
    assert after["crm_contacts"] == "0" and after["web_events"] == "0" and after["shop_customers"] == "0"
    assert after["deletion_requests"] == str(requests), "the requests are the loader's: reported, never deleted"
    with duckdb.connect(str(stale_world.path), read_only=True) as con:
        left = con.execute("select count(*) from raw.crm_contacts").fetchall()[0][0]
        holding = con.execute(
            "select count(*) from raw.crm_contacts where lower(trim(email)) = ?", [stale_world.person.email]
        ).fetchall()[0][0]
    assert left == raw_contacts - int(counts["crm_contacts"]) and holding == 0
    with duckdb.connect(str(stale_world.path), read_only=True) as con:
        kept = con.execute(
            "select (select count(*) from raw.web_events where event_id = 'not-staged-yet-1') "
            "+ (select count(*) from raw.email_events where event_id = 'not-staged-yet-2')"
        ).fetchall()[0][0]
    assert kept == 2, "the purge deletes only what an erasure holds out, never rows the next build stages"


# --- cdp forget ------------------------------------------------------------------------------


def _cdp(*args: str, expect: int = 0) -> str:
    result = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == expect, f"cdp {' '.join(args)} exited {result.returncode}:\n{output[-3000:]}"
    return output


@pytest.mark.parametrize(
    ("text", "given", "expected"),
    [
        ("  Jane.Doe@Example.COM ", None, ("email", "jane.doe@example.com")),
        ("+44 7700 900123", None, ("phone", "+447700900123")),
        ("0044 (0)7700-900123", None, ("phone", "+447700900123")),
        (" C000123 ", "customer_id", ("customer_id", "C000123")),
    ],
)
def test_identifiers_are_normalised_as_staging_normalises_them(text, given, expected):
    parsed = parse_identifier(text, given)
    assert (parsed.identifier_type, parsed.value) == expected


@pytest.mark.parametrize(
    ("text", "given", "message"),
    [
        ("jane.doe@", None, "part before|domain after"),
        ("jane@example", None, "domain after the @"),
        ("a@b@example.com", None, "exactly one @"),
        ("07700 900123", None, "without its country code"),
        ("C000123", None, "pass --type"),
        ("+44 77", None, "8 to 15 digits"),
        ("+44 7700 9001x3", "phone", "only digits"),
        ("   ", None, "empty"),
    ],
)
def test_bad_identifiers_are_refused_with_what_was_wrong(text, given, message):
    with pytest.raises(IdentifierError, match=message) as caught:
        parse_identifier(text, given)
    if text.strip():
        assert text.strip() not in str(caught.value), "the message must not echo personal data"


def test_detection():
    assert detect_type("x@example.com") == "email"
    assert detect_type("+1 (415) 555-0100") == "phone"


def test_cdp_forget_records_a_tombstone_only_and_the_next_build_erases_the_person(
    built_warehouse: Path, tmp_path: Path
):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    with duckdb.connect(str(path), read_only=True) as con:
        person = pick_person(con)

    bad = _cdp("forget", "not-an-email@", "--warehouse", str(path), expect=2)
    assert "Not a valid email address" in bad and "IDENTIFIER" in bad
    assert "--type" in _cdp("forget", "C0001", "--warehouse", str(path), expect=2)
    assert "Give the IDENTIFIER" in _cdp("forget", "--warehouse", str(path), expect=2)

    recorded = _cdp("forget", f" {person.email.upper()}", "--by", "dpo", "--warehouse", str(path))
    request_id = re.search(r"request (cli-[0-9a-f-]+)", recorded).group(1)
    assert person.email not in recorded.lower()
    again = _cdp("forget", person.email, "--warehouse", str(path))
    assert f"already asked to be forgotten: request {request_id}" in again
    with duckdb.connect(str(path), read_only=True) as con:
        stored = con.execute("select * from privacy.forget_requests").fetchall()
        assert len(stored) == 1 and person.email not in " ".join(str(value) for value in stored[0]).lower()

    run_dbt(["build"], warehouse=path, echo=False)
    with duckdb.connect(str(path), read_only=True) as con:
        erasure = con.execute(
            "select profile_id, source, tombstone from main.privacy_erasures where request_id = ?", [request_id]
        ).fetchall()
        after = scan(con, person)
    assert erasure == [(person.profile_id, "cli", tombstone(parse_identifier(person.email)))]
    assert after == {"email": set(), "phone": set(), "last_name": set(), "profile_id": set()}


def test_event_candidates_a_failed_build_left_are_dropped_when_the_erasure_is_recorded(
    built_warehouse: Path, tmp_path: Path
):
    """A build that fails between int_profiles__affected_profiles and profile_events leaves its
    event candidates (macros/incremental/affected_profiles.sql). The next build that erases someone
    drops them as it records the erasure, before any model that would replace them runs."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    kept = "intermediate.int_profiles__event_candidates_kept"
    with duckdb.connect(str(path)) as con:
        person = pick_person(con)
        con.execute(
            f"create table {kept} as select * from main.profile_events where profile_id = ?", [person.profile_id]
        )
        assert con.execute(f"select count(*) from {kept}").fetchone()[0] > 0
        con.execute(
            "insert into raw.deletion_requests (request_id, identifier_type, identifier_value, requested_at) "
            "values ('erasure-kept-1', 'email', ?, timestamp '2026-10-31 12:00:00')",
            [person.email],
        )
    run_dbt(
        ["run", "--select", "int_privacy__requests", "privacy_erasures", "privacy_tombstones"],
        warehouse=path,
        echo=False,
    )
    with duckdb.connect(str(path), read_only=True) as con:
        assert (
            con.execute("select count(*) from main.privacy_erasures where request_id = 'erasure-kept-1'").fetchone()[0]
            == 1
        )
        left = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'intermediate' and table_name = 'int_profiles__event_candidates_kept'"
        ).fetchone()[0]
    assert left == 0


# --- the same tombstone on every engine ------------------------------------------------------


def test_tombstones_are_the_same_in_python_duckdb_and_postgres(built_warehouse: Path, postgres_build, tmp_path: Path):
    """Golden: the sample's deletion requests, erased on DuckDB and on Postgres, leave the same
    tombstones, and `cdp forget`'s Python hash of the same email gives that digest too."""
    import pandas as pd
    from engines import dump_tables

    dump_tables(postgres_build.target, postgres_build.target.schema, ["privacy_erasures"], tmp_path)
    postgres = pd.read_parquet(tmp_path / "privacy_erasures.parquet")
    postgres_tombstones = dict(zip(postgres["request_id"], postgres["tombstone"], strict=True))
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        duckdb_tombstones = dict(
            con.execute("select request_id, tombstone from main.privacy_erasures where source = 'raw'").fetchall()
        )
        emails = con.execute(
            "select request_id, identifier_value from raw.deletion_requests where identifier_type = 'email'"
        ).fetchall()
    assert duckdb_tombstones and postgres_tombstones == duckdb_tombstones
    assert emails
    for request_id, email in emails:
        assert tombstone(parse_identifier(email, "email")) == duckdb_tombstones[request_id]


@pytest.mark.slow
def test_cdp_forget_on_postgres_erases_the_person_at_the_next_build_and_purge_raw_clears_raw(
    postgres_build, postgres_server, monkeypatch: pytest.MonkeyPatch
):
    """`cdp forget` runs on Postgres as on DuckDB: the request lands in the Postgres warehouse, the
    next `cdp build` there erases the person from every table it writes, and `--purge-raw` deletes
    their raw rows. On a copy of the session's Postgres build."""
    from sync_engines import postgres_database

    target = postgres_build.target
    with postgres_database(postgres_server, copy_of=target.settings["dbname"]) as location:
        monkeypatch.setenv("CDP_POSTGRES_DATABASE", location.settings["dbname"])
        with location.open() as warehouse:
            person = pick_person(warehouse, schema=target.schema)
            assert scan(warehouse, person)["email"], "the scan finds the person before the request"

        recorded = _cdp("forget", person.email, "--by", "dpo", "--target", "postgres")
        request_id = re.search(r"request (cli-[0-9a-f-]+)", recorded).group(1)
        _cdp("build", "--target", "postgres")
        with location.open() as warehouse:
            erasure = warehouse.fetch(
                f"select profile_id, source from {target.schema}.privacy_erasures where request_id = :request_id",
                {"request_id": request_id},
            )
            after = scan(warehouse, person)
        assert erasure == [(person.profile_id, "cli")]
        assert after == {"email": set(), "phone": set(), "last_name": set(), "profile_id": set()}

        report = dict(re.findall(r"raw\.(\w+): (\d+) row", _cdp("privacy", "raw-report", "--target", "postgres")))
        assert int(report["crm_contacts"]) >= 1
        _cdp("forget", "--purge-raw", "--target", "postgres")
        purged = dict(re.findall(r"raw\.(\w+): (\d+) row", _cdp("privacy", "raw-report", "--target", "postgres")))
        assert purged["crm_contacts"] == "0" and purged["shop_customers"] == "0" and purged["web_events"] == "0"
        with location.open() as warehouse:
            (left,) = warehouse.fetch(
                "select count(*) from raw.crm_contacts where lower(trim(email)) = :email", {"email": person.email}
            )
        assert left == (0,)


def test_only_the_append_only_staging_models_are_taken_for_staging_tables(tmp_path: Path):
    """The erasure scrub deletes the staged rows of the append-only staging tables, and the raw-rows
    report counts against them (macros/incremental/append_only_staging.sql). A model of the user's
    that declares `meta.erased_by` for its own reasons is not taken for one."""
    from cdp.settings import DBT_PROJECT_DIR

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "models" / "user_emails.sql").write_text(
        "{{ config(materialized='table', meta={'erased_by': {'email': 'email'}}) }}\nselect 'a@b.example' as email\n"
    )
    (project / "macros" / "print_append_only_staging_tables.sql").write_text(
        "{% macro print_append_only_staging_tables() %}"
        "{% do print('append-only staging: ' ~ cdp.append_only_staging_tables() | join(',')) %}"
        "{% endmacro %}\n"
    )
    output = run_dbt(
        ["run-operation", "print_append_only_staging_tables"],
        warehouse=tmp_path / "warehouse.duckdb",
        echo=False,
        project_dir=project,
    )
    found = re.search(r"append-only staging: (\S*)", output)
    assert found, output[-2000:]
    assert found.group(1).split(",") == ["stg_email__events", "stg_web__events"]
