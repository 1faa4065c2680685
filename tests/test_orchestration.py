"""Dagster loads the project and materialises the dbt assets for real; importing the
definitions does nothing; the asset graph (keys, groups, owners, lineage) matches its snapshot;
`cdp dev`, started as README says, serves every asset over the webserver's own API."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ui_server import assert_one_location_loaded, free_port, start, stop_process_group, wait_for_code_locations

from cdp.settings import REPO_ROOT, WAREHOUSE_ENV_VAR
from cdp.warehouse import connect

#: Every asset key, its group, its owners and its upstream keys. Regenerate after a deliberate change:
#: UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_orchestration.py -k snapshot
ASSET_GRAPH_SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"

#: The views over the segment registry (read without `ref`, so dbt's graph shows no segment upstream).
REGISTRY_VIEWS = ("segments", "segment_membership", "segment_membership_history")


@pytest.fixture(scope="module")
def loaded_defs(dbt_manifest: Path):
    """The Definitions, loaded the way Dagster loads them: by calling the `@dg.definitions` function."""
    from orchestration.definitions import defs

    return defs()


def test_dagster_definitions_validate(dbt_manifest: Path):
    """`dagster definitions validate` on workspace.yaml, as CI and `dagster dev` load it."""
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in (result.stdout + result.stderr)


def test_definitions_hold_every_dbt_model_and_test_as_assets_and_checks(loaded_defs):
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets

    cdp_dbt_models = cdp_dbt_assets()
    graph = loaded_defs.get_repository_def().asset_graph
    keys = set(graph.get_all_asset_keys())
    for model in ("profiles", "profile_identifiers", "profile_merges", "stg_crm__contacts", "identity_guard_decisions"):
        assert get_asset_key_for_model([cdp_dbt_models], model) in keys, f"{model} missing from Dagster assets"
    profiles = get_asset_key_for_model([cdp_dbt_models], "profiles")
    # dbt tests became asset checks on the model they test
    assert any(check.asset_key == profiles for check in graph.asset_check_keys)
    # assets are grouped by their dbt folder
    assert graph.get(profiles).group_name == "profiles"
    assert graph.get(get_asset_key_for_model([cdp_dbt_models], "stg_web__events")).group_name == "staging"


def test_materialise_dbt_assets_against_a_temporary_warehouse(
    dbt_manifest: Path, generated_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import dagster as dg
    from dagster_dbt import DbtCliResource

    from cdp.dbt import dbt_executable
    from orchestration.dbt_assets import cdp_dbt_assets
    from orchestration.project import cdp_dbt_project

    cdp_dbt_models = cdp_dbt_assets()
    warehouse = tmp_path / "dagster.duckdb"
    shutil.copy(generated_warehouse, warehouse)
    monkeypatch.setenv(WAREHOUSE_ENV_VAR, str(warehouse))

    result = dg.materialize(
        [cdp_dbt_models],
        resources={"dbt": DbtCliResource(project_dir=cdp_dbt_project(), dbt_executable=dbt_executable())},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    from dagster_dbt import get_asset_key_for_model

    materialised = {event.asset_key for event in result.get_asset_materialization_events()}
    for model in ("profiles", "profile_identifiers", "stg_web__events"):
        assert get_asset_key_for_model([cdp_dbt_models], model) in materialised, model
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks), [c.check_name for c in checks if not c.passed]
    with connect(warehouse, read_only=True) as con:
        (profiles,) = con.execute("select count(*) from profiles").fetchall()[0]
    assert profiles > 0
    assert os.environ[WAREHOUSE_ENV_VAR] == str(warehouse)


# --- importing the definitions does nothing -------------------------------------------------

#: Run in a fresh interpreter: import orchestration.definitions and report every environment
#: variable it changed and every file it opened, created or removed and process it started.
#: dagster and dagster_dbt are imported first: what those libraries do at their own import is
#: theirs; what happens after is ours. Loading our own modules opens .py/.pyc files: allowed.
_IMPORT_PROBE = r"""
import json, os, sys
import dagster, dagster_dbt

WATCHED = {"open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.putenv", "os.unsetenv",
           "os.system", "os.exec", "os.posix_spawn", "os.fork", "subprocess.Popen", "shutil.copyfile", "shutil.rmtree"}
MODULE_FILES = (".py", ".pyc", ".so")
events = []

def record(event, args):
    if event not in WATCHED:
        return
    if event == "open" and isinstance(args[0], str) and args[0].endswith(MODULE_FILES):
        return
    events.append([event, *[str(arg) for arg in args[:2]]])

