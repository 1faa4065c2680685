"""Manual segments: `cdp segments …` end to end, on a copy of the session's built warehouse.

Every test copies the shared `built_warehouse` file (never writes to it), drives the CLI as
a user would, and checks what they see (messages, exit codes) and what lands in the
warehouse. The last tests build the two dbt models on the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from cdp import manual_segments as store
from cdp.manual_segments import names
from cdp.manual_segments import store as writes
from cli.main import main

# --------------------------------------------------------------------------- helpers


@pytest.fixture
def warehouse(tmp_path: Path, built_warehouse: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    return path


@pytest.fixture
def profile_ids(warehouse: Path) -> list[str]:
    """Six existing profile ids, in a stable order."""
    return [row[0] for row in _query(warehouse, "select profile_id from main.profiles order by profile_id limit 6")]


def _manifest(path: Path, *models: tuple[str, list[str], str]) -> Path:
    """A dbt manifest holding only these models: (name, tags, original_file_path)."""
    nodes = {
        f"model.cdp.{name}": {"resource_type": "model", "name": name, "tags": tags, "original_file_path": file}
        for name, tags, file in models
    }
    path.write_text(json.dumps({"nodes": nodes}))
    return path


@pytest.fixture(autouse=True)
def _no_dbt_segment_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names used here must not depend on which segment models the project has today."""
    empty = _manifest(tmp_path / "no_segment_models.json")
    monkeypatch.setattr(names, "fresh_manifest", lambda: empty)


