"""Alerts without Dagster: each rule fires once to the sandbox receivers (real HTTP, a real
DuckDB warehouse, the real sync engine), stays quiet while its condition holds, sends a
resolved notice when it clears and can fire again; no personal data reaches a receiver; a
channel that is down keeps its notice pending until the next evaluation; a wrong alerts.yml
is refused with a message naming the file, the rule and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from alert_receivers import SLACK_URL_ENV, Receivers
from click.testing import CliRunner
from sync_world import Person, World, definition, people

from cdp.warehouse import connect
from destinations.alerts import AlertConfigError, load_alerts, utc_now
from destinations.alerts.config import alerts_file
from destinations.sandbox.faults import Fault
from destinations.sandbox.slack import DEMO_HOOK
from destinations.sandbox.webhook import WebhookSandbox


@pytest.fixture
def receivers():
    with Receivers() as both:
        yield both


@pytest.fixture
def world(tmp_path: Path):
    with WebhookSandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox)


def _judged(world: World, alerter, sync, **run_options):
    """Run the sync once, then judge the runs it made (as `cdp sync` and the asset do)."""
    since = utc_now()
    result = world.run(sync, **run_options)
    return result, alerter.after_sync(sync.name, since)


# -- each rule: once, quiet while it holds, resolved, again ---------------------------------------


def test_a_failed_run_alerts_once_without_personal_data_then_resolves_and_can_fire_again(
    world: World, receivers: Receivers, tmp_path: Path
):
    alerter = receivers.alerter(tmp_path / "alerts.yml", "failed:\n  kind: run_failed", world.path)
    sync = definition()
    crowd = people(4)
    world.set_people(crowd)
    # the destination answers with personal data in its error (an email, a phone, a name)
    leak = "cannot store ada.lovelace@example.com (+44 20 7946 0958) Ada Lovelace"
    for attempt in (1, 2):
        world.sandbox.inject(*[Fault.status(503, title=leak)] * 3)
        result, report = _judged(world, alerter, sync)
        assert result.status == "failed"
        assert report.opened == (["failed on sync test_sync"] if attempt == 1 else [])
    assert receivers.notices() == [("alert.fired", "failed", "sync test_sync")]
    assert len(receivers.slack_texts("failed")) == 1
    received = receivers.everything()
    for personal in ("@", "7946", "Lovelace", "person0"):
        assert personal not in received
    assert "test_sync" in received and "the destination became unavailable (HTTP 503)" in received

    result, report = _judged(world, alerter, sync)
    assert result.status == "succeeded" and report.resolved == ["failed on sync test_sync"]
    world.set_people({**crowd, "p900": Person(email="newcomer@example.com")})  # something to send
    world.sandbox.inject(*[Fault.status(503)] * 3)
    result, _ = _judged(world, alerter, sync)
    assert result.status == "failed"
    assert [kind for kind, _, _ in receivers.notices()] == ["alert.fired", "alert.resolved", "alert.fired"]
    assert len(receivers.slack_texts("failed")) == 3


def test_a_run_stopped_by_its_guard_alerts_as_a_failure(world: World, receivers: Receivers, tmp_path: Path):
    alerter = receivers.alerter(tmp_path / "alerts.yml", "failed:\n  kind: run_failed", world.path)
    sync = definition()
    crowd = people(5)
    world.set_people(crowd)
    assert _judged(world, alerter, sync)[0].status == "succeeded"
    world.set_people({pid: Person(email=person.email, in_segment=False) for pid, person in crowd.items()})
    for _ in range(2):
        result, _ = _judged(world, alerter, sync)
        assert result.status == "stopped"
    assert receivers.notices() == [("alert.fired", "failed", "sync test_sync")]
    assert "was stopped by its guard" in receivers.hooks.alerts[0]["alert"]["summary"]


def test_rejections_above_a_share_alert_once_while_they_last(world: World, receivers: Receivers, tmp_path: Path):
    rules = "rejections:\n  kind: rejected_share\n  max_share: 0.2\n  syncs: [test_sync]"
    alerter = receivers.alerter(tmp_path / "alerts.yml", rules, world.path)
    sync = definition()
    everyone = people(30)
    batches = [dict(list(everyone.items())[:10]), dict(list(everyone.items())[:20]), everyone]
    for number, crowd in enumerate(batches, start=1):
        world.set_people(crowd)
        if number < 3:  # the first two runs: half of the new records are refused
            world.sandbox.inject(*[Fault.reject(fraction=0.7)] * 10)
        result, report = _judged(world, alerter, sync)
        world.sandbox.clear_faults()
        assert result.sent > 0
    assert result.rejected == 0
    assert receivers.notices("rejections") == [
        ("alert.fired", "rejections", "sync test_sync"),
        ("alert.resolved", "rejections", "sync test_sync"),
    ]
    fired = receivers.hooks.alerts[0]["alert"]
    assert fired["facts"]["max_share"] == 0.2 and fired["facts"]["rejected"] > 0 and fired["facts"]["sent"] == 10


def test_an_audience_size_change_past_its_threshold_alerts_once(world: World, receivers: Receivers, tmp_path: Path):
    rules = "swing:\n  kind: audience_change\n  max_change_share: 0.5\n  notify_resolved: false"
    alerter = receivers.alerter(tmp_path / "alerts.yml", rules, world.path)
    sync = definition()
    everyone = people(30)
    world.set_people(dict(list(everyone.items())[:10]))
    assert _judged(world, alerter, sync)[1].opened == []  # no baseline yet: not judged
    world.set_people(everyone)  # 10 held, 30 wanted: +200%
    for _ in range(2):  # the destination is down: the change is still ahead, the alert is not repeated
        world.sandbox.inject(*[Fault.status(503)] * 3)
        _judged(world, alerter, sync)
    result, _ = _judged(world, alerter, sync)
    assert result.status == "succeeded" and result.confirmed == 20
    _, report = _judged(world, alerter, sync)  # 30 held, 30 wanted
    assert report.resolved == ["swing on sync test_sync"]
    assert receivers.notices("swing") == [("alert.fired", "swing", "sync test_sync")]  # no resolved notice: asked
    facts = receivers.hooks.alerts[0]["alert"]["facts"]
    assert (facts["held_before"], facts["desired"], facts["change_share"]) == (10, 30, 2.0)


def test_a_slow_run_alerts_once(world: World, receivers: Receivers, tmp_path: Path):
    alerter = receivers.alerter(tmp_path / "alerts.yml", "slow:\n  kind: slow_run\n  max_seconds: 0.8", world.path)
    sync = definition()
    crowd = people(3)
    world.set_people(crowd)
    world.sandbox.inject(Fault.timeout(1.0))  # the destination takes a second to answer
    assert _judged(world, alerter, sync, read_timeout=5)[1].opened == ["slow on sync test_sync"]
    world.set_people({**crowd, "p900": Person(email="late@example.com")})
    world.sandbox.inject(Fault.timeout(1.0))
    assert _judged(world, alerter, sync, read_timeout=5)[1].opened == []
    assert _judged(world, alerter, sync)[1].resolved == ["slow on sync test_sync"]  # nothing to send: quick
    assert [kind for kind, _, _ in receivers.notices("slow")] == ["alert.fired", "alert.resolved"]
    assert receivers.hooks.alerts[0]["alert"]["facts"]["max_seconds"] == 0.8


def test_a_segment_below_its_minimum_alerts_once_after_builds(
    built_warehouse: Path, receivers: Receivers, tmp_path: Path
):
    warehouse = tmp_path / "segments.duckdb"
    shutil.copy(built_warehouse, warehouse)
    alerter = receivers.alerter(
        tmp_path / "alerts.yml", "small:\n  kind: segment_below_minimum\n  segments: [rfm_champions]", warehouse
    )
    assert alerter.after_build().opened == []  # the sample meets every minimum
    with connect(warehouse) as con:
        kept = con.execute("select * from segment_registry_members where segment_name = 'rfm_champions'").fetchall()
        con.execute("delete from segment_registry_members where segment_name = 'rfm_champions'")
        con.execute(
            "insert into segment_registry_members select * from (values ('rfm_champions', 'rfm_champions', 'p_x'))"
        )
    assert alerter.after_build().opened == ["small on segment rfm_champions"]
    assert alerter.after_build().opened == []  # still small: not repeated
    with connect(warehouse) as con:
        con.execute("delete from segment_registry_members where segment_name = 'rfm_champions'")
        con.executemany("insert into segment_registry_members values (?, ?, ?)", kept)
    assert alerter.after_build().resolved == ["small on segment rfm_champions"]
    assert receivers.notices() == [
        ("alert.fired", "small", "segment rfm_champions"),
        ("alert.resolved", "small", "segment rfm_champions"),
    ]
    facts = receivers.hooks.alerts[0]["alert"]["facts"]
    assert facts["members"] == 1 and facts["min_size"] == 10 and facts["segment"] == "rfm_champions"


# -- channels ---------------------------------------------------------------------------------------


def test_a_channel_that_is_down_keeps_its_notice_pending_until_the_next_evaluation(
    world: World, receivers: Receivers, tmp_path: Path
):
    alerter = receivers.alerter(tmp_path / "alerts.yml", "slow:\n  kind: slow_run\n  max_seconds: 0.000001", world.path)
    sync = definition()
    world.set_people(people(3))
    receivers.slack.faults.inject(*[Fault.status(503, title="service_unavailable")] * 3)  # every retry too
    result, report = _judged(world, alerter, sync)
    assert result.status == "succeeded"  # the sync stands on its own
    assert report.opened == ["slow on sync test_sync"] and receivers.slack_texts() == []
    assert any("slack channel 'slack' answered HTTP 503: service_unavailable" in line for line in report.pending)
    assert receivers.notices() == [("alert.fired", "slow", "sync test_sync")]  # the other channel got it
    with connect(world.path, read_only=True) as con:
        assert con.execute(
            "select channel, status, attempts from cdp_sync.alert_deliveries order by channel"
        ).fetchall() == [("hooks", "sent", 1), ("slack", "pending", 1)]

    _, report = _judged(world, alerter, sync)  # the next evaluation: still slow, not a new alert
    assert report.opened == [] and report.pending == []
    assert len(receivers.slack_texts("slow")) == 1 and len(receivers.notices()) == 1


def test_slack_throttling_is_honoured_and_the_notice_arrives(world: World, receivers: Receivers, tmp_path: Path):
    alerter = receivers.alerter(tmp_path / "alerts.yml", "slow:\n  kind: slow_run\n  max_seconds: 0.000001", world.path)
    world.set_people(people(2))
    receivers.slack.faults.inject(Fault.throttle(retry_after=1))
    _, report = _judged(world, alerter, definition())
    assert report.pending == [] and len(receivers.slack_texts()) == 1
    assert [r.status for r in receivers.slack.requests] == [429, 200]


def test_the_slack_emulator_answers_like_slack(receivers: Receivers):
    base = receivers.server.base_url(receivers.slack)
    hook = base + DEMO_HOOK
    assert requests.post(hook, json={"text": "hello"}, timeout=5).text == "ok"
    unknown = requests.post(base + "/services/T1/B1/nope", json={"text": "hi"}, timeout=5)
    assert (unknown.status_code, unknown.text) == (404, "no_service")
    for body, word in (
        (b"not json", "invalid_payload"),
        (b"[1, 2]", "invalid_payload"),
        (b"{}", "no_text"),
        (b'{"blocks": [{"type": "section"}]}', "invalid_blocks"),
    ):
        answer = requests.post(hook, data=body, headers={"Content-Type": "application/json"}, timeout=5)
        assert (answer.status_code, answer.text) == (400, word), body
    assert [m["text"] for m in receivers.slack.messages()] == ["hello"]


def test_the_alert_receiver_refuses_an_unsigned_alert(receivers: Receivers):
    url = receivers.server.base_url(receivers.hooks) + "/hooks"
    answer = requests.post(url, json={"type": "alert.fired", "alert": {}}, timeout=5)
    assert answer.status_code == 401 and receivers.hooks.alerts == []


# -- the file ----------------------------------------------------------------------------------------


CHANNELS = """
channels:
  team:
    type: slack
    url: ${SLACK_HOOK}
