"""Privacy reaches every destination: a deletion request makes each platform that held the person
forget them (the platform's strongest removal), with a receipt per request × sync; the global
suppression list keeps people out of every sync; consent withdrawn, a deletion request and a
suppression are never held by the mass-removal guard. Over sockets against the sandbox
emulators, on DuckDB and Postgres (tests/sync_engines.py).

The erasure build (dbt model privacy_erasures, another part of the project) is stood in for by
its contract: the person leaves the hand-made sync_profile_fields, and a privacy_erasures row
with the contract's columns names their profile.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from contract.harnesses import HARNESSES
from sync_world import World, definition, people

from destinations import state
from destinations.identifiers import mailchimp_subscriber_hash, sha256_hex
from destinations.sandbox.faults import Fault
from destinations.sandbox.webhook import WebhookSandbox
from destinations.suppression import suppressed_value
from destinations.warehouse.locations import Location

#: main.privacy_erasures, exactly as the contract between the issue-13 helpers states it
ERASURE_COLUMNS: dict[str, pa.DataType] = {
    "request_id": pa.string(),
    "profile_id": pa.string(),
    "identifier_type": pa.string(),
    "tombstone": pa.string(),
    "requested_at": pa.timestamp("us"),
    "erased_at": pa.timestamp("us"),
    "source": pa.string(),
}
NOW = datetime(2026, 12, 1, 12, 0, 0)


def erase(world: World, *requests: tuple[str, str]) -> None:
    """The erasure build's effect on what a sync reads: each (request id, profile id) leaves the
    profiles and appears in main.privacy_erasures."""
    erased = {profile_id for _, profile_id in requests}
    world.set_people({pid: person for pid, person in world.people.items() if pid not in erased})
    rows = {
        "request_id": [request_id for request_id, _ in requests],
        "profile_id": [profile_id for _, profile_id in requests],
        "identifier_type": ["email"] * len(requests),
        "tombstone": [sha256_hex(f"salt:{request_id}") for request_id, _ in requests],
        "requested_at": [NOW] * len(requests),
        "erased_at": [NOW] * len(requests),
        "source": ["raw"] * len(requests),
    }
    table = pa.table({name: pa.array(rows[name], kind) for name, kind in ERASURE_COLUMNS.items()})
    with world.location.open() as wh:
        wh.load_rows("main.privacy_erasures", table, temporary=False)


def receipts(world: World) -> list[state.Receipt]:
    with world.open() as store:
        return state.receipts(store)


def every_text(world: World) -> str:
    """Every value of every cdp_sync table but the plan tables, as one text."""
    with world.open() as store:
        tables = [
            name
            for name in ("state", "runs", "changes", "failures", "in_flight", "departed", "privacy_receipts")
            if store.has_table("cdp_sync", name)
        ]
        return "\n".join(repr(store.fetch(f"select * from cdp_sync.{table}")) for table in tables)


def profile_rows(world: World, profile_id: str) -> int:
    return sum(
        world.query(f"select count(*) from cdp_sync.{table} where profile_id = :pid", {"pid": profile_id})[0][0]
        for table in ("state", "in_flight", "departed", "changes")
    )


def suppress(world: World, value: str) -> None:
    entry = suppressed_value(value)
    with world.open() as store:
        state.add_suppression(
            store, entry.identifier_type, entry.value_sha256, reason="complaint", added_by="test", now=NOW
        )


@pytest.fixture(params=sorted(HARNESSES))
def platform_world(request: pytest.FixtureRequest, tmp_path: Path, sync_engine: Location):
    harness = HARNESSES[request.param]()
    with harness.sandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox, harness, location=sync_engine)


def test_every_platform_forgets_an_erased_person_and_the_receipt_says_so(platform_world: World):
    world, harness = platform_world, platform_world.harness
    sync = definition(harness=harness, mode="mirror", max_removal_share=0.01)
    crowd = people(4)
    world.set_people(crowd)
    assert world.run(sync).status == "succeeded"
    crowd["p002"] = replace(crowd["p002"], in_segment=False)  # left earlier: plainly removed
    world.set_people(crowd)
    assert world.run(sync, force=True).status == "succeeded"
    assert harness.remembers(world.sandbox, "person1@example.com")

    erase(world, ("req-1", "p001"), ("req-2", "p002"))
    result = world.run(sync)
    assert result.status == "succeeded", result.message
    assert result.forgotten == 2 and result.plan.removes == 0  # forgotten, not also removed plainly
    for email in ("person1@example.com", "person2@example.com"):
        assert not harness.remembers(world.sandbox, email), f"{harness.connector_type} still keeps {email}"
    assert set(world.received()) == {"person0@example.com", "person3@example.com"}
    done = receipts(world)
    assert [(r.request_id, r.status) for r in done] == [("req-1", "confirmed"), ("req-2", "confirmed")]
    assert all(r.sent_at and r.confirmed_at and r.answer and r.attempts == 1 for r in done)
    assert profile_rows(world, "p001") == profile_rows(world, "p002") == 0
    assert world.last_run()["forgotten"] == 2
    text = every_text(world)
    for email in ("person1@example.com", "person2@example.com"):
        assert email not in text and sha256_hex(email) not in text

    # a second run finds nothing more to forget and sends nothing
    again = world.run(sync)
    assert again.forgotten == 0 and again.plan.sendable == 0
    assert [r.attempts for r in receipts(world)] == [1, 1]


def test_a_throttled_or_failed_forget_stays_pending_and_completes_next_run(tmp_path: Path, sync_engine: Location):
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        sync = definition(mode="upsert")
        world.set_people(people(3))
        world.run(sync)
        erase(world, ("req-9", "p001"))
        sandbox.inject(*[Fault.status(503, title="down")] * 3)  # every attempt of the connector's budget
        first = world.run(sync)
        assert first.forgotten == 0 and first.forget_pending == 1
        (pending,) = receipts(world)
        assert pending.status == "pending" and pending.sent_at and pending.confirmed_at is None
        assert "person1@example.com" not in (pending.answer or "")
        assert "person1@example.com" in world.received()  # the state keeps the key the retry needs
        assert profile_rows(world, "p001") > 0

        sandbox.inject(Fault.throttle(retry_after=0))
        second = world.run(sync)
        assert second.forgotten == 1
        (done,) = receipts(world)
        assert (done.status, done.attempts) == ("confirmed", 2) and done.sent_at == pending.sent_at
        assert "person1@example.com" not in world.received() and sandbox.forgotten == {"person1@example.com"}
        assert profile_rows(world, "p001") == 0


def test_a_suppressed_person_is_never_sent_and_leaves_where_held(platform_world: World):
    world, harness = platform_world, platform_world.harness
    sync = definition(harness=harness, mode="upsert", max_removal_share=0.01, max_shrink_share=0.01)
    world.set_people(people(4))
    suppress(world, " Person0@Example.com ")  # normalised before it is hashed
    first = world.run(sync, enforce_audience_checks=True)
    assert first.status == "succeeded", first.message
    assert first.plan.excluded_suppressed == 1 and "person0@example.com" not in world.received()

    suppress(world, "person1@example.com")
    second = world.run(sync, enforce_audience_checks=True)
    assert second.status == "succeeded", second.message  # neither the guard nor the checks hold it
    assert second.plan.privacy_removes == second.plan.removes == 1
    assert set(world.received()) == {"person2@example.com", "person3@example.com"}

    harness.wait_idle(world.sandbox)
    sent = harness.received(world.sandbox)
    email = "person0@example.com"
    for form in (email, sha256_hex(email), mailchimp_subscriber_hash(email), hashlib.md5(email.encode()).hexdigest()):
        assert form.encode() not in sent, f"{harness.connector_type} received person0 ({form[:12]}…)"
    with world.open() as store:
        listed = state.suppressions(store)
    assert [entry.value_sha256 for entry in listed] == [sha256_hex(email), sha256_hex("person1@example.com")]
    assert email not in every_text(world)


def test_withdrawn_consent_and_deletion_requests_are_never_held_by_the_guard(tmp_path: Path, sync_engine: Location):
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, location=sync_engine)
        sync = definition(mode="mirror", max_removal_share=0.1)
        crowd = people(10)
        world.set_people(crowd)
        world.run(sync)
        for pid in ("p000", "p001", "p002", "p003"):
            crowd[pid] = replace(crowd[pid], consent=False)
        crowd["p004"] = replace(crowd["p004"], deleted=True)
        world.set_people(crowd)
        result = world.run(sync, enforce_audience_checks=True)
        assert result.status == "succeeded", result.message  # 50% removed, above max_removal_share 10%
        assert result.plan.privacy_removes == result.plan.removes == 5
        assert world.received() == world.desired()

        # a mass removal the guard stops still lets the privacy removal through
        for pid in ("p005", "p006", "p007"):
            crowd[pid] = replace(crowd[pid], in_segment=False)
        crowd["p008"] = replace(crowd["p008"], consent=False)
        world.set_people(crowd)
        stopped = world.run(sync)
        assert stopped.status == "stopped" and "privacy removals were sent" in stopped.message
        assert set(world.received()) == {
            "person5@example.com",
            "person6@example.com",
            "person7@example.com",
            "person9@example.com",
        }


def test_privacy_removals_alert_on_their_own_rule_with_counts_only():
    from destinations.alerts.rules import RULE_KINDS, PrivacyRemovalsOptions, Rule, judge_sync_run

    assert "privacy_removals" in RULE_KINDS
    rule = Rule("privacy", "privacy_removals", PrivacyRemovalsOptions(min_count=2), ("ops",))
    counts = {"forgotten": 1, "planned_privacy_removes": 1, "sent": 1, "confirmed": 1}
    run = state.RunRecord("r1", "s", "hook", "succeeded", "to person0@example.com", NOW, NOW, counts)
    (observation,) = judge_sync_run([rule], run)
    assert observation.holds and "forgot 1 erased people" in observation.summary
    assert "@" not in observation.summary + repr(observation.facts)
    quiet = replace(run, counts={**counts, "forgotten": 0})
    assert not judge_sync_run([rule], quiet)[0].holds


def test_the_cli_keeps_the_suppression_list_and_shows_pending_receipts(tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from cli.main import main

    warehouse = tmp_path / "cli.duckdb"
    monkeypatch.delenv("CDP_SYNC_STATE", raising=False)
    monkeypatch.delenv("CDP_TARGET", raising=False)
    runner = CliRunner()
    where = ["--warehouse", str(warehouse)]
    added = runner.invoke(main, ["suppress", "add", "Ada@Example.com", "--reason", "complaint", *where])
    assert added.exit_code == 0, added.output
    again = runner.invoke(main, ["suppress", "add", "ada@example.com ", "--reason", "again", *where])
    assert "already suppressed" in again.output
    phone = runner.invoke(main, ["suppress", "add", "020 7946 0958", "--region", "GB", "--reason", "sms", *where])
    assert phone.exit_code == 0, phone.output
    bad = runner.invoke(main, ["suppress", "add", "not-a-phone", "--reason", "x", *where])
    assert (
        bad.exit_code == 2 and "not a valid phone" in bad.output and "not-a-phone" not in bad.output.split("Error")[-1]
    )
    listed = runner.invoke(main, ["suppress", "list", *where], env={"COLUMNS": "300"})
    assert sha256_hex("ada@example.com") in listed.output and sha256_hex("+442079460958") in listed.output
    assert "ada@example.com" not in listed.output.lower()
    removed = runner.invoke(main, ["suppress", "remove", "ada@example.com", *where])
    assert removed.exit_code == 0 and "no longer suppressed" in removed.output
    assert runner.invoke(main, ["suppress", "remove", "ada@example.com", *where]).exit_code == 1

    with WebhookSandbox() as sandbox:
        world = World(warehouse, sandbox)
        sync = definition(mode="upsert")
        world.set_people(people(2))
        world.run(sync)
        erase(world, ("req-cli", "p000"))
        sandbox.inject(*[Fault.status(503, title="down")] * 3)
        world.run(sync)
        status = runner.invoke(main, ["privacy", "status", *where], env={"COLUMNS": "300"})
        assert status.exit_code == 1 and "1 pending" in status.output and "req-cli" in status.output
        world.run(sync)
        status = runner.invoke(main, ["privacy", "status", "--all", *where], env={"COLUMNS": "300"})
        assert status.exit_code == 0 and "1 complete, 0 pending" in status.output and "confirmed" in status.output
        assert "person0" not in status.output
