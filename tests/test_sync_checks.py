"""The checks that guard a sync, through Dagster: each sync's audience asset plans it as a dry
run under blocking checks, and a failing check stops that sync's send before any request
reaches the destination, with the message a person reads; another sync in the same run goes on.
Also: a paused sync sends nothing and says so, and a full re-sync is forced from the launchpad.

Real parts: Dagster materialises the assets in-process against a small hand-made warehouse
(tests/sync_world.py) and the webhook sandbox over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from contract.webhook import SECRET_ENV
from sync_world import SEGMENT, Person, World, definition, people

from cdp.warehouse import connect
from destinations import state
from destinations.config import load_destinations
from destinations.definitions import SyncDefinition, parse_sync_definition
from destinations.sandbox.webhook import WebhookSandbox
from orchestration.sync_assets import SyncEngine, sync_assets_for


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch):
    with WebhookSandbox() as receiver:
        monkeypatch.setenv(SECRET_ENV, receiver.secret)
        yield receiver


@pytest.fixture
def world(tmp_path: Path, sandbox: WebhookSandbox) -> World:
    return World(tmp_path / "checks.duckdb", sandbox)


def _destinations_file(tmp_path: Path, **sandboxes: WebhookSandbox) -> Path:
    """destinations.yml naming each sandbox as a webhook connection."""
    path = tmp_path / "destinations.yml"
    connections = {
        name: {"type": "webhook", "url": receiver.url, "secret_env": SECRET_ENV} for name, receiver in sandboxes.items()
    }
    path.write_text(yaml.safe_dump({"destinations": connections}))
    return path


def _materialise(
    world: World, destinations: Path, *syncs: SyncDefinition, run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """Plan, check and send these syncs in one Dagster run, as automation or the launchpad would."""
    assets = [asset for sync in syncs for asset in sync_assets_for(sync, upstream=[])]
    return dg.materialize(
        assets,
        resources={"sync_engine": SyncEngine(warehouse=str(world.path), destinations_file=str(destinations))},
        instance=dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=False,
    )


def _checks(result: dg.ExecuteInProcessResult, sync_name: str) -> dict[str, Any]:
    """The audience checks' evaluations of one sync: name -> evaluation."""
    return {
        evaluation.check_name: evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey(f"audience_{sync_name}")
    }


def _message(evaluation) -> str:
    return evaluation.metadata["message"].value


def _sent_nothing(result: dg.ExecuteInProcessResult, sandbox: WebhookSandbox, sync_name: str = "test_sync") -> None:
    assert not result.success
    assert result.is_node_failed(f"audience_{sync_name}")  # the blocking check failed the step …
    assert not result.is_node_success(f"sync_{sync_name}")  # … so the send never ran
    assert sandbox.requests == [], "a request reached the destination"


def _no_personal_data(text: str) -> None:
    assert "@" not in text and "person" not in text, text


# --- one test per blocking check ----------------------------------------------------------------


