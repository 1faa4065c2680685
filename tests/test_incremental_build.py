"""The incremental rebuild (macros/incremental/affected_profiles.sql): new raw rows are processed
without recomputing the world, and leave exactly the tables a full build of the same data leaves.

"A full build of the same data" is `cdp build --full-refresh` on the same warehouse: every model is
recomputed from the raw tables except the profile id registry and the merge log, which are history
(ids stay stable across builds by design, so a from-scratch build could name a merged person
differently). Tables are compared row for row, without the columns that record when a build ran.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from cdp.dbt import run_dbt
from cdp.sample_data.increment import BUILD_TIME_COLUMNS, PENDING_SCHEMA, hold_back, release

#: Floating-point columns are compared to 9 decimals: a sum of doubles depends on the order DuckDB
#: reads the rows in, and a table updated in place keeps its rows in another order than a new one.
FLOAT_DECIMALS = 9


def _build(path: Path, *args: str) -> None:
    run_dbt(["build", *args], warehouse=path, echo=False)


#: The public models, and staging (its web and email events are tables updated in place).
COMPARED_SCHEMAS = ("main", "staging")
#: Intermediate tables compared too: updated in place and kept from build to build.
COMPARED_INTERMEDIATE = ("int_identity__event_records",)


def _public_tables(path: Path) -> dict[str, list[str]]:
    """Each table and view of the compared schemas, and the compared intermediate tables ("schema"."table"), with
    the expressions that compare its rows."""
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select '\"' || table_schema || '\".\"' || table_name || '\"', column_name, data_type "
            "from information_schema.columns where list_contains(?, table_schema) "
            "or (table_schema = 'intermediate' and list_contains(?, table_name)) "
            "order by table_schema, table_name, ordinal_position",
            [list(COMPARED_SCHEMAS), list(COMPARED_INTERMEDIATE)],
        ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column, data_type in columns:
        tables.setdefault(table, [])
        if column in BUILD_TIME_COLUMNS:
            continue
        quoted = f'"{column}"'
        tables[table].append(f"round({quoted}, {FLOAT_DECIMALS})" if data_type in ("DOUBLE", "FLOAT") else quoted)
    return tables


def differences(incremental: Path, full: Path) -> dict[str, str]:
    """Per table that differs: how many rows each side has that the other lacks, and one example."""
    tables = _public_tables(full)
    assert set(_public_tables(incremental)) == set(tables), "both builds write the same tables"
    found = {}
    with duckdb.connect(str(full), read_only=True) as con:
        con.execute(f"attach '{incremental}' as incremental (read_only)")
        for table, columns in tables.items():
            listed = ", ".join(columns)
            only = {}
            for name, left, right in (("incremental", "incremental.", ""), ("full", "", "incremental.")):
                rows = con.execute(
                    f"select {listed} from {left}{table} except all select {listed} from {right}{table}"
                ).fetchall()
                only[name] = rows
            if only["incremental"] or only["full"]:
                found[table] = (
                    f"{len(only['incremental'])} rows only after the incremental build "
                    f"(e.g. {only['incremental'][:1]}), {len(only['full'])} only after the full build "
                    f"(e.g. {only['full'][:1]})"
                )
    return found


def _rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _affected(path: Path) -> tuple[set[str], bool]:
    rows = _rows(path, "select profile_id, is_everyone from intermediate.int_profiles__affected_profiles")
    return {profile for profile, _ in rows if profile is not None}, any(
        everyone for profile, everyone in rows if profile is None
    )


def _mapping_differences(path: Path) -> list[tuple]:
    """Rows only one side holds, of the mapping profile_events' post-hook remembered (brought up to date by
    the identifier changes, apply_identifier_changes) and of profile_identifiers: none after every build."""
    mapping = "profile_id, identifier_type, identifier_value"
    remembered = f"select {mapping} from intermediate.int_profiles__attributed_identifiers"
    resolved = f"select {mapping} from main.profile_identifiers"
    return _rows(
        path,
        f"(select 'only remembered', * from ({remembered} except all {resolved})) "
        f"union all (select 'only in profile_identifiers', * from ({resolved} except all {remembered}))",
    )


def _compare_with_full_refresh(path: Path, tmp_path: Path) -> None:
    assert _mapping_differences(path) == []
    incremental = tmp_path / "after_incremental.duckdb"
    shutil.copy(path, incremental)
    _build(path, "--full-refresh")
    assert differences(incremental, path) == {}


@pytest.fixture(scope="module")
def first_part(generated_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with 3% of every raw table held back (by a hash of each row's key), built in full."""
    path = tmp_path_factory.mktemp("incremental") / "first_part.duckdb"
    shutil.copy(generated_warehouse, path)
    with duckdb.connect(str(path)) as con:
        held = hold_back(con, 3, seed=1)
    assert all(held[table] > 0 for table in held if table != "deletion_requests"), held
    _build(path)
    return path


