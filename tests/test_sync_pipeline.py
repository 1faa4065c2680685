"""Syncs end to end on a dbt-built warehouse: the shipped exposures, `cdp sync` / `cdp syncs`,
the Dagster sync assets, and consent revocations and deletion requests turning into
removals at the destination (DESIGN invariant 8)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdp.dbt import run_dbt
from cdp.warehouse import connect
from cli.main import main
from destinations.sandbox.webhook import Fault, WebhookSandbox


@pytest.fixture
def warehouse(built_warehouse: Path, tmp_path: Path) -> Path:
    path = tmp_path / "sync.duckdb"
    shutil.copy(built_warehouse, path)
    return path


@pytest.fixture
def demo_webhook(monkeypatch: pytest.MonkeyPatch):
    """The demo destination of destinations.yml, served by a local sandbox."""
    with WebhookSandbox() as sandbox:
        monkeypatch.setenv("CDP_SANDBOX_URL", sandbox.origin)
        monkeypatch.setenv("CDP_DEMO_WEBHOOK_SECRET", sandbox.secret)
        yield sandbox


def _query(path: Path, sql: str) -> list[tuple]:
    with connect(path, read_only=True) as con:
        return con.execute(sql).fetchall()


CHAMPIONS_DESIRED = """
    select f.email
    from segment_membership m
    join sync_profile_fields f using (profile_id)
    where m.segment_name = 'rfm_champions' and f.has_email_marketing_consent and not f.is_deletion_requested
    order by 1