environment = dict(os.environ)
sys.addaudithook(record)
import orchestration.definitions
changed = sorted(name for name in set(environment) | set(os.environ) if environment.get(name) != os.environ.get(name))
print("PROBE " + json.dumps({"changed_env": changed, "events": events}))
"""


@pytest.mark.parametrize("under_dagster_dev", [False, True], ids=["plain_import", "as_dagster_dev_loads_it"])
def test_importing_the_definitions_changes_no_environment_and_opens_no_file(under_dagster_dev: bool):
    env = {name: value for name, value in os.environ.items() if name not in {WAREHOUSE_ENV_VAR, "DAGSTER_IS_DEV_CLI"}}
    if under_dagster_dev:
        env["DAGSTER_IS_DEV_CLI"] = "1"  # what `dagster dev` sets in its code server
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (
        f"importing orchestration.definitions failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("PROBE ")]
    probe = json.loads(line.removeprefix("PROBE "))
    assert probe["changed_env"] == [], f"importing changed environment variables: {probe['changed_env']}"
    assert probe["events"] == [], "importing touched files or started processes:\n" + "\n".join(
        map(str, probe["events"])
    )


# --- the asset graph: keys, groups, lineage -------------------------------------------------


def _asset_graph(defs) -> dict[str, dict]:
    """Every asset key with its group, owners and upstream keys, as plain data."""
    graph = defs.get_repository_def().asset_graph
    return {
        key.to_user_string(): {
            "group": graph.get(key).group_name,
            "owners": list(graph.get(key).owners),
            "deps": sorted(parent.to_user_string() for parent in graph.get(key).parent_keys),
        }
        for key in sorted(graph.get_all_asset_keys())
    }


def _describe_difference(live: dict[str, dict], snapshot: dict[str, dict]) -> str:
    lines = [f"+ {key} (new)" for key in sorted(set(live) - set(snapshot))]
    lines += [f"- {key} (gone)" for key in sorted(set(snapshot) - set(live))]
    for key in sorted(set(live) & set(snapshot)):
        if live[key] != snapshot[key]:
            lines.append(f"~ {key}: snapshot {snapshot[key]} != live {live[key]}")
    return "\n".join(lines)


def test_asset_keys_groups_and_dependencies_match_the_snapshot(loaded_defs):
    live = _asset_graph(loaded_defs)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        ASSET_GRAPH_SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        ASSET_GRAPH_SNAPSHOT.write_text(json.dumps(live, indent=2, sort_keys=True) + "\n")
    assert ASSET_GRAPH_SNAPSHOT.exists(), f"no snapshot at {ASSET_GRAPH_SNAPSHOT}: run with UPDATE_SNAPSHOTS=1"
    snapshot = json.loads(ASSET_GRAPH_SNAPSHOT.read_text())
    assert live == snapshot, (
        "The asset graph differs from tests/snapshots/asset_graph.json. If the change is intended, regenerate it:\n"
        "  UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_orchestration.py -k snapshot\n"
        + _describe_difference(live, snapshot)
    )


def test_every_model_seed_and_sync_shows_a_group_an_owner_and_a_description(loaded_defs, dbt_manifest: Path):
    """What `cdp dev` shows on each asset: dbt models and seeds take group and owner from their dbt
    group (models/_groups.yml, `+group` per folder), segment models add their team
    (meta.segment.owner), sync assets their exposure's owner.email."""
    import dagster as dg
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets

    manifest = json.loads(dbt_manifest.read_text())
    ungrouped = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in {"model", "seed"} and not node["config"].get("group")
    )
    assert not ungrouped, f"give these a group (+group in dbt_project.yml, owner in models/_groups.yml): {ungrouped}"

    graph = loaded_defs.get_repository_def().asset_graph
    dbt_models = cdp_dbt_assets()
    dbt_keys = set(dbt_models.keys)
    sync_keys = {key for key in graph.get_all_asset_keys() if graph.get(key).group_name == "syncs"} - dbt_keys
    assert len(sync_keys) >= 2 * 6, sorted(key.to_user_string() for key in sync_keys)
    for key in sorted(dbt_keys | sync_keys):
        node = graph.get(key)
        assert node.group_name not in {None, "default"}, f"{key.to_user_string()} has no group"
        assert node.owners, f"{key.to_user_string()} has no owner"
        assert node.description, f"{key.to_user_string()} has no description"

    lapsed = graph.get(get_asset_key_for_model([dbt_models], "lapsed_customers"))
    assert (lapsed.group_name, list(lapsed.owners)) == (
        "segments",
        ["marketing-analytics@example.com", "team:retention-team"],
    )
    assert lapsed.description.startswith("Customers in the lapsed lifecycle stage")
    profiles = graph.get(get_asset_key_for_model([dbt_models], "profiles"))
    assert list(profiles.owners) == ["data-engineering@example.com"]
    manual = graph.get(get_asset_key_for_model([dbt_models], "manual_segments"))
    assert list(manual.owners) == ["marketing-analytics@example.com"], "manual lists name their owners per list"
    for key in ("audience_lapsed_to_meta", "sync_lapsed_to_meta"):
        assert list(graph.get(dg.AssetKey(key)).owners) == ["retention@example.com"], key