def test_duplicate_keys_stop_the_sync_before_anything_is_sent(world: World, sandbox, tmp_path: Path):
    crowd = people(6)
    crowd["p900"] = Person(email="person1@example.com")  # a second profile claiming person1's key
    world.set_people(crowd)

    result = _materialise(world, _destinations_file(tmp_path, hook=sandbox), definition())

    _sent_nothing(result, sandbox)
    check = _checks(result, "test_sync")["keys_unique_and_not_null"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert _message(check) == (
        "2 profiles in the audience of 7 share their email with another profile (a shared key is never sent); "
        "nothing was sent"
    )
    _no_personal_data(_message(check))


def test_too_many_missing_keys_stop_the_sync_but_a_few_do_not(world: World, sandbox, tmp_path: Path):
    """A phone-only person is not an error in an email sync; most of the audience without an email is."""
    destinations = _destinations_file(tmp_path, hook=sandbox)
    few_missing = {**people(9), "p100": Person(email=None, phone="+447700900123")}
    world.set_people(few_missing)
    result = _materialise(world, destinations, definition())
    assert result.success, _checks(result, "test_sync")
    assert _checks(result, "test_sync")["keys_unique_and_not_null"].passed
    assert len(sandbox.state) == 9

    requests_before = len(sandbox.requests)
    mostly_missing = {**people(9), **{f"q{i:03d}": Person(email=None) for i in range(12)}}
    world.set_people(mostly_missing)
    result = _materialise(world, destinations, definition())

    assert not result.success and not result.is_node_success("sync_test_sync")
    assert len(sandbox.requests) == requests_before, "a request reached the destination"
    check = _checks(result, "test_sync")["keys_unique_and_not_null"]
    assert not check.passed
    assert _message(check) == (
        "12 of 21 profiles in the audience (57%) have no usable email (12 missing), above max_missing_key_share 50%; "
        "nothing was sent"
    )
    # the threshold is the sync's own: raised, the same audience goes through
    result = _materialise(world, destinations, definition(max_missing_key_share=0.6))
    assert result.success and _checks(result, "test_sync")["keys_unique_and_not_null"].passed


def test_an_audience_below_the_segments_minimum_size_is_not_sent(world: World, sandbox, tmp_path: Path):
    world.set_people(people(12), min_size=500)

    result = _materialise(world, _destinations_file(tmp_path, hook=sandbox), definition())

    _sent_nothing(result, sandbox)
    check = _checks(result, "test_sync")["audience_not_below_min_size"]
    assert not check.passed
    assert _message(check) == f"audience of 12 is below the minimum size 500 of segment '{SEGMENT}'; nothing was sent"
    # the other checks still ran and passed: the message names only what failed
    assert _checks(result, "test_sync")["keys_unique_and_not_null"].passed


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (6, "audience of 6 is 40% smaller than the 10 records this sync holds at 'hook', beyond max_shrink_share 20%"),
        (
            25,
            "audience of 25 is 150% larger than the 10 records this sync holds at 'hook', beyond max_growth_share 100%",
        ),
    ],
    ids=["shrinking", "growing"],
)
def test_an_audience_changing_past_its_limit_is_not_sent(
    world: World, sandbox, tmp_path: Path, after: int, message: str
):
    destinations = _destinations_file(tmp_path, hook=sandbox)
    sync = definition(mode="upsert")  # upsert: no removals, so only the audience check can stop it
    world.set_people(people(10))
    first = _materialise(world, destinations, sync)
    assert first.success, "the first sync (nothing held yet) passes the change check"
    assert _message(_checks(first, "test_sync")["audience_change_within_limits"]).startswith("first sync")
    held = dict(sandbox.state)
    requests = len(sandbox.requests)

    world.set_people(people(after, first_name="Changed"))
    result = _materialise(world, destinations, sync)

    assert not result.success and not result.is_node_success("sync_test_sync")
    assert len(sandbox.requests) == requests and sandbox.state == held, "a request reached the destination"
    check = _checks(result, "test_sync")["audience_change_within_limits"]
    assert not check.passed and _message(check) == f"{message}; nothing was sent"


def test_a_failing_check_stops_only_its_own_sync(world: World, sandbox, tmp_path: Path):
    """Two syncs of the same segment in one run: the strict one is stopped, the other sends."""
    with WebhookSandbox(secret=sandbox.secret) as other:
        destinations_file = _destinations_file(tmp_path, hook=sandbox, other_hook=other)
        connections = load_destinations(destinations_file)
        spec = {"segment": SEGMENT, "mode": "mirror", "key": "email", "identifiers": {"email": "email"}}
        strict = parse_sync_definition(
            {"name": "strict_sync", "depends_on": {"nodes": []}},
            {**spec, "destination": "hook", "max_missing_key_share": 0.1},
            connections,
        )
        relaxed = parse_sync_definition(
            {"name": "relaxed_sync", "depends_on": {"nodes": []}}, {**spec, "destination": "other_hook"}, connections
        )
        world.set_people({**people(8), "p100": Person(email=None), "p101": Person(email=None)})

        result = _materialise(world, destinations_file, strict, relaxed)

        assert not result.success
        assert not _checks(result, "strict_sync")["keys_unique_and_not_null"].passed
        assert not result.is_node_success("sync_strict_sync") and sandbox.requests == []
        assert result.is_node_success("sync_relaxed_sync")
        assert sorted(other.state) == sorted(p.email for p in world.people.values() if p.email)


