"""What the engine keeps for a connector beyond confirmations: the platform's own record ids
(resolved once, handed back on every later change), the platform's own figures for the run,
and each identifier's coverage in the audience, counted before anything is sent.

The connector here is the webhook connector over a real socket, extended the way a platform
connector is written: it names an id for each record it confirms and reports figures.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sync_world import Person, World, definition, people

from destinations.base import Change, Outcome
from destinations.sandbox.webhook import WebhookSandbox
from destinations.webhook import WebhookDestination


class IdNamingWebhook(WebhookDestination):
    """Confirms like the webhook, names "id-<key>" for each upsert it confirms on first
    sight, and remembers the ids the engine handed back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, str, str | None]] = []
        self.sent = 0

    def send(self, changes: list[Change]) -> list[Outcome]:
        self.seen += [(change.op, change.key, change.destination_id) for change in changes]
        self.sent += len(changes)
        outcomes = super().send(changes)
        by_id = {change.change_id: change for change in changes}
        return [
            replace(outcome, destination_id=f"id-{by_id[outcome.change_id].key}")
            if outcome.status == "confirmed"
            and by_id[outcome.change_id].op == "upsert"
            and by_id[outcome.change_id].destination_id is None
            else outcome
            for outcome in outcomes
        ]

    def report(self) -> dict[str, int | str]:
        return {"records_received": self.sent, "status": "done"}


@pytest.fixture
def world(tmp_path: Path):
    with WebhookSandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox)


def run_with(world: World, sync, connector: IdNamingWebhook, **options):
    from destinations.engine import run_sync

    return run_sync(sync, warehouse=world.path, connect_destination=lambda _: connector, **options)


def connector(world: World) -> IdNamingWebhook:
    return IdNamingWebhook("hook", world.sandbox.url, world.sandbox.secret, batch_size=3, backoff_factor=0.0)


def test_a_platform_id_is_kept_and_handed_back_on_updates_and_removals(world: World):
    sync = definition(mode="mirror")
    crowd = people(4)
    world.set_people(crowd)
    first = run_with(world, sync, connector(world))
    assert first.status == "succeeded", first.message
    ids = dict(world.query("select record_key, destination_id from cdp_sync.state where sync_name = 'test_sync'"))
    assert ids == {p.email: f"id-{p.email}" for p in crowd.values()}

    # one record changes, one leaves: both changes carry the id the platform named
    crowd["p000"] = replace(crowd["p000"], first_name="Grace")
    crowd["p001"] = replace(crowd["p001"], in_segment=False)
    world.set_people(crowd)
    second_connector = connector(world)
    second = run_with(world, sync, second_connector, force=True)
    assert second.status == "succeeded", second.message
    assert sorted(second_connector.seen) == [
        ("remove", "person1@example.com", "id-person1@example.com"),
        ("upsert", "person0@example.com", "id-person0@example.com"),
    ]
    # the update named no new id: the one kept so far stays
    ids = dict(world.query("select record_key, destination_id from cdp_sync.state where sync_name = 'test_sync'"))
    assert ids["person0@example.com"] == "id-person0@example.com"
    assert "person1@example.com" not in ids


def test_the_platform_figures_are_stored_with_the_run(world: World):
    world.set_people(people(3))
    result = run_with(world, definition(), connector(world))
    assert result.destination_report == {"records_received": 3, "status": "done"}
    (stored,) = world.query(
        "select destination_report from cdp_sync.runs where run_id = :run_id", {"run_id": result.run_id}
    )[0]
    assert json.loads(stored) == {"records_received": 3, "status": "done"}


def test_identifier_coverage_is_counted_before_sending(world: World):
    """Coverage counts desired records only (excluded and invalid ones are not sent)."""
    crowd = people(5)
    crowd["p003"] = replace(crowd["p003"], first_name=None)
    crowd["p004"] = replace(crowd["p004"], consent=False)  # excluded: not counted
    crowd["p100"] = Person(email=None)  # invalid (null key): not counted
    world.set_people(crowd)
    sync = definition(identifiers={"email": "email", "external_id": "first_name"}, fields={})
    seen_before_send: list = []
    sending = connector(world)

    def on_plan(plan) -> None:
        seen_before_send.append((dict(plan.identifier_coverage), sending.sent))

    result = run_with(world, sync, sending, on_plan=on_plan)
    assert seen_before_send == [({"email": 4, "external_id": 3}, 0)]
    assert result.plan.coverage_lines() == ["email: 4 of 4 (100.0%)", "external_id: 3 of 4 (75.0%)"]
    (stored,) = world.query(
        "select identifier_coverage from cdp_sync.runs where run_id = :run_id", {"run_id": result.run_id}
    )[0]
    assert json.loads(stored) == {"email": 4, "external_id": 3}


def test_a_dry_run_reports_coverage_and_sends_nothing(world: World):
    world.set_people(people(2))
    sending = connector(world)
    result = run_with(world, definition(), sending, dry_run=True)
    assert dict(result.plan.identifier_coverage) == {"email": 2}
    assert sending.sent == 0 and world.received() == {}