def _compiled_code(target_path: Path, model: str) -> str:
    """The SQL dbt ran for `model` in the last invocation that wrote `target_path`."""
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return next(result["compiled_code"] for result in results if result["unique_id"] == f"model.cdp.{model}")


def test_building_in_two_steps_leaves_every_public_table_a_full_build_leaves(
    first_part: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "two_steps.duckdb"
    shutil.copy(first_part, path)
    with duckdb.connect(str(path)) as con:
        released = release(con)
        assert not con.execute(
            "select count(*) from information_schema.schemata where schema_name = ?", [PENDING_SCHEMA]
        ).fetchone()[0]
    assert released["web_events"] > 0
    events_before = _rows(first_part, "select count(*) from profile_events")[0][0]
    # a target folder of its own: its run_results.json is this build's, not another worker's
    target = tmp_path / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))

    _build(path)

    # it was incremental: some profiles recomputed, not everyone, and the new events arrived
    affected, everyone = _affected(path)
    profiles = _rows(path, "select count(*) from profiles")[0][0]
    assert not everyone and 0 < len(affected) < profiles / 2, (len(affected), profiles)
    assert _rows(path, "select count(*) from profile_events")[0][0] > events_before
    # profile_events read the candidates affected_profiles kept, rather than computing the view again
    assert "int_profiles__event_candidates_kept" in _compiled_code(target, "profile_events")
    _compare_with_full_refresh(path, tmp_path)


def test_a_late_record_joining_two_existing_profiles_is_merged_incrementally(first_part: Path, tmp_path: Path):
    path = tmp_path / "late_merge.duckdb"
    shutil.copy(first_part, path)
    # two people: one known by an email alone, one by a shop account with orders
    older, email = _rows(
        path,
        "select profile_id, min(identifier_value) from profile_identifiers where identifier_type = 'email' "
        "and profile_id not in (select profile_id from profile_identifiers where identifier_type = 'customer_id') "
        "and profile_id in (select profile_id from profile_events) group by profile_id order by profile_id limit 1",
    )[0]
    newer, customer_id = _rows(
        path,
        "select profile_id, min(identifier_value) from profile_identifiers where identifier_type = 'customer_id' "
        "and profile_id in (select profile_id from profile_events where source = 'shop') "
        "and profile_id <> ? group by profile_id order by profile_id limit 1",
        [older],
    )[0]
    events = {
        profile: _rows(path, "select count(*) from profile_events where profile_id = ?", [profile])[0][0]
        for profile in (older, newer)
    }
    # a sign-in showing the shop account belongs to the person with that email
    with duckdb.connect(str(path)) as con:
        con.execute(
            "insert into raw.web_events (event_id, anonymous_id, user_id, email, event_type, properties, occurred_at) "
            "values ('late-merge-1', 'late-merge-device', ?, ?, 'identify', '{}', timestamp '2026-10-30 12:00:00')",
            [customer_id, email],
        )

    _build(path)

    survivors = {
        _rows(
            path,
            "select profile_id from profile_identifiers where identifier_type = ? and identifier_value = ?",
            [kind, value],
        )[0][0]
        for kind, value in (("email", email), ("customer_id", customer_id))
    }
    assert len(survivors) == 1, "the two profiles are one now"
    (survivor,) = survivors
    retired = ({older, newer} - {survivor}).pop()
    assert _rows(path, "select surviving_profile_id from profile_merges where merged_profile_id = ?", [retired]) == [
        (survivor,)
    ]
    # both people's events (and the sign-in) now belong to the survivor; the retired id holds nothing
    assert _rows(path, "select count(*) from profile_events where profile_id = ?", [survivor])[0][0] == (
        events[older] + events[newer] + 1
    )
    for table in ("profile_events", "profiles", "profile_attributes", "intermediate.int_attributes__purchases"):
        assert _rows(path, f"select count(*) from {table} where profile_id = ?", [retired])[0][0] == 0, table
    # incremental: only the two people were recomputed
    affected, everyone = _affected(path)
    assert not everyone and affected == {older, newer}
    _compare_with_full_refresh(path, tmp_path)