def test_the_send_checks_its_own_plan_again(world: World, sandbox, tmp_path: Path):
    """The send asset alone (as if the audience passed in an earlier step and the data changed
    since) still refuses an audience that fails a check; force sends it anyway."""
    destinations = _destinations_file(tmp_path, hook=sandbox)
    world.set_people(people(4), min_size=10)
    send_only = [asset for asset in sync_assets_for(definition(), upstream=[]) if asset.key.path == ["sync_test_sync"]]
    engine = SyncEngine(warehouse=str(world.path), destinations_file=str(destinations))

    stopped = dg.materialize(
        send_only, resources={"sync_engine": engine}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not stopped.success and sandbox.requests == []
    assert world.last_run()["status"] == "stopped"
    assert "audience of 4 is below the minimum size 10" in world.last_run()["message"]

    forced = dg.materialize(
        send_only,
        resources={"sync_engine": engine},
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"sync_test_sync": {"config": {"force": True}}}},
    )
    assert forced.success and len(sandbox.state) == 4


# --- pause and full re-sync ---------------------------------------------------------------------


def _pause(world: World, sync_name: str, paused: bool, reason: str | None = None) -> None:
    from datetime import datetime

    with connect(world.path) as con:
        state.set_paused(con, sync_name, paused=paused, reason=reason, changed_by="tester", now=datetime.now())


def _materialisation(result: dg.ExecuteInProcessResult, key: str) -> dict[str, Any]:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_a_paused_sync_sends_nothing_and_says_so(world: World, sandbox, tmp_path: Path):
    destinations = _destinations_file(tmp_path, hook=sandbox)
    world.set_people(people(5), min_size=50)  # its audience would also fail a check
    _pause(world, "test_sync", True, "campaign on hold")

    result = _materialise(world, destinations, definition())

    # paused: the checks still run and report, as warnings; the run does not fail, nothing is sent
    assert result.success and sandbox.requests == []
    check = _checks(result, "test_sync")["audience_not_below_min_size"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    metadata = _materialisation(result, "sync_test_sync")
    assert metadata["status"] == "paused"
    assert "campaign on hold" in metadata["paused"] and "tester" in metadata["paused"]
    assert "`cdp sync test_sync --resume`" in metadata["message"]
    assert world.last_run()["status"] == "paused"

    _pause(world, "test_sync", False)
    world.set_people(people(5))
    resumed = _materialise(world, destinations, definition())
    assert resumed.success and _materialisation(resumed, "sync_test_sync")["status"] == "succeeded"
    assert len(sandbox.state) == 5


def test_a_sync_paused_in_its_definition_sends_nothing(world: World, sandbox, tmp_path: Path):
    world.set_people(people(3))
    sync = definition(paused=True)
    assets = sync_assets_for(sync, upstream=[])
    assert all(asset.specs_by_key[asset.key].metadata["paused_in_definition"] for asset in assets)
    assert "PAUSED in its definition" in assets[1].specs_by_key[assets[1].key].description

    result = _materialise(world, _destinations_file(tmp_path, hook=sandbox), sync)

    assert result.success and sandbox.requests == []
    metadata = _materialisation(result, "sync_test_sync")
    assert metadata["status"] == "paused" and "in its definition" in metadata["paused"]


def test_a_full_resync_is_forced_from_the_launchpad(world: World, sandbox, tmp_path: Path):
    destinations = _destinations_file(tmp_path, hook=sandbox)
    world.set_people(people(4))
    assert _materialise(world, destinations, definition()).success
    applied = sandbox.applied

    again = _materialise(world, destinations, definition())
    assert _materialisation(again, "sync_test_sync")["sent"] == 0 and sandbox.applied == applied

    full = _materialise(
        world, destinations, definition(), run_config={"ops": {"sync_test_sync": {"config": {"full_resync": True}}}}
    )
    metadata = _materialisation(full, "sync_test_sync")
    assert metadata["planned_updates"] == metadata["confirmed"] == 4
    assert sandbox.applied == applied + 4
    assert world.last_run()["is_full_resync"] is True