"""


@pytest.mark.parametrize(
    ("rules", "env", "expected"),
    [
        (
            "rules:\n  broken:\n    kind: run_faild\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'broken'", "field 'kind'", "unknown rule kind 'run_faild'", "did you mean 'run_failed'"],
        ),
        (
            "rules:\n  slow:\n    kind: slow_run\n    max_seconds: 60\n    channels: [pager]\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'slow'", "field 'channels'", "no channel named 'pager'", "known: team"],
        ),
        (
            "rules:\n  slow:\n    kind: slow_run\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'slow'", "field 'max_seconds' is required"],
        ),
        (
            "rules:\n  slow:\n    kind: slow_run\n    max_secnds: 60\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'slow'", "unknown field 'max_secnds'", "did you mean 'max_seconds'"],
        ),
        (
            "rules:\n  share:\n    kind: rejected_share\n    max_share: lots\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'share'", "field 'max_share' must be a number from 0 to 1", "got 'lots'"],
        ),
        (
            "rules:\n  slow:\n    kind: slow_run\n    max_seconds: ${SLOW_SECONDS}\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'slow'", "field 'max_seconds'", "environment variable $SLOW_SECONDS is not set"],
        ),
        (
            "rules:\n  small:\n    kind: segment_below_minimum\n    syncs: [a]\n",
            {"SLACK_HOOK": "https://hooks.example.com/services/T/B/s3cr3t"},
            ["rule 'small'", "field 'syncs'", "use 'segments:'"],
        ),
        (
            "rules:\n  failed:\n    kind: run_failed\n",
            {},
            ["channel 'team'", "field 'url'", "environment variable $SLACK_HOOK is not set"],
        ),
    ],
    ids=[
        "unknown_kind",
        "missing_channel",
        "missing_threshold",
        "typo",
        "bad_value",
        "unset_env_in_rule",
        "wrong_subjects",
        "unset_env_in_channel",
    ],
)
def test_a_wrong_alerts_file_is_refused_naming_the_file_rule_and_field(
    tmp_path: Path, rules: str, env: dict, expected: list[str]
):
    path = tmp_path / "alerts.yml"
    path.write_text(CHANNELS + rules)
    with pytest.raises(AlertConfigError) as raised:
        load_alerts(path, env)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    for part in expected:
        assert part in message, message
    assert "s3cr3t" not in message and "hooks.example.com" not in message


def test_a_secret_missing_from_the_environment_is_named_never_shown(tmp_path: Path):
    path = tmp_path / "alerts.yml"
    path.write_text(
        "channels:\n  ops:\n    type: webhook\n    url: https://ops.example.com/alerts\n    secret_env: OPS_SECRET\n"
        "rules:\n  failed:\n    kind: run_failed\n"
    )
    with pytest.raises(AlertConfigError, match=r"channel 'ops': environment variable \$OPS_SECRET \(named by field"):
        load_alerts(path, {})
    with pytest.raises(AlertConfigError, match="field 'secret_env': the secret in \\$OPS_SECRET is not of the form"):
        load_alerts(path, {"OPS_SECRET": "hunter2-not-a-whsec"})
    config = load_alerts(path, {"OPS_SECRET": "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="})
    assert "hunter2" not in repr(config) and "c2VjcmV0" not in repr(config)


def test_the_file_in_use_and_turning_alerts_off(tmp_path: Path):
    assert alerts_file({"CDP_ALERTS": "off"}) is None
    assert load_alerts(None, {"CDP_ALERTS": "off"}).enabled is False
    with pytest.raises(AlertConfigError, match="does not exist; set \\$CDP_ALERTS=off"):
        alerts_file({"CDP_ALERTS": str(tmp_path / "missing.yml")})
    shipped = alerts_file({})
    assert shipped is not None and shipped.name == "alerts.yml"
    config = load_alerts(shipped, {"CDP_DEMO_ALERTS_SECRET": "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="})
    assert set(config.channels) == {"team_slack", "ops_webhook"}
    assert {rule.kind for rule in config.rules.values()} == {
        "run_failed",
        "rejected_share",
        "audience_change",
        "slow_run",
        "segment_below_minimum",
    }


def test_a_rule_watching_a_sync_that_does_not_exist_is_refused(tmp_path: Path, receivers: Receivers):
    config = receivers.config(tmp_path / "alerts.yml", "failed:\n  kind: run_failed\n  syncs: [champion_to_webhook]")
    with pytest.raises(AlertConfigError, match="rule 'failed': field 'syncs': no sync named 'champion_to_webhook'"):
        config.check_syncs(["champions_to_webhook"])


# -- `cdp sync` evaluates the rules (the shipped exposures, a dbt-built warehouse) --------------------


def test_cdp_sync_sends_alerts_and_a_channel_down_never_changes_its_exit_code(
    dbt_manifest, built_warehouse: Path, receivers: Receivers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from cli.main import main

    warehouse = tmp_path / "cli.duckdb"
    shutil.copy(built_warehouse, warehouse)
    path = receivers.write(tmp_path / "alerts.yml", "slow:\n  kind: slow_run\n  max_seconds: 0.000001")
    with WebhookSandbox() as destination:
        monkeypatch.setenv("CDP_SANDBOX_URL", destination.origin)
        monkeypatch.setenv("CDP_DEMO_WEBHOOK_SECRET", destination.secret)
        monkeypatch.setenv("CDP_ALERTS", str(path))
        for name, value in receivers.env().items():
            monkeypatch.setenv(name, value)
        receivers.slack.faults.inject(*[Fault.status(500)] * 10)
        args = ["sync", "champions_to_webhook", "--quiet", "--warehouse", str(warehouse)]
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        assert "alert opened: slow on sync champions_to_webhook" in first.output
        assert "alert pending (retried at the next evaluation)" in first.output
        receivers.slack.faults.clear()
        second = CliRunner().invoke(main, args)
        assert second.exit_code == 0, second.output
        assert "alert sent: fired slow on sync champions_to_webhook → slack" in second.output
        assert len(receivers.slack_texts("slow")) == 1 and len(receivers.notices("slow")) == 1

        monkeypatch.delenv(SLACK_URL_ENV)  # alerts.yml breaks: the sync still runs, and says so
        third = CliRunner().invoke(main, args)
        assert third.exit_code == 0, third.output
        assert "alerts not evaluated" in third.output and "$TEST_ALERTS_SLACK_URL is not set" in third.output
        assert receivers.hooks.secret not in third.output


def test_cdp_alerts_checks_the_file_and_lists_rules_and_open_alerts(
    dbt_manifest, world: World, receivers: Receivers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from cli.main import main

    rules = "failed:\n  kind: run_failed\nslow:\n  kind: slow_run\n  max_seconds: 600\n  notify_resolved: false"
    path = receivers.write(tmp_path / "alerts.yml", rules)
    for name, value in receivers.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CDP_ALERTS", str(path))
    alerter = receivers.alerter(tmp_path / "same.yml", rules, world.path)
    world.set_people(people(2))
    world.sandbox.inject(*[Fault.status(503)] * 3)
    _judged(world, alerter, definition())

    listing = CliRunner().invoke(main, ["alerts", "--warehouse", str(world.path)])
    assert listing.exit_code == 0, listing.output
    assert f"alerts file: {path} — OK" in listing.output
    assert "max_seconds 600" in listing.output and "every sync" in listing.output
    assert "Open alerts (1)" in listing.output and "sync test_sync" in listing.output
    assert receivers.hooks.secret not in listing.output

    path.write_text(path.read_text().replace("kind: slow_run", "kind: slow_runs"))
    broken = CliRunner().invoke(main, ["alerts", "--warehouse", str(world.path)])
    assert broken.exit_code == 1 and "rule 'slow': field 'kind': unknown rule kind 'slow_runs'" in broken.output


def test_the_shipped_alerts_file_reaches_both_receivers_of_cdp_sandbox(world: World):
    """What `cdp sandbox` + `cdp sync` show: the demo channels of alerts.yml, with the variables
    the sandbox prints, deliver to its Slack hook and its signed alert receiver."""
    from destinations.alerts import Alerter
    from destinations.sandbox import SandboxServer, demo_environment, emulators

    with SandboxServer(emulators()) as server:
        env = demo_environment(server.ready_document())
        config = load_alerts(alerts_file({}), env)
        world.set_people(people(2))
        world.sandbox.inject(*[Fault.status(503)] * 3)
        since = utc_now()
        assert world.run(definition()).status == "failed"
        report = Alerter(config, world.path).after_sync("test_sync", since)
        assert report.opened == ["sync_failed on sync test_sync"] and report.pending == []
        (message,) = server.emulators["slack"].messages()
        assert message["hook"] == DEMO_HOOK and "Sync test_sync failed" in message["text"]
        (alert,) = server.emulators["alerts"].alerts
        assert alert["type"] == "alert.fired" and alert["alert"]["rule"] == "sync_failed"