def test_a_new_as_of_recomputes_every_profile(first_part: Path, tmp_path: Path):
    """Windows move with as_of: a build with another as_of recomputes everyone's windowed attributes."""
    path = tmp_path / "as_of.duckdb"
    shutil.copy(first_part, path)
    moved = ["--vars", "{as_of: '2026-11-15 00:00:00'}"]
    _build(path, *moved)
    affected, everyone = _affected(path)
    assert everyone
    incremental = tmp_path / "after_incremental.duckdb"
    shutil.copy(path, incremental)
    _build(path, "--full-refresh", *moved)
    assert differences(incremental, path) == {}


def test_a_build_that_stopped_after_keeping_the_candidates_does_not_mislead_the_next(first_part: Path, tmp_path: Path):
    """A build that stopped between int_profiles__affected_profiles (whose pre-hook keeps the candidates as
    a table) and profile_events (whose post-hook drops it) leaves that table behind. The next build, one
    with a new as_of that recomputes everyone and keeps no candidates, drops it and must not read it."""
    path = tmp_path / "stopped_after_keeping.duckdb"
    shutil.copy(first_part, path)
    with duckdb.connect(str(path)) as con:
        release(con)
    # models only: the selection's tests of profile_identifiers would miss profiles
    run_dbt(["run", "--select", "+int_profiles__affected_profiles"], warehouse=path, echo=False)
    kept = "select count(*) from information_schema.tables where table_name = 'int_profiles__event_candidates_kept'"
    assert _rows(path, kept) == [(1,)]
    moved = ["--vars", "{as_of: '2026-11-15 00:00:00'}"]

    _build(path, *moved)

    assert _affected(path)[1] and _rows(path, kept) == [(0,)]
    assert _mapping_differences(path) == []
    incremental = tmp_path / "after_incremental.duckdb"
    shutil.copy(path, incremental)
    _build(path, "--full-refresh", *moved)
    assert differences(incremental, path) == {}


def test_a_selection_that_leaves_out_the_identifier_changes_attributes_every_event_again(
    first_part: Path, tmp_path: Path
):
    """`cdp build --select profile_events` after identity moved on alone: last build's list of changes is
    stale, so profile_events attributes everything again rather than keep events under moved ids."""
    path = tmp_path / "selection.duckdb"
    shutil.copy(first_part, path)
    # a build that updates in place keeps the incremental int_profiles__event_candidates view, which the
    # selection below reads as it is: it must not trust profile_events' watermark once everything is deleted
    _build(path)
    with duckdb.connect(str(path)) as con:
        release(con)
    # `dbt run`: the data tests of a partial selection (profiles against profile_identifiers) would fail
    run_dbt(["run", "--select", "+profile_identifiers"], warehouse=path, echo=False)  # identity moves on
    run_dbt(["run", "--select", "profile_events"], warehouse=path, echo=False)  # without what says what moved
    _build(path)
    _compare_with_full_refresh(path, tmp_path)


def test_a_deletion_request_that_arrives_later_settles_like_a_full_build_one_build_on(
    generated_warehouse: Path, built_warehouse: Path, tmp_path: Path
):
    """An erasure in the new rows: the erased person leaves every incremental table in that build, and
    one build later (when an erasure's identity building blocks settle, README "Erasure") every public
    table is what a full build leaves."""
    path = tmp_path / "erasure.duckdb"
    shutil.copy(generated_warehouse, path)
    with duckdb.connect(str(path)) as con:
        hold_back(con, 3, seed=1)
        # a request that erases somebody (the sample also asks to erase identifiers nobody holds)
        (request_id,) = _rows(
            built_warehouse,
            "select min(request_id) from privacy_erasures where profile_id is not null and source = 'raw'",
        )[0]
        con.execute(
            f"insert into {PENDING_SCHEMA}.deletion_requests select * from raw.deletion_requests where request_id = ?",
            [request_id],
        )
        con.execute("delete from raw.deletion_requests where request_id = ?", [request_id])
    _build(path)
    with duckdb.connect(str(path)) as con:
        release(con)

    _build(path)

    erased = _rows(
        path, "select profile_id from privacy_erasures where request_id = ? and profile_id is not null", [request_id]
    )
    assert erased, "the request matched a profile"
    for table in ("profile_events", "profile_attributes", "intermediate.int_attributes__engagement"):
        assert _rows(path, f"select count(*) from {table} where profile_id = ?", [erased[0][0]])[0][0] == 0, table
    _build(path)
    _compare_with_full_refresh(path, tmp_path)


