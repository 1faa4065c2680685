"""Automation: the raw-data sensor (its cursor, its selection, and that it never waits for a
writer), the default status of every schedule and sensor, the build-and-sync schedule's
setting, pause and resume from the CLI, and — end to end — new raw data reaching the
destination through the sensor and declarative automation with no sync called by hand."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from cdp import raw_watermarks
from cdp.contract import RAW_TABLES
from cdp.settings import BUILD_SCHEDULE_ENV_VAR, WAREHOUSE_ENV_VAR
from cdp.warehouse import connect
from cli.main import main
from destinations.sandbox import SandboxServer, demo_environment, emulators
from destinations.sandbox.webhook import WebhookSandbox


@pytest.fixture(scope="module")
def loaded_defs(dbt_manifest: Path) -> dg.Definitions:
    from orchestration.definitions import defs

    return defs()


@pytest.fixture
def raw_warehouse(generated_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the generated raw data, where CDP_WAREHOUSE points."""
    path = tmp_path / "watched.duckdb"
    shutil.copy(generated_warehouse, path)
    monkeypatch.setenv(WAREHOUSE_ENV_VAR, str(path))
    return path


def _sensor(loaded_defs: dg.Definitions) -> dg.SensorDefinition:
    return loaded_defs.get_sensor_def("raw_data_sensor")


def _tick(sensor: dg.SensorDefinition, cursor: str | None = None, instance: dg.DagsterInstance | None = None):
    return sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, instance=instance))


# --- which column tells that a raw table moved: said once, in the dbt sources -------------------


def test_every_raw_table_is_watched_by_its_contract_timestamp(dbt_manifest: Path):
    tables = raw_watermarks.raw_tables(json.loads(dbt_manifest.read_text()))
    assert sorted(tables) == sorted(RAW_TABLES), "the sensor watches exactly the contract's tables"
    for name, table in tables.items():
        timestamps = [column for column, data_type in RAW_TABLES[name] if data_type == "timestamp"]
        if table.timestamp_column is None:
            assert name == "shop_order_items", f"{name} has timestamps {timestamps}: give it a loaded_at_field"
        else:
            assert table.timestamp_column in timestamps, f"{name}: loaded_at_field is not a contract timestamp"
    assert tables["shop_orders"].timestamp_column == "ordered_at"
    assert tables["crm_contacts"].dbt_selector == "source:crm.crm_contacts"


# --- the raw-data sensor ------------------------------------------------------------------------


def test_the_sensor_records_a_starting_point_then_builds_what_depends_on_a_changed_table(
    loaded_defs, raw_warehouse: Path
):
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets

    sensor = _sensor(loaded_defs)
    first = _tick(sensor)
    assert not first.run_requests and "first look: 10 raw tables" in first.skip_message
    assert first.cursor and json.loads(first.cursor)["support_tickets"]["rows"] > 0

    unchanged = _tick(sensor, first.cursor)
    assert not unchanged.run_requests and unchanged.skip_message == "no new raw data since the last look"

    with connect(raw_warehouse) as con:
        con.execute(
            "insert into raw.support_tickets (ticket_id, email, category, status, opened_at) "
            "values ('t-new-1', 'someone@example.com', 'billing', 'open', timestamp '2026-10-31 23:59:00')"
        )
    changed = _tick(sensor, first.cursor)
    (request,) = changed.run_requests
    dbt_models = cdp_dbt_assets()
    selected = set(request.asset_selection)
    for model in ("stg_support__tickets", "profiles", "profile_attributes", "segments", "segment_membership"):
        assert get_asset_key_for_model([dbt_models], model) in selected, model
    for model in ("stg_shop__orders", "countries"):  # not downstream of support tickets
        assert get_asset_key_for_model([dbt_models], model) not in selected, model
    assert request.tags["cdp/changed_tables"] == "support_tickets"
    assert request.run_key.startswith("raw-")
    assert (
        json.loads(changed.cursor)["support_tickets"]["rows"] == json.loads(first.cursor)["support_tickets"]["rows"] + 1
    )
    # the same state of the raw tables is the same run key (Dagster starts it once)
    assert _tick(sensor, first.cursor).run_requests[0].run_key == request.run_key
    assert not _tick(sensor, changed.cursor).run_requests