def _query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _execute(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def run(warehouse: Path, *args: str, input: str | None = None, by: str | None = "alice"):
    """`cdp segments ARGS --warehouse W [--by alice]` as a user would type it."""
    command = ["segments", *args, "--warehouse", str(warehouse)]
    writes = args[0] in {"create", "add", "remove", "rename", "delete"}
    if by is not None and writes:
        command += ["--by", by]
    return CliRunner().invoke(main, command, input=input)


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def fails(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def members(warehouse: Path, name: str) -> list[str]:
    return ok(run(warehouse, "show", name, "--ids-only")).split()


def audit(warehouse: Path) -> list[tuple]:
    return _query(
        warehouse,
        "select action, actor, segment_name, profile_id, detail from manual_segments.audit_log order by changed_at, action, profile_id",
    )


# --------------------------------------------------------------------------- help and shape


def test_every_segments_command_has_help_text():
    runner = CliRunner()
    group = main.commands["segments"]
    assert {"create", "add", "remove", "rename", "delete", "list", "show", "history"} <= set(group.commands)
    for name, command in group.commands.items():
        assert command.help, f"`cdp segments {name}` has no help text"
        result = runner.invoke(main, ["segments", name, "--help"])
        assert result.exit_code == 0 and "--warehouse" in result.output, name


def test_tables_the_cli_creates_have_exactly_the_columns_the_dbt_source_declares(warehouse: Path):
    ok(run(warehouse, "create", "vip"))
    for spec in store.table_specs():
        columns = _query(
            warehouse,
            "select column_name, lower(data_type) from information_schema.columns "
            "where table_schema = 'manual_segments' and table_name = ? order by ordinal_position",
            [spec.name],
        )
        assert columns == [(name, data_type.lower()) for name, data_type in spec.columns], spec.name
    assert {spec.name for spec in store.table_specs()} == {"definitions", "members", "audit_log"}


# --------------------------------------------------------------------------- create, list, show, history


def test_create_then_list_show_and_history(warehouse: Path):
    out = ok(run(warehouse, "create", "vip_customers", "--description", "Hand-picked VIPs", "--owner", "crm-team"))
    assert "Created manual segment 'vip_customers' (owner crm-team)" in out

    listed = ok(run(warehouse, "list"))
    assert "vip_customers" in listed and "crm-team" in listed and "Hand-picked VIPs" in listed

    shown = ok(run(warehouse, "show", "vip_customers"))
    assert "vip_customers: Hand-picked VIPs — owner crm-team, 0 members" in shown
    assert "No members yet" in shown

    history = ok(run(warehouse, "history", "vip_customers"))
    assert "create" in history and "alice" in history
    assert audit(warehouse) == [
        ("create", "alice", "vip_customers", None, "owner crm-team; description: Hand-picked VIPs")
    ]


def test_owner_and_actor_default_to_the_os_user(warehouse: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOGNAME", "dana")
    ok(run(warehouse, "create", "vip", by=None))
    assert _query(warehouse, "select owner from manual_segments.definitions") == [("dana",)]
    assert audit(warehouse)[0][:2] == ("create", "dana")


def test_creating_a_segment_twice_fails_and_says_it_exists(warehouse: Path):
    ok(run(warehouse, "create", "vip", "--owner", "crm-team"))
    out = fails(run(warehouse, "create", "vip"))
    assert "A manual segment named 'vip' already exists (owner crm-team" in out
    assert len(_query(warehouse, "select * from manual_segments.definitions")) == 1


@pytest.mark.parametrize(
    "name",
    ["VIP", "vip list", "vip-list", "1vip", "_vip", "vip_", "vip__list", "vip.list", "é_vip", "v" * 64, ""],
)
def test_invalid_names_are_refused_with_the_rule(warehouse: Path, name: str):
    out = fails(run(warehouse, "create", name))
    assert "Invalid segment name" in out and "lower snake case" in out
    assert not _query(warehouse, "select * from manual_segments.definitions")


def test_a_name_may_be_63_characters_with_digits(warehouse: Path):
    ok(run(warehouse, "create", "v2_" + "x" * 60))


def test_a_name_taken_by_a_dbt_segment_model_is_refused(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    manifest = _manifest(
        tmp_path / "manifest.json",
        ("big_spenders", ["segment"], "models/segments/audiences/big_spenders.sql"),
        ("vip", [], "models/segments/manual/vip.sql"),  # a model, but not a segment model
    )
    monkeypatch.setattr(names, "fresh_manifest", lambda: manifest)

    out = fails(run(warehouse, "create", "big_spenders"))
    assert (
        "'big_spenders' is already the name of a dbt segment (dbt model models/segments/audiences/big_spenders.sql)"
        in out
    )
    ok(run(warehouse, "create", "vip"))
    assert "already the name of a dbt segment" in fails(run(warehouse, "rename", "vip", "big_spenders"))


def test_a_name_in_the_segments_table_is_refused(warehouse: Path):
    _execute(
        warehouse,
        "create or replace view main.segments as "
        "select 'churn_risk_high' as segment_name, 'predictive' as segment_type "
        "union all select 'my_manual', 'manual'",
    )
    out = fails(run(warehouse, "create", "churn_risk_high"))
    assert "'churn_risk_high' is already the name of a dbt segment (predictive segment in the segments table)" in out
    ok(run(warehouse, "create", "my_manual"))  # a manual row there is one of ours, not a dbt segment


def test_names_of_the_shipped_segments_are_refused(
    warehouse: Path, dbt_manifest: Path, monkeypatch: pytest.MonkeyPatch
):
    """The real project, read from its manifest: a segment model's name, and a segment a multi-segment model built."""
    monkeypatch.undo()  # the project's own manifest, as `cdp segments create` reads it
    out = fails(run(warehouse, "create", "rfm_champions"))
    assert (
        "'rfm_champions' is already the name of a dbt segment (dbt model models/segments/audiences/rfm_champions.sql)"
        in out
    )
    (cluster,) = _query(warehouse, "select min(segment_name) from main.segments where segment_type = 'cluster'")[0]
    out = fails(run(warehouse, "create", cluster))
    assert f"'{cluster}' is already the name of a dbt segment (cluster segment in the segments table)" in out
    ok(run(warehouse, "create", "segment_membership"))  # a model's name, but not a segment's


# --------------------------------------------------------------------------- add


def test_add_profiles_then_adding_them_again_changes_nothing_and_says_so(warehouse: Path, profile_ids: list[str]):
    a, b, c = profile_ids[:3]
    ok(run(warehouse, "create", "vip"))
    out = ok(run(warehouse, "add", "vip", a, b))
    assert "Added 2 profiles to 'vip' (2 members)" in out and "cdp build" in out
    assert sorted(members(warehouse, "vip")) == sorted([a, b])

    again = ok(run(warehouse, "add", "vip", a, b))
    assert "Nothing changed: all 2 profiles are already members of 'vip'." in again

    partly = ok(run(warehouse, "add", "vip", b, c, c))
    assert f"1 profile already a member, unchanged: {b}." in partly
    assert "Added 1 profile to 'vip' (3 members)" in partly
    assert [row[3] for row in audit(warehouse) if row[0] == "add"] == sorted([a, b]) + [c]

    listed = ok(run(warehouse, "list"))
    assert listed.split("vip")[1].split()[0] == "3"
    shown = ok(run(warehouse, "show", "vip"))
    first_seen = _query(warehouse, "select first_seen_at from main.profiles where profile_id = ?", [a])[0][0]
    assert a in shown and "alice" in shown and f"{first_seen:%Y-%m-%d}" in shown


def test_add_with_an_unknown_id_lists_it_and_adds_none_of_the_batch(warehouse: Path, profile_ids: list[str]):
    ok(run(warehouse, "create", "vip"))
    out = fails(run(warehouse, "add", "vip", profile_ids[0], "p_does_not_exist", "P_NOPE"))
    assert "2 profile ids are not in profiles: p_does_not_exist, P_NOPE. Nothing was added to 'vip'." in out
    assert members(warehouse, "vip") == []
    assert [row[0] for row in audit(warehouse)] == ["create"]


def test_add_reads_ids_from_a_file_and_from_stdin(warehouse: Path, profile_ids: list[str], tmp_path: Path):
    ok(run(warehouse, "create", "vip"))
    listing = tmp_path / "ids.txt"
    listing.write_text(f"# exported from the CRM\n{profile_ids[0]}\n\n  {profile_ids[1]}  \n")
    out = ok(run(warehouse, "add", "vip", profile_ids[2], "--from-file", str(listing)))
    assert "Added 3 profiles" in out
    ok(run(warehouse, "add", "vip", "--from-file", "-", input=f"{profile_ids[3]}\n{profile_ids[4]}\n"))
    assert sorted(members(warehouse, "vip")) == sorted(profile_ids[:5])


def test_add_without_ids_is_a_usage_error(warehouse: Path):
    ok(run(warehouse, "create", "vip"))
    result = run(warehouse, "add", "vip")
    assert result.exit_code == 2
    assert "Nothing to add: give profile ids as arguments or with --from-file." in result.output


def test_add_by_email_never_prints_the_addresses(warehouse: Path):
    rows = _query(
        warehouse,
        "select identifier_value, profile_id from main.profile_identifiers "
        "where identifier_type = 'email' order by identifier_value limit 2",
    )
    emails = [email for email, _ in rows]
    ok(run(warehouse, "create", "newsletter_vips"))

    missing = fails(run(warehouse, "add", "newsletter_vips", "--email", emails[0], "nobody@nowhere.invalid"))
    assert (
        "1 of 2 email addresses match no profile: #2 (positions in the order given; addresses are not shown). Nothing was added."
        in missing
    )
    assert "nobody@nowhere.invalid" not in missing and emails[0] not in missing
    assert members(warehouse, "newsletter_vips") == []

    # padded and upper-cased: normalised like staging does
    out = ok(run(warehouse, "add", "newsletter_vips", "--email", f"  {emails[0].upper()} ", emails[1]))
    assert "Added 2 profiles" in out
    assert all(email not in out for email in emails)
    assert sorted(members(warehouse, "newsletter_vips")) == sorted(pid for _, pid in rows)
    history = ok(run(warehouse, "history", "newsletter_vips"))
    assert "given as an email address" in history and all(email not in history for email in emails)
    assert all(email not in str(row) for row in audit(warehouse) for email in emails)


# --------------------------------------------------------------------------- remove


def test_remove_members_and_refuse_non_members_without_removing_anything(warehouse: Path, profile_ids: list[str]):
    a, b, c = profile_ids[:3]
    ok(run(warehouse, "create", "vip"))
    ok(run(warehouse, "add", "vip", a, b))

    out = fails(run(warehouse, "remove", "vip", a, c))
    assert f"1 profile id is not a member of 'vip': {c}. Nothing was removed." in out
    assert sorted(members(warehouse, "vip")) == sorted([a, b])

    out = ok(run(warehouse, "remove", "vip", a))
    assert "Removed 1 profile from 'vip' (1 members left)" in out
    assert members(warehouse, "vip") == [b]
    assert ("remove", "alice", "vip", a, None) in audit(warehouse)


# --------------------------------------------------------------------------- rename, delete


def test_rename_keeps_members_and_history(warehouse: Path, profile_ids: list[str]):
    a, b = profile_ids[:2]
    ok(run(warehouse, "create", "vip", "--owner", "crm-team"))
    ok(run(warehouse, "add", "vip", a, b))
    out = ok(run(warehouse, "rename", "vip", "vip_customers", by="bob"))
    assert "Renamed 'vip' to 'vip_customers' (2 members kept)" in out

    assert sorted(members(warehouse, "vip_customers")) == sorted([a, b])
    assert "No manual segment named 'vip'" in fails(run(warehouse, "show", "vip"))
    assert "vip_customers" in ok(run(warehouse, "list"))

    history = ok(run(warehouse, "history", "vip_customers"))
    assert "renamed from vip to vip_customers" in history and "bob" in history
    assert "2 profiles" in history  # the add made under the old name is still there, one row per command
    each = ok(run(warehouse, "history", "vip_customers", "--each"))
    assert a in each and b in each
    old_name = ok(run(warehouse, "history", "vip"))
    assert "Segment 'vip' is now named 'vip_customers'" in old_name
    assert [row[2] for row in audit(warehouse)] == ["vip", "vip", "vip", "vip_customers"]


def test_rename_errors(warehouse: Path):
    ok(run(warehouse, "create", "vip"))
    ok(run(warehouse, "create", "lapsed"))
    assert "A manual segment named 'lapsed' already exists" in fails(run(warehouse, "rename", "vip", "lapsed"))
    assert "No manual segment named 'ghost'" in fails(run(warehouse, "rename", "ghost", "spirit"))
    assert "Invalid segment name 'Lapsed VIPs'" in fails(run(warehouse, "rename", "vip", "Lapsed VIPs"))
    assert "already named 'vip'" in fails(run(warehouse, "rename", "vip", "vip"))
    assert sorted(row[0] for row in _query(warehouse, "select segment_name from manual_segments.definitions")) == [
        "lapsed",
        "vip",
    ]


def test_delete_asks_first_then_removes_segment_and_members_but_keeps_history(warehouse: Path, profile_ids: list[str]):
    ok(run(warehouse, "create", "vip"))
    ok(run(warehouse, "add", "vip", *profile_ids[:2]))

    declined = run(warehouse, "delete", "vip", input="n\n")
    assert declined.exit_code == 1 and "Delete manual segment 'vip' and its 2 members? [y/N]" in declined.output
    assert len(members(warehouse, "vip")) == 2

    out = ok(run(warehouse, "delete", "vip", "--yes"))
    assert "Deleted manual segment 'vip' (2 members removed)" in out
    assert "No manual segments yet" in ok(run(warehouse, "list"))
    assert _query(warehouse, "select count(*) from manual_segments.members") == [(0,)]

    history = ok(run(warehouse, "history", "vip"))
    assert "Segment 'vip' was deleted; its history:" in history
    assert "deleted with 2 members" in history and "segment deleted" in history
    assert ok(run(warehouse, "history", "vip", "--each")).count("segment deleted") == 2
    last = ok(run(warehouse, "history", "vip", "--limit", "1"))
    assert "(3 earlier rows not shown: --limit 0 shows all.)" in last
    assert "deleted with 2 members" in last and "create" not in last

    ok(run(warehouse, "create", "vip"))  # the name is free again, with a fresh history
    assert "delete" not in ok(run(warehouse, "history", "vip"))


@pytest.mark.parametrize(
    "command",
    [["add", "ghost", "p_x"], ["remove", "ghost", "p_x"], ["delete", "ghost", "--yes"], ["show", "ghost"]],
)
def test_commands_on_a_missing_segment_say_so(warehouse: Path, command: list[str]):
    ok(run(warehouse, "create", "vip"))
    out = fails(run(warehouse, *command))
    assert (
        "No manual segment named 'ghost'. `cdp segments list` shows them; `cdp segments create ghost` creates it."
        in out
    )


def test_history_of_a_name_never_used(warehouse: Path):
    ok(run(warehouse, "create", "vip"))
    assert "No manual segment named 'ghost', now or in the audit log." in fails(run(warehouse, "history", "ghost"))


# --------------------------------------------------------------------------- warehouse handling


def test_reading_a_warehouse_where_the_cli_never_ran_creates_nothing(warehouse: Path):
    assert "No manual segments yet. Create one with `cdp segments create NAME`." in ok(run(warehouse, "list"))
    assert "No manual segment named 'vip'" in fails(run(warehouse, "show", "vip"))
    assert not _query(warehouse, "select * from information_schema.schemata where schema_name = 'manual_segments'")


def test_a_missing_warehouse_file_is_reported(tmp_path: Path):
    out = fails(run(tmp_path / "nowhere.duckdb", "create", "vip"))
    assert "No warehouse at" in out and "cdp generate" in out
    assert not (tmp_path / "nowhere.duckdb").exists()


def test_a_locked_warehouse_is_reported_as_busy(warehouse: Path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        for command in (["create", "vip"], ["list"]):
            out = fails(run(warehouse, *command))
            assert "is busy: another process (a dbt build, a Dagster run, another cdp command) is writing to it" in out
            assert "retry when it has finished" in out
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    ok(run(warehouse, "create", "vip"))


def test_a_failure_halfway_through_a_write_leaves_nothing_behind(
    warehouse: Path, profile_ids: list[str], monkeypatch: pytest.MonkeyPatch
):
    ok(run(warehouse, "create", "vip"))

    def broken_audit(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writes, "_audit", broken_audit)
    result = run(warehouse, "add", "vip", *profile_ids[:3])
    assert isinstance(result.exception, RuntimeError)
    monkeypatch.undo()
    assert members(warehouse, "vip") == []  # the members were inserted before the audit failed, then rolled back
    assert [row[0] for row in audit(warehouse)] == ["create"]


# --------------------------------------------------------------------------- merges and dbt


def _merge(warehouse: Path, retired: str, surviving: str) -> None:
    """What identity resolution does when new data joins two people: retire one id."""
    _execute(
        warehouse,
        f"insert into main.profile_merges values ('{retired}', '{surviving}', timestamp '2026-11-01 00:00:00')",
        f"delete from main.profiles where profile_id = '{retired}'",
    )


def _dbt_build(warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *models: str) -> None:
    from cdp.dbt import run_dbt

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt_target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt_logs"))
    run_dbt(["build", "--select", *models], warehouse=warehouse, echo=False)


def _dbt_build_manual_models(warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dbt_build(warehouse, tmp_path, monkeypatch, "int_segments__manual_definitions", "int_segments__manual_members")


def test_members_follow_merges_in_the_cli_and_in_dbt(
    warehouse: Path, profile_ids: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    a, b, c, d, e = profile_ids[:5]
    ok(run(warehouse, "create", "vip"))
    ok(run(warehouse, "add", "vip", a, b, d))

    # later builds: a was merged into a retired id, which was merged into c (a chain); d was erased
    _merge(warehouse, a, "p_retired_between")
    _execute(
        warehouse,
        f"insert into main.profile_merges values ('p_retired_between', '{c}', timestamp '2026-11-02 00:00:00')",
    )
    _execute(warehouse, f"delete from main.profiles where profile_id = '{d}'")
    _dbt_build(warehouse, tmp_path, monkeypatch, "profile_merge_targets")  # what the next build flattens

    assert sorted(members(warehouse, "vip")) == sorted([b, c])
    shown = ok(run(warehouse, "show", "vip"))
    assert f"added as {a} (since merged)" in shown
    assert "not in profiles (erased?): dropped at the next build" in shown
    assert ok(run(warehouse, "list")).split("vip")[1].split()[0] == "2"
    assert "Nothing changed: the profile is already a member of 'vip'." in ok(run(warehouse, "add", "vip", c))

    # adding a retired id stores the surviving one, and says so
    ok(run(warehouse, "create", "lapsed"))
    out = ok(run(warehouse, "add", "lapsed", a, e))
    assert f"{a} was merged into {c}: using {c}." in out
    assert sorted(members(warehouse, "lapsed")) == sorted([c, e])
    assert _query(
        warehouse, "select profile_id from manual_segments.members where segment_name = 'lapsed' order by 1"
    ) == sorted([(c,), (e,)])
    assert "(varies: --each shows it)" in ok(run(warehouse, "history", "lapsed"))
    assert f"given as {a}, merged into {c}" in ok(run(warehouse, "history", "lapsed", "--each"))

    # removing by the retired id finds the member stored under the surviving one
    assert f"{a} was merged into {c}: using {c}." in ok(run(warehouse, "remove", "lapsed", a))
    assert members(warehouse, "lapsed") == [e]

    _dbt_build_manual_models(warehouse, tmp_path, monkeypatch)
    assert _query(
        warehouse, "select segment_name, profile_id from intermediate.int_segments__manual_members order by 1, 2"
    ) == sorted([("lapsed", e), ("vip", b), ("vip", c)])
    assert _query(warehouse, "select * from intermediate.int_segments__manual_definitions order by 1") == [
        ("lapsed", "manual", None, "alice"),
        ("vip", "manual", None, "alice"),
    ]


def test_dbt_builds_the_models_empty_where_the_cli_never_ran(built_warehouse: Path):
    """The session's warehouse had a full `dbt build` and no `cdp segments` command."""
    assert not _query(
        built_warehouse, "select * from information_schema.schemata where schema_name = 'manual_segments'"
    )
    assert _query(built_warehouse, "select count(*) from intermediate.int_segments__manual_definitions") == [(0,)]
    assert _query(built_warehouse, "select count(*) from intermediate.int_segments__manual_members") == [(0,)]


def test_dbt_sees_renames_and_deletes_after_the_next_build(
    warehouse: Path, profile_ids: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    ok(run(warehouse, "create", "vip", "--description", "Hand-picked", "--owner", "crm-team"))
    ok(run(warehouse, "create", "to_delete"))
    ok(run(warehouse, "add", "vip", *profile_ids[:2]))
    ok(run(warehouse, "add", "to_delete", profile_ids[2]))
    ok(run(warehouse, "rename", "vip", "vip_customers"))
    ok(run(warehouse, "delete", "to_delete", "--yes"))

    _dbt_build_manual_models(warehouse, tmp_path, monkeypatch)
    assert _query(warehouse, "select * from intermediate.int_segments__manual_definitions") == [
        ("vip_customers", "manual", "Hand-picked", "crm-team")
    ]
    assert _query(
        warehouse, "select segment_name, profile_id from intermediate.int_segments__manual_members order by 2"
    ) == [
        ("vip_customers", profile_ids[0]),
        ("vip_customers", profile_ids[1]),
    ]