def test_an_older_record_with_known_identifiers_moves_the_tenure_in_the_feature_sets(first_part: Path, tmp_path: Path):
    """A CRM contact that arrives late, carrying only an email its profile already has, brings no event
    and no identifier that moved: the profile is not affected, yet its first_seen_at moves back. The
    predictive feature sets, kept per profile between builds, still recompute its tenure."""
    path = tmp_path / "tenure.duckdb"
    shutil.copy(first_part, path)
    profile, email, tenure = _rows(
        path,
        "select scoring.profile_id, min(identifiers.identifier_value), any_value(scoring.tenure_days) "
        "from intermediate.int_predictive__scoring_set as scoring "
        "inner join profile_identifiers as identifiers on identifiers.profile_id = scoring.profile_id "
        "where identifiers.identifier_type = 'email' "
        "group by scoring.profile_id having count(*) = 1 order by scoring.profile_id limit 1",
    )[0]
    with duckdb.connect(str(path)) as con:
        con.execute(
            "insert into raw.crm_contacts (contact_id, email, created_at, updated_at) "
            "values ('late-contact-1', ?, timestamp '2015-01-01 00:00:00', timestamp '2015-01-01 00:00:00')",
            [email],
        )

    _build(path)

    assert _rows(path, "select profile_id from profile_identifiers where identifier_value = ?", [email]) == [(profile,)]
    affected, everyone = _affected(path)
    assert not everyone and profile not in affected, "nothing but the tenure tells the feature sets"
    (moved,) = _rows(
        path, "select tenure_days from intermediate.int_predictive__scoring_set where profile_id = ?", [profile]
    )[0]
    assert moved > tenure
    _compare_with_full_refresh(path, tmp_path)


# --- new web and email events are found by when they were staged (staged_event_candidates) ----------

#: Where profile_events' post-hook records the newest staged_at it attributed, per staging table.
WATERMARKS = "intermediate.int_profiles__attributed_watermarks"
STAGED_TABLES = ("stg_web__events", "stg_email__events")


def _watermarks(path: Path) -> dict[str, object]:
    return dict(_rows(path, f"select staged_model, staged_at from {WATERMARKS}"))


def test_profile_events_records_the_newest_staged_row_it_attributed(first_part: Path, tmp_path: Path):
    path = tmp_path / "watermark.duckdb"
    shutil.copy(first_part, path)
    before = _watermarks(path)
    with duckdb.connect(str(path)) as con:
        release(con)

    _build(path)

    after = _watermarks(path)
    for table in STAGED_TABLES:
        (newest,) = _rows(path, f"select max(staged_at) from staging.{table}")[0]
        assert after[table] == newest and newest > before[table], table
        # the released rows are the ones this build staged, and only they
        (staged_now,) = _rows(path, f"select count(*) from staging.{table} where staged_at > ?", [before[table]])[0]
        assert 0 < staged_now < _rows(path, f"select count(*) from staging.{table}")[0][0], table


def test_events_staged_by_a_build_that_stopped_before_profile_events_are_attributed_by_the_next(
    first_part: Path, tmp_path: Path
):
    """A build that staged the new rows and failed before profile_events (here: a selection of the staging
    models alone): the next build compares staged_at with what profile_events recorded, not with its own
    start, so it still attributes them."""
    path = tmp_path / "stopped.duckdb"
    shutil.copy(first_part, path)
    with duckdb.connect(str(path)) as con:
        release(con)
    run_dbt(["run", "--select", *STAGED_TABLES], warehouse=path, echo=False)
    events_before = _rows(path, "select count(*) from profile_events")[0][0]

    _build(path)

    assert _rows(path, "select count(*) from profile_events")[0][0] > events_before
    affected, everyone = _affected(path)
    assert not everyone and affected
    _compare_with_full_refresh(path, tmp_path)