"""


def test_cdp_sync_dry_run_then_sync_then_list(dbt_manifest, warehouse: Path, demo_webhook: WebhookSandbox):
    runner = CliRunner()
    dry = runner.invoke(main, ["sync", "champions_to_webhook", "--dry-run", "--warehouse", str(warehouse)])
    assert dry.exit_code == 0, dry.output
    assert "champions_to_webhook: dry_run" in dry.output and demo_webhook.requests == []
    desired = [row[0] for row in _query(warehouse, CHAMPIONS_DESIRED)]
    assert desired, "the sample should have consenting champions"

    result = runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert "champions_to_webhook: succeeded" in result.output
    assert sorted(demo_webhook.state) == desired
    record = demo_webhook.state[desired[0]]
    assert set(record["fields"]) == {"first_name", "lifetime_value", "rfm_segment"}
    assert record["fields"]["rfm_segment"] == "Champions"

    listing = runner.invoke(main, ["syncs", "--warehouse", str(warehouse)])
    assert listing.exit_code == 0, listing.output
    line = next(line for line in listing.output.splitlines() if "champions_to_webhook" in line)
    assert "succeeded" in line and f"{len(desired):,}" in line
    churn_line = next(line for line in listing.output.splitlines() if "churn_risk_to_webhook" in line)
    assert "never" in churn_line


def test_cdp_sync_reports_a_stopped_or_failed_run_with_its_exit_code(dbt_manifest, warehouse: Path, demo_webhook):
    runner = CliRunner()
    assert (
        runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)]).exit_code == 0
    )
    with connect(warehouse) as con:  # the segment empties: the guard must stop the next run
        con.execute("delete from segment_registry_members where segment_name = 'rfm_champions'")
    stopped = runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)])
    assert stopped.exit_code == 3, stopped.output
    assert "has no profiles to send" in stopped.output and len(demo_webhook.state) > 0

    unknown = runner.invoke(main, ["sync", "no_such_sync", "--warehouse", str(warehouse)])
    assert unknown.exit_code == 1 and "no sync named 'no_such_sync'" in unknown.output

    demo_webhook.inject(*[Fault.status(503)] * 10)
    failed = runner.invoke(main, ["sync", "champions_to_webhook", "--force", "--quiet", "--warehouse", str(warehouse)])
    assert failed.exit_code == 1 and "failed" in failed.output and "HTTP 503" in failed.output


def test_revoked_consent_and_deletion_requests_become_removals(dbt_manifest, warehouse: Path, demo_webhook):
    runner = CliRunner()
    assert (
        runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)]).exit_code == 0
    )
    synced = sorted(demo_webhook.state)
    revoker, deleter = synced[0], synced[1]
    with connect(warehouse) as con:
        con.execute(
            "insert into raw.consent_events (identifier_type, identifier_value, purpose, granted, recorded_at, source) "
            "values ('email', ?, 'email_marketing', false, timestamp '2026-10-31 12:00:00', 'preference_centre')",
            [revoker],
        )
        con.execute(
            "insert into raw.deletion_requests values ('del-test-1', 'email', ?, timestamp '2026-10-31 12:00:00')",
            [deleter],
        )
    run_dbt(
        [
            "build",
            "--select",
            "stg_privacy__consent_events+",
            "stg_privacy__deletion_requests+",
            "--exclude",
            "resource_type:test",
        ],
        warehouse=warehouse,
        echo=False,
    )
    result = runner.invoke(main, ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert revoker not in demo_webhook.state and deleter not in demo_webhook.state
    assert sorted(demo_webhook.state) == [row[0] for row in _query(warehouse, CHAMPIONS_DESIRED)]


def test_each_sync_is_a_dagster_asset_downstream_of_its_segment(dbt_manifest, warehouse: Path, demo_webhook, tmp_path):
    import dagster as dg
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_assets
    from orchestration.definitions import defs as load_defs
    from orchestration.sync_assets import SyncEngine, build_sync_definitions

    defs = load_defs()
    graph = defs.get_repository_def().asset_graph
    champions = graph.get(dg.AssetKey("sync_champions_to_webhook"))
    assert get_asset_key_for_model([cdp_dbt_assets()], "rfm_champions") in champions.parent_keys
    assert champions.group_name == "syncs"
    schedule = defs.get_schedule_def("sync_champions_to_webhook_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED

    assets, _ = build_sync_definitions()
    result = dg.materialize(
        [asset for asset in assets if asset.key == dg.AssetKey("sync_champions_to_webhook")],
        resources={"sync_engine": SyncEngine(warehouse=str(warehouse))},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    assert metadata["status"] == "succeeded"
    assert metadata["confirmed"] == metadata["planned_adds"] == len(demo_webhook.state) > 0
    # no personal data in what Dagster shows
    assert not any("@" in str(value) for value in metadata.values())


def test_a_warehouse_another_process_is_writing_is_reported_and_nothing_is_sent(
    dbt_manifest, warehouse: Path, demo_webhook
):
    import subprocess
    import sys

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
        busy = CliRunner().invoke(main, ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)])
        assert busy.exit_code == 1, busy.output
        assert "is busy: another process" in busy.output and "retry when it has finished" in busy.output
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert demo_webhook.requests == []


def test_the_shipped_mailchimp_sync_fills_the_demo_audience(dbt_manifest, warehouse: Path, monkeypatch):
    """The demo connection of destinations.yml, pointed at the Mailchimp sandbox: the engaged
    readers who never bought and consented land in the audience with their names and tags."""
    from destinations.sandbox.mailchimp import MailchimpSandbox

    desired = _query(
        warehouse,
        """
        select lower(f.email), f.first_name, f.lifecycle_stage
        from segment_membership m
        join sync_profile_fields f using (profile_id)
        where m.segment_name = 'email_engaged_never_purchased' and f.has_email_marketing_consent and not f.is_deletion_requested
        """,
    )
    assert desired, "the sample should have consenting engaged readers"
    with MailchimpSandbox() as mailchimp:
        monkeypatch.setenv("CDP_SANDBOX_URL", mailchimp.server.origin)
        monkeypatch.setenv("CDP_DEMO_MAILCHIMP_API_KEY", mailchimp.api_key)
        result = CliRunner().invoke(
            main, ["sync", "engaged_readers_to_mailchimp", "--quiet", "--warehouse", str(warehouse)]
        )
        assert result.exit_code == 0, result.output
        assert "engaged_readers_to_mailchimp: succeeded" in result.output
        held = mailchimp.emulator.held()
    assert set(held) == {email for email, _, _ in desired}
    for email, first_name, stage in desired:
        assert held[email]["status"] == "subscribed"
        assert held[email]["merge_fields"].get("FNAME") == (first_name or None)
        assert held[email]["tags"] == ["cdp", *([stage] if stage else [])]