def test_the_sensor_notices_a_newer_timestamp_without_new_rows(loaded_defs, raw_warehouse: Path):
    sensor = _sensor(loaded_defs)
    cursor = _tick(sensor).cursor
    with connect(raw_warehouse) as con:
        con.execute(
            "update raw.crm_contacts set updated_at = timestamp '2026-11-01 09:00:00' "
            "where contact_id = (select min(contact_id) from raw.crm_contacts)"
        )
    (request,) = _tick(sensor, cursor).run_requests
    assert request.tags["cdp/changed_tables"] == "crm_contacts"


def test_the_sensor_skips_without_waiting_while_another_process_writes_the_warehouse(loaded_defs, raw_warehouse: Path):
    sensor = _sensor(loaded_defs)
    cursor = _tick(sensor).cursor
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            'c.execute("insert into raw.support_tickets (ticket_id, category, status, opened_at) '
            "values ('t-held', 'x', 'open', now())\"); "
            "print('ready', flush=True); sys.stdin.read()",
            str(raw_warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        busy = _tick(sensor, cursor)
        assert time.monotonic() - started < 5, "the sensor waited for the writer"
        assert not busy.run_requests
        assert "is busy (another process is writing it)" in busy.skip_message and "cursor kept" in busy.skip_message
        assert busy.cursor == cursor, "a busy tick must keep the cursor"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # once the writer is gone, what it wrote is noticed
    (request,) = _tick(sensor, cursor).run_requests
    assert request.tags["cdp/changed_tables"] == "support_tickets"


def test_the_sensor_waits_quietly_for_a_warehouse_that_does_not_exist_yet(
    loaded_defs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(WAREHOUSE_ENV_VAR, str(tmp_path / "not_yet.duckdb"))
    tick = _tick(_sensor(loaded_defs))
    assert not tick.run_requests and "no warehouse at" in tick.skip_message
    assert not (tmp_path / "not_yet.duckdb").exists(), "a read-only look must not create the file"


# --- schedules and sensors: default status on purpose ---------------------------------------------


def test_every_schedule_and_sensor_starts_in_the_status_chosen_for_it(loaded_defs):
    """Only what reads the warehouse and builds it, and what only notifies, starts running;
    everything that sends to platforms (the automation of the syncs, every schedule) is
    switched on by a person."""
    repository = loaded_defs.get_repository_def()
    statuses = {schedule.name: schedule.default_status.value for schedule in repository.schedule_defs}
    statuses.update({sensor.name: sensor.default_status.value for sensor in repository.sensor_defs})
    sync_schedules = {name for name in statuses if name.startswith("sync_") and name.endswith("_schedule")}
    assert len(sync_schedules) >= 2 and {statuses[name] for name in sync_schedules} == {"STOPPED"}
    assert {name: status for name, status in statuses.items() if name not in sync_schedules} == {
        "raw_data_sensor": "RUNNING",
        "sync_automation": "STOPPED",
        "build_and_sync_schedule": "STOPPED",
        # alerts only notify a person
        "alert_on_run_failure": "RUNNING",
        "resolve_run_failure_alerts": "RUNNING",
        "alert_evaluations": "RUNNING",
    }


def test_syncs_follow_their_segment_by_declarative_automation(loaded_defs):
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets

    graph = loaded_defs.get_repository_def().asset_graph
    audience = graph.get(dg.AssetKey("audience_champions_to_webhook"))
    send = graph.get(dg.AssetKey("sync_champions_to_webhook"))
    assert audience.group_name == send.group_name == "syncs"
    assert get_asset_key_for_model([cdp_dbt_assets()], "rfm_champions") in audience.parent_keys
    assert audience.key in send.parent_keys
    assert {check.name for check in graph.get_check_keys_for_assets({audience.key})} == {
        "keys_unique_and_not_null",
        "audience_not_below_min_size",
        "audience_change_within_limits",
    }
    assert all(graph.get(check).blocking for check in graph.get_check_keys_for_assets({audience.key}))
    labels = str(send.automation_condition.get_label()) + repr(send.automation_condition)
    assert "eager" in labels and "all_deps_blocking_checks_passed" in labels
    assert audience.automation_condition is not None
    # the automation sensor evaluates exactly these assets
    sensor = loaded_defs.get_sensor_def("sync_automation")
    targeted = sensor.asset_selection.resolve(graph)
    assert targeted == {key for key in graph.get_all_asset_keys() if key.path[0].startswith(("audience_", "sync_"))} - {
        get_asset_key_for_model([cdp_dbt_assets()], "sync_profile_fields")
    }


def test_the_build_and_sync_schedule_reads_its_cron_from_a_setting(dbt_manifest, monkeypatch: pytest.MonkeyPatch):
    from orchestration.automation import build_and_sync_schedule
    from orchestration.dbt_assets import cdp_dbt_assets
    from orchestration.sync_assets import build_sync_definitions

    dbt_models = cdp_dbt_assets()
    sync_assets, _ = build_sync_definitions()
    monkeypatch.delenv(BUILD_SCHEDULE_ENV_VAR, raising=False)
    hourly = build_and_sync_schedule(dbt_models, sync_assets)
    assert hourly.cron_schedule == "0 * * * *"
    selected = {key.path[-1] for key in hourly.job.selection.resolve([dbt_models, *sync_assets])}
    assert {"profiles", "sync_champions_to_webhook", "audience_churn_risk_to_webhook"} <= selected

    monkeypatch.setenv(BUILD_SCHEDULE_ENV_VAR, "*/15 * * * *")
    assert build_and_sync_schedule(dbt_models, sync_assets).cron_schedule == "*/15 * * * *"
    monkeypatch.setenv(BUILD_SCHEDULE_ENV_VAR, "every hour")
    with pytest.raises(ValueError, match=f"{BUILD_SCHEDULE_ENV_VAR}='every hour' is not a valid cron expression"):
        build_and_sync_schedule(dbt_models, sync_assets)


# --- pause and resume from the CLI ----------------------------------------------------------------


def test_cdp_sync_pause_and_resume(dbt_manifest, built_warehouse: Path, tmp_path: Path, monkeypatch):
    warehouse = tmp_path / "pause.duckdb"
    shutil.copy(built_warehouse, warehouse)
    at = ["--warehouse", str(warehouse)]
    runner = CliRunner()
    with WebhookSandbox() as sandbox:
        monkeypatch.setenv("CDP_SANDBOX_URL", sandbox.origin)
        monkeypatch.setenv("CDP_DEMO_WEBHOOK_SECRET", sandbox.secret)

        paused = runner.invoke(main, ["sync", "champions_to_webhook", "--pause", "--reason", "campaign on hold", *at])
        assert paused.exit_code == 0, paused.output
        assert "champions_to_webhook: paused" in paused.output
        listing = runner.invoke(main, ["syncs", *at])
        line = next(line for line in listing.output.splitlines() if "champions_to_webhook" in line)
        assert "paused" in line
        assert "paused" not in next(line for line in listing.output.splitlines() if "churn_risk_to_webhook" in line)

        refused = runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", *at])
        assert refused.exit_code == 4, refused.output
        assert "is paused" in refused.output and "campaign on hold" in refused.output
        assert sandbox.requests == []
        with connect(warehouse, read_only=True) as con:
            assert con.execute(
                "select status from cdp_sync.runs where sync_name = 'champions_to_webhook'"
            ).fetchall() == [("paused",)]

        resumed = runner.invoke(main, ["sync", "champions_to_webhook", "--resume", *at])
        assert resumed.exit_code == 0 and "resumed" in resumed.output
        sent = runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", *at])
        assert sent.exit_code == 0, sent.output
        assert len(sandbox.state) > 0

    misuse = runner.invoke(main, ["sync", "champions_to_webhook", "--pause", "--dry-run", *at])
    assert misuse.exit_code == 2 and "does not run the sync" in misuse.output
    unknown = runner.invoke(main, ["sync", "no_such_sync", "--pause", *at])
    assert unknown.exit_code == 1 and "no sync named 'no_such_sync'" in unknown.output


# --- end to end: raw data in, destinations changed, nobody calling a sync -------------------------

CHAMPIONS_DESIRED = """
    select f.email
    from segment_membership m
    join sync_profile_fields f using (profile_id)
    where m.segment_name = 'rfm_champions' and f.has_email_marketing_consent and not f.is_deletion_requested
    order by 1
"""


@pytest.mark.slow
def test_new_raw_data_reaches_the_destination_through_the_sensor_and_automation(
    dbt_manifest, generated_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The whole graph materialised in-process against a temporary warehouse and the sandbox;
    then a consent revocation and a deletion request land in raw; the raw-data sensor asks for
    a build, declarative automation asks for the syncs, and the destination ends up matching."""
    from orchestration.definitions import defs

    warehouse = tmp_path / "automation.duckdb"
    shutil.copy(generated_warehouse, warehouse)
    monkeypatch.setenv(WAREHOUSE_ENV_VAR, str(warehouse))
    with SandboxServer(emulators()) as server:  # every platform the shipped syncs reach, as `cdp demo` runs them
        for variable, value in demo_environment(server.ready_document()).items():
            monkeypatch.setenv(variable, value)
        sandbox = server.emulators["webhook"]
        definitions = defs()
        instance = dg.DagsterInstance.ephemeral()

        def run(selection=None, tags=None) -> dg.ExecuteInProcessResult:
            result = dg.materialize(
                list(definitions.assets),
                resources=definitions.resources,
                instance=instance,
                selection=selection,
                tags=tags,
                raise_on_error=False,
            )
            failed = [event.step_key for event in result.all_events if event.is_step_failure]
            assert result.success, f"steps failed: {failed}"
            return result

        # 1. the whole graph: dbt build, every audience checked, every sync sent
        run()
        with connect(warehouse, read_only=True) as con:
            champions = [row[0] for row in con.execute(CHAMPIONS_DESIRED).fetchall()]
        held_emails = sorted(key for key in sandbox.state if "@" in key)
        assert held_emails == champions and len(champions) > 2
        # a sync measured by an experiment (the churn sync's holdout) shows its lift in the UI
        with connect(warehouse, read_only=True) as con:
            members, in_window = con.execute(
                "select members, members_in_window from main.experiment_lift "
                "where experiment = 'churn_risk_to_webhook' and is_control"
            ).fetchall()[0]
        event = instance.get_latest_materialization_event(dg.AssetKey("sync_churn_risk_to_webhook"))
        lift = event.asset_materialization.metadata["lift"].value
        assert lift.startswith("**churn_risk_to_webhook**") and f"| control | {members:,} | {in_window:,} |" in lift

        # 2. both automations look once: everything is current, nothing is asked for
        sensor = definitions.get_sensor_def("raw_data_sensor")
        baseline = _tick(sensor, instance=instance)
        assert not baseline.run_requests
        automation = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        assert automation.total_requested == 0

        # 3. new raw data: one champion revokes email consent, another asks to be deleted
        revoker, deleter = champions[0], champions[1]
        with connect(warehouse) as con:
            con.execute(
                "insert into raw.consent_events "
                "(identifier_type, identifier_value, purpose, granted, recorded_at, source) values "
                "('email', ?, 'email_marketing', false, timestamp '2026-10-31 23:50:00', 'preference_centre')",
                [revoker],
            )
            con.execute(
                "insert into raw.deletion_requests (request_id, identifier_type, identifier_value, requested_at) "
                "values ('del-auto-1', 'email', ?, timestamp '2026-10-31 23:55:00')",
                [deleter],
            )

        # 4. the sensor notices and asks for a build of what depends on those tables
        noticed = _tick(sensor, baseline.cursor, instance=instance)
        (request,) = noticed.run_requests
        assert request.tags["cdp/changed_tables"] == "consent_events,deletion_requests"
        dbt_keys = set(definitions.get_assets_def(dg.AssetKey("profiles")).keys)
        assert set(request.asset_selection) <= dbt_keys, "the sensor builds; it never asks for a sync"
        run(selection=request.asset_selection, tags=request.tags)

        # 5. declarative automation asks for every sync whose segment or fields were rebuilt
        automation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=automation.cursor)
        # (consent and deletion feed sync_profile_fields, which every sync reads: all of them follow)
        keys = [
            spec.key
            for assets in definitions.assets
            for spec in assets.specs
            if spec.group_name == "syncs" and spec.key not in dbt_keys  # not the dbt models of models/syncs/
        ]
        assert {"audience_champions_to_webhook", "sync_champions_to_webhook", "sync_lapsed_to_meta"} <= {
            key.path[-1] for key in keys
        }
        assert {key.path[-1]: automation.get_num_requested(key) for key in keys} == {key.path[-1]: 1 for key in keys}
        assert automation.total_requested == len(keys)
        assert sandbox.state.get(revoker) is not None, "nothing may be sent before automation runs the syncs"
        run(selection=keys)

    with connect(warehouse, read_only=True) as con:
        desired = [row[0] for row in con.execute(CHAMPIONS_DESIRED).fetchall()]
    assert revoker not in desired and deleter not in desired
    assert sorted(key for key in sandbox.state if "@" in key) == desired