def test_every_check_schedule_and_sensor_is_defined(loaded_defs):
    """The UI's Automation page lists these; the checks sit on their assets."""
    import dagster as dg

    from destinations.audience_checks import CHECKS

    repository = loaded_defs.get_repository_def()
    schedules = {schedule.name for schedule in repository.schedule_defs}
    sensors = {sensor.name for sensor in repository.sensor_defs}
    assert {"build_and_sync_schedule", "sync_champions_to_webhook_schedule"} <= schedules, schedules
    assert {
        "raw_data_sensor",
        "sync_automation",
        "alert_on_run_failure",
        "resolve_run_failure_alerts",
        "alert_evaluations",
    } <= sensors, sensors
    checks = repository.asset_graph.asset_check_keys
    audience_checks = {check.name for check in checks if check.asset_key == dg.AssetKey("audience_lapsed_to_meta")}
    assert audience_checks == set(CHECKS), audience_checks


def test_every_segment_model_is_upstream_of_each_registry_view(loaded_defs, dbt_manifest: Path):
    """Segment models register through a post-hook, so dbt has no edge to the registry views;
    the translator restores it for every model under models/segments/audiences/."""
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets

    manifest = json.loads(dbt_manifest.read_text())
    audiences = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/segments/audiences/")
    )
    assert len(audiences) >= 10 and "manual_segments" in audiences, audiences
    graph = loaded_defs.get_repository_def().asset_graph
    dbt_models = cdp_dbt_assets()
    for view in REGISTRY_VIEWS:
        parents = graph.get(get_asset_key_for_model([dbt_models], view)).parent_keys
        missing = [model for model in audiences if get_asset_key_for_model([dbt_models], model) not in parents]
        assert not missing, f"{view} does not list these segment models upstream: {missing}"
    # and only segment models were added: profiles is not a parent of `segments`
    segments_parents = graph.get(get_asset_key_for_model([dbt_models], "segments")).parent_keys
    assert get_asset_key_for_model([dbt_models], "profiles") not in segments_parents


def test_registry_view_events_follow_every_other_event_of_the_build():
    """dbt may build a registry view before a segment model; Dagster gets the view's events after."""
    import dagster as dg

    from orchestration.dbt_assets import _registry_views_last

    views = {dg.AssetKey("segments")}
    key_by_output = {"segments": dg.AssetKey("segments"), "rfm_champions": dg.AssetKey("rfm_champions")}
    view_built = dg.Output(None, output_name="segments")
    view_tested = dg.AssetCheckResult(asset_key=dg.AssetKey("segments"), check_name="unique_segment_name", passed=True)
    segment_built = dg.Output(None, output_name="rfm_champions")
    stream = [view_built, view_tested, segment_built]
    assert list(_registry_views_last(stream, views, key_by_output)) == [segment_built, view_built, view_tested]

    def failing_build():
        yield view_built
        yield segment_built
        raise RuntimeError("dbt build failed")

    seen = []
    with pytest.raises(RuntimeError, match="dbt build failed"):
        for event in _registry_views_last(failing_build(), views, key_by_output):
            seen.append(event)
    assert seen == [segment_built, view_built], "a failed build still reports the views it built"


def test_the_manual_segment_selector_makes_a_new_list_visible(built_warehouse: Path, tmp_path: Path):
    """The demo's rebuild after creating a manual list (one named dbt selector) brings the list
    into `segments` and `segment_membership`."""
    from click.testing import CliRunner

    from cdp.dbt import run_dbt
    from cli.demo import MANUAL_SEGMENTS_SELECTOR
    from cli.main import main

    warehouse = tmp_path / "selector.duckdb"
    shutil.copy(built_warehouse, warehouse)
    with connect(warehouse, read_only=True) as con:
        members = [
            row[0] for row in con.execute("select profile_id from profiles order by profile_id limit 3").fetchall()
        ]
    runner = CliRunner()
    for args in (["create", "selector_check", "--owner", "tests"], ["add", "selector_check", *members]):
        result = runner.invoke(main, ["segments", *args, "--warehouse", str(warehouse)])
        assert result.exit_code == 0, result.output
    run_dbt(["build", "--selector", MANUAL_SEGMENTS_SELECTOR], warehouse=warehouse, echo=False)
    with connect(warehouse, read_only=True) as con:
        assert con.execute(
            "select segment_type, member_count from segments where segment_name = 'selector_check'"
        ).fetchall() == [("manual", 3)]
        assert sorted(
            row[0]
            for row in con.execute(
                "select profile_id from segment_membership where segment_name = 'selector_check'"
            ).fetchall()
        ) == sorted(members)