def test_a_staging_table_rebuilt_alone_has_its_events_rolled_up_again(first_part: Path, tmp_path: Path):
    """`--full-refresh` of a staging model alone restages every raw row, here after a retention job removed a
    device's raw web events: the next build rolls every staged event up into identity records again
    (macros/incremental/event_records.sql) instead of merging them into the records it held, so no record
    of the removed events stays."""
    path = tmp_path / "restaged.duckdb"
    shutil.copy(first_part, path)
    (device,) = _rows(
        path,
        "select min(anonymous_id) from intermediate.int_identity__event_records "
        "where source = 'web' and anonymous_id is not null and email is not null",
    )[0]
    with duckdb.connect(str(path)) as con:
        release(con)
        con.execute("delete from raw.web_events where trim(anonymous_id) = ?", [device])
    run_dbt(["run", "--full-refresh", "--select", "stg_web__events"], warehouse=path, echo=False)

    _build(path)

    assert _rows(
        path, "select count(*) from intermediate.int_identity__event_records where anonymous_id = ?", [device]
    ) == [(0,)]
    _compare_with_full_refresh(path, tmp_path)


def test_a_watermark_newer_than_every_staged_row_is_not_trusted(first_part: Path, tmp_path: Path):
    """Staging rebuilt on a machine whose clock is behind the last build's leaves staged_at older than
    profile_events' watermark: the build then looks every staged event up instead of missing the new ones."""
    path = tmp_path / "clock.duckdb"
    shutil.copy(first_part, path)
    with duckdb.connect(str(path)) as con:
        release(con)
        con.execute(f"update {WATERMARKS} set staged_at = timestamp '2999-01-01 00:00:00'")

    _build(path)

    _compare_with_full_refresh(path, tmp_path)


def test_staging_tables_from_before_staged_at_are_brought_up_to_date(first_part: Path, tmp_path: Path):
    """A warehouse built by a version without staged_at: its staged rows keep NULL, the first build looks
    every event up (there is no watermark yet) and stamps only what it stages."""
    path = tmp_path / "upgrade.duckdb"
    shutil.copy(first_part, path)
    with duckdb.connect(str(path)) as con:
        release(con)
        for table in STAGED_TABLES:
            con.execute(f"alter table staging.{table} drop column staged_at")
        con.execute(f"drop table {WATERMARKS}")
    _build(path)

    for table in STAGED_TABLES:
        unstamped, stamped = _rows(
            path, f"select count(*) filter (where staged_at is null), count(staged_at) from staging.{table}"
        )[0]
        assert unstamped > 0 and stamped > 0, table
    assert set(_watermarks(path)) == set(STAGED_TABLES)
    _compare_with_full_refresh(path, tmp_path)


def test_a_device_found_shared_later_leaves_its_profile_with_every_other_event(first_part: Path, tmp_path: Path):
    """A new page view puts a known device beside another person's email: the device is now shared (the
    over-merge guard) and belongs to no profile, so its former profile's events are deleted and attributed
    again. Those carrying only identifiers that did not move are found through the identifiers they were
    attributed by, and come back; the events carrying only the device resolve to nobody."""
    path = tmp_path / "shared.duckdb"
    shutil.copy(first_part, path)
    profile, device = _rows(
        path,
        "select devices.profile_id, min(devices.identifier_value) from profile_identifiers as devices "
        "inner join staging.stg_web__events as web on web.anonymous_id = devices.identifier_value "
        "where devices.identifier_type = 'anonymous_id' and (web.customer_id is not null or web.email is not null) "
        "group by devices.profile_id order by devices.profile_id limit 1",
    )[0]
    (other_email,) = _rows(
        path,
        "select min(identifier_value) from profile_identifiers where identifier_type = 'email' and profile_id <> ?",
        [profile],
    )[0]
    kept_events = _rows(
        path,
        "select count(*) from profile_events as events where events.profile_id = ? and events.source <> 'web'",
        [profile],
    )[0][0]
    with duckdb.connect(str(path)) as con:
        con.execute(
            "insert into raw.web_events (event_id, anonymous_id, email, event_type, properties, occurred_at, loaded_at) "
            "values ('late-shared-device-1', ?, ?, 'page_viewed', '{}', timestamp '2026-10-01 00:00:00', "
            "timestamp '2026-10-01 00:00:00')",
            [device, other_email],
        )

    _build(path)

    assert _rows(path, "select is_shared from identity_guard_decisions where identifier_value = ?", [device]) == [
        (True,)
    ]
    assert not _rows(path, "select profile_id from profile_identifiers where identifier_value = ?", [device])
    affected, everyone = _affected(path)
    assert not everyone and profile in affected
    assert (
        _rows(path, "select count(*) from profile_events where profile_id = ? and source <> 'web'", [profile])[0][0]
        == kept_events
    )
    _compare_with_full_refresh(path, tmp_path)