# --- one manifest ---------------------------------------------------------------------------


def test_the_manifest_is_stale_when_a_project_file_is_added_changed_or_removed(tmp_path: Path):
    """The rule behind fresh_manifest (the one way every caller gets a manifest)."""
    from cdp.dbt import _is_stale

    project = tmp_path / "project"
    models = project / "models"
    models.mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: x\n")
    (models / "a.sql").write_text("select 1 as id\n")
    manifest = tmp_path / "target" / "manifest.json"
    assert _is_stale(manifest, project), "there is no manifest yet"

    def parsed_after_every_file() -> None:
        for path in [project, *project.rglob("*")]:
            os.utime(path, (time.time() - 100, time.time() - 100))
        manifest.parent.mkdir(exist_ok=True)
        manifest.write_text("{}")
        os.utime(manifest, (time.time() - 50, time.time() - 50))

    parsed_after_every_file()
    assert not _is_stale(manifest, project)
    (project / "logs").mkdir()  # dbt's own output does not count
    (project / "logs" / "dbt.log").write_text("parsed\n")
    assert not _is_stale(manifest, project)
    changes = {
        "a model changed": lambda: (models / "a.sql").write_text("select 2 as id\n"),
        "a model added": lambda: (models / "b.sql").write_text("select 3 as id\n"),
        "a model removed": lambda: (models / "a.sql").unlink(),
        "a selector file added": lambda: (project / "selectors.yml").write_text("selectors: []\n"),
    }
    for change, make in changes.items():
        parsed_after_every_file()
        make()
        assert _is_stale(manifest, project), f"the manifest should be stale after {change}"


# --- `cdp dev`, as README tells a user to start it ------------------------------------------


def test_cdp_dev_binds_the_ui_to_loopback_unless_told_otherwise():
    from cli.main import dagster_dev_args

    assert dagster_dev_args(("-p", "3001")) == ["-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3001"]
    for host in (("--host", "0.0.0.0"), ("-h", "0.0.0.0"), ("--host=0.0.0.0",), ("--dagit-host", "0.0.0.0")):
        args = dagster_dev_args(host)
        assert "127.0.0.1" not in args and args[-len(host) :] == list(host)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals are POSIX")
def test_cdp_dev_as_readme_says_loads_the_code_location_with_every_asset(loaded_defs, tmp_path: Path):
    """`.venv/bin/cdp dev` from the repository root, the virtualenv NOT activated (so no `dbt`
    on PATH), a fresh Dagster home and no manifest yet: the UI's one code location loads, with
    every asset the definitions hold, and the webserver listens on loopback only."""
    venv_bin = Path(sys.executable).parent
    cdp = venv_bin / "cdp"
    assert cdp.exists(), f"no cdp beside {sys.executable}: install the project (pip install -e .)"
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() != venv_bin.resolve()
    ]
    env = {name: value for name, value in os.environ.items() if name not in {"VIRTUAL_ENV", "DAGSTER_IS_DEV_CLI"}}
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    env.update(
        PATH=os.pathsep.join(path),
        DAGSTER_HOME=str(dagster_home),
        CDP_WAREHOUSE=str(tmp_path / "ui.duckdb"),
        # a target folder with no manifest in it, as in a fresh clone
        DBT_TARGET_PATH=str(tmp_path / "dbt_target"),
    )
    expected = {tuple(key.path) for key in loaded_defs.get_repository_def().asset_graph.get_all_asset_keys()}
    port = free_port()
    log = tmp_path / "cdp-dev.log"
    process = start([str(cdp), "dev", "-p", str(port)], cwd=REPO_ROOT, env=env, log=log)
    try:
        location = assert_one_location_loaded(wait_for_code_locations(process, port, log), log)
        served = {tuple(node["assetKey"]["path"]) for repo in location["repositories"] for node in repo["assetNodes"]}
        missing = sorted(expected - served)
        assert not missing, f"the UI lacks {len(missing)} of {len(expected)} assets: {missing[:20]}"
        assert (tmp_path / "dbt_target" / "manifest.json").exists(), "the manifest was not parsed into DBT_TARGET_PATH"

        # loopback only: another local address gets no answer (on Linux all of 127/8 is local)
        if sys.platform.startswith("linux"):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.2", port), timeout=5).close()
    finally:
        stop_process_group(process)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
