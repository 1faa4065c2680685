"""The sync engine against a real webhook receiver over HTTP, on a small hand-made
warehouse (tests/sync_world.py): modes, the safety guard, dry runs, invalid keys,
failures and retries, crashes, concurrency, and what the warehouse records — each on
DuckDB and on Postgres (tests/sync_engines.py)."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from sync_world import Person, World, definition, people

from destinations.engine import MAX_ATTEMPTS, SyncAlreadyRunning
from destinations.sandbox.webhook import Fault, WebhookSandbox
from destinations.warehouse.locations import Location


@pytest.fixture
def world(tmp_path: Path, sync_engine: Location):
    with WebhookSandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox, location=sync_engine)


def test_mirror_adds_updates_and_removes_until_the_destination_matches_the_segment(world: World):
    sync = definition(mode="mirror")
    crowd = people(7)
    world.set_people(crowd)
    first = world.run(sync)
    assert first.status == "succeeded", first.message
    assert world.received() == world.desired()
    assert (first.plan.adds, first.plan.updates, first.plan.removes) == (7, 0, 0)

    crowd["p000"] = replace(crowd["p000"], first_name="Grace")  # update
    crowd["p001"] = replace(crowd["p001"], in_segment=False)  # leaves the segment
    crowd["p100"] = Person(email="new@example.com")  # joins
    world.set_people(crowd)
    second = world.run(sync)
    assert (second.plan.adds, second.plan.updates, second.plan.removes, second.plan.unchanged) == (1, 1, 1, 5)
    assert world.received() == world.desired()
    assert world.received()["person0@example.com"]["first_name"] == "Grace"
    assert "person1@example.com" not in world.received()

    # nothing changed: nothing is sent
    before = len(world.sandbox.requests)
    third = world.run(sync)
    assert third.plan.sendable == 0 and len(world.sandbox.requests) == before


def test_upsert_keeps_leavers_but_removes_whoever_revoked_consent_or_asked_for_deletion(world: World):
    sync = definition(mode="upsert")
    crowd = people(5)
    world.set_people(crowd)
    world.run(sync)
    crowd["p000"] = replace(crowd["p000"], in_segment=False)
    crowd["p001"] = replace(crowd["p001"], consent=False)
    crowd["p002"] = replace(crowd["p002"], deleted=True)
    crowd["p003"] = replace(crowd["p003"], lifetime_value=99.0)
    world.set_people(crowd)
    result = world.run(sync, force=True)
    assert (result.plan.adds, result.plan.updates, result.plan.removes) == (0, 1, 2)
    assert set(world.received()) == {"person0@example.com", "person3@example.com", "person4@example.com"}
    assert world.received()["person3@example.com"]["lifetime_value"] == 99.0


def test_add_only_sends_new_members_only_but_still_honours_privacy(world: World):
    sync = definition(mode="add_only")
    crowd = people(4)
    world.set_people(crowd)
    world.run(sync)
    crowd["p000"] = replace(crowd["p000"], first_name="Changed")
    crowd["p001"] = replace(crowd["p001"], in_segment=False)
    crowd["p002"] = replace(crowd["p002"], deleted=True)
    crowd["p009"] = Person(email="late@example.com")
    world.set_people(crowd)
    result = world.run(sync, force=True)  # 1 removal of 4 is above the default 20% guard
    assert (result.plan.adds, result.plan.updates, result.plan.removes) == (1, 0, 1)
    received = world.received()
    assert received["person0@example.com"]["first_name"] == "Ada"  # not updated
    assert "person1@example.com" in received  # left the segment, not removed
    assert "person2@example.com" not in received  # deletion request: removed
    assert "late@example.com" in received


def test_mirror_never_removes_a_key_it_did_not_add(world: World):
    # someone else's record at the same destination, added by another sync
    other = definition("other_sync", mode="upsert")
    world.set_people({"x1": Person(email="theirs@example.com")})
    world.run(other)
    mine = definition("my_sync", mode="mirror")
    world.set_people(people(3))
    world.run(mine)
    world.set_people(people(2))  # one of mine leaves
    result = world.run(mine, force=True)
    assert result.plan.removes == 1
    assert set(world.received()) == {"theirs@example.com", "person0@example.com", "person1@example.com"}


def test_consent_and_holdout_exclude_people_and_the_holdout_is_stable(world: World):
    crowd = people(200)
    crowd["p000"] = replace(crowd["p000"], consent=False)
    world.set_people(crowd)
    sync = definition(holdout_percent=10)
    result = world.run(sync, batch_size=100)
    plan = result.plan
    assert plan.excluded_consent == 1
    assert 8 <= plan.excluded_holdout <= 35  # ~10% of 199
    assert plan.desired == 199 - plan.excluded_holdout == len(world.received())
    # the same people stay held out: a second run changes nothing
    assert world.run(sync, batch_size=100).plan.sendable == 0
    assert "person0@example.com" not in world.received()


def test_the_removal_guard_stops_before_sending_unless_forced(world: World):
    sync = definition(max_removal_share=0.3)
    world.set_people(people(10))
    world.run(sync)
    requests_before, state_before = len(world.sandbox.requests), world.state()
    world.set_people(people(6))  # 4 of 10 leave: 40% > 30%
    stopped = world.run(sync)
    assert stopped.status == "stopped"
    assert "4 removals are 40% of the 10 records" in stopped.message and "--force" in stopped.message
    assert len(world.sandbox.requests) == requests_before and world.state() == state_before
    assert world.last_run()["status"] == "stopped"
    forced = world.run(sync, force=True)
    assert forced.status == "succeeded" and len(world.received()) == 6


def test_an_empty_segment_stops_the_run_unless_forced(world: World):
    sync = definition(max_removal_share=1.0)
    world.set_people(people(3))
    world.run(sync)
    world.set_people(people(3, in_segment=False))
    stopped = world.run(sync)
    assert stopped.status == "stopped"
    assert "has no profiles to send" in stopped.message and "remove all 3 records" in stopped.message
    assert len(world.received()) == 3
    assert world.run(sync, force=True).status == "succeeded"
    assert world.received() == {}


def test_dry_run_writes_a_reviewable_plan_and_changes_nothing(world: World):
    sync = definition()
    world.set_people(people(4))
    world.run(sync)
    crowd = people(4)
    crowd["p000"] = replace(crowd["p000"], first_name="New")
    crowd["p005"] = Person(email="five@example.com")
    world.set_people(crowd)
    state_before, received_before, requests_before = world.state(), world.received(), len(world.sandbox.requests)
    result = world.run(sync, dry_run=True)
    assert result.status == "dry_run"
    assert world.state() == state_before and world.received() == received_before
    assert len(world.sandbox.requests) == requests_before
    plan = world.query('select op, record_key from cdp_sync."plan__test_sync" order by seq')
    assert plan == [("add", "five@example.com"), ("update", "person0@example.com")]
    assert world.last_run()["status"] == "dry_run" and world.last_run()["sent"] == 0


def test_null_duplicate_and_malformed_keys_are_reported_and_never_sent(world: World):
    crowd = people(3)
    crowd["n1"] = Person(email=None)
    crowd["d1"] = Person(email="shared@example.com")
    crowd["d2"] = Person(email="shared@example.com")
    crowd["m1"] = Person(email="not-an-email")
    world.set_people(crowd)
    result = world.run(definition())
    assert result.plan.invalid == 4 and result.plan.desired == 3
    assert result.status == "succeeded" and "4 invalid rows reported, not sent" in result.message
    assert set(world.received()) == {"person0@example.com", "person1@example.com", "person2@example.com"}
    reported = world.query(
        "select profile_id, error from cdp_sync.changes where status = 'invalid' order by profile_id"
    )
    assert reported == [
        ("d1", "duplicate key"),
        ("d2", "duplicate key"),
        ("m1", "malformed key"),
        ("n1", "null key"),
    ]
    assert world.last_run()["invalid"] == 4


def test_a_key_is_a_duplicate_only_among_members_that_would_be_sent_and_before_its_format(world: World):
    """duplicate_keys.sql's order: a key shared by an excluded member is no duplicate (the
    sendable one is sent); a malformed key two members share is reported as a duplicate."""
    crowd = people(2)
    crowd["c1"] = Person(email="person0@example.com", consent=False)  # shares person0's key, excluded
    crowd["m1"] = Person(email="not-an-email")
    crowd["m2"] = Person(email="not-an-email")
    world.set_people(crowd)
    result = world.run(definition())
    assert (result.plan.desired, result.plan.invalid, result.plan.excluded_consent) == (2, 2, 1)
    assert set(world.received()) == {"person0@example.com", "person1@example.com"}
    reported = world.query(
        "select profile_id, error from cdp_sync.changes where status = 'invalid' order by profile_id"
    )
    assert reported == [("m1", "duplicate key"), ("m2", "duplicate key")]


def test_a_key_that_becomes_ambiguous_is_left_alone_at_the_destination(world: World):
    crowd = people(3)
    world.set_people(crowd)
    world.run(definition())
    crowd["dup"] = Person(email="person0@example.com")  # a second profile claims person0's email
    world.set_people(crowd)
    result = world.run(definition())
    assert result.plan.removes == 0 and result.plan.invalid == 2
    assert "person0@example.com" in world.received()


def test_retryable_rejections_are_retried_next_run_and_permanent_ones_wait_for_a_change(world: World):
    sync = definition()
    crowd = people(6)
    world.set_people(crowd)
    world.sandbox.inject(
        Fault.reject(keys={"person1@example.com"}, retryable=True),
        Fault.reject(keys={"person4@example.com"}, retryable=False, error="record refused"),
    )
    first = world.run(sync)
    assert first.status == "partial"
    assert (first.confirmed, first.failed, first.rejected) == (4, 1, 1)
    assert (
        set(world.state())
        == set(world.received())
        == set(world.desired()) - {"person1@example.com", "person4@example.com"}
    )
    failures = world.query("select op, error, attempts, is_permanent from cdp_sync.failures order by is_permanent")
    assert failures == [
        ("add", "temporarily unable to store this record", 1, False),
        ("add", "record refused", 1, True),
    ]

    second = world.run(sync)
    assert second.plan.adds == 1 and second.plan.skipped_rejected == 1
    assert "person1@example.com" in world.received() and "person4@example.com" not in world.received()
    assert world.query("select status, error from cdp_sync.changes where status = 'skipped'")[-1][0] == "skipped"

    crowd["p004"] = replace(crowd["p004"], first_name="Fixed")  # the record changes: tried again
    world.set_people(crowd)
    third = world.run(sync)
    assert third.confirmed == 1 and world.received() == world.desired()
    assert world.query("select count(*) from cdp_sync.failures") == [(0,)]


def test_a_record_failing_every_run_stops_being_retried_after_max_attempts(world: World):
    sync = definition()
    world.set_people(people(1))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        world.sandbox.inject(Fault.reject(keys={"person0@example.com"}, retryable=True))
        result = world.run(sync)
        assert result.failed == 1, attempt
    assert world.query("select attempts, is_permanent from cdp_sync.failures") == [(MAX_ATTEMPTS, True)]
    assert world.run(sync).plan.skipped_rejected == 1


def test_a_destination_outage_fails_the_run_and_the_next_run_finishes_the_job(world: World):
    sync = definition()
    world.set_people(people(9))
    # batch 1 lands; batch 2 meets a 503 on every attempt (1 try + 2 retries)
    world.sandbox.inject_at(2, Fault.status(503))
    world.sandbox.inject_at(3, Fault.status(503))
    world.sandbox.inject_at(4, Fault.status(503))
    failed = world.run(sync)
    assert failed.status == "failed"
    assert "HTTP 503" in failed.message and "retried next run" in failed.message
    assert len(world.state()) == 3 and failed.confirmed == 3 and failed.failed == 3
    assert world.last_run()["status"] == "failed"
    recovered = world.run(sync)
    assert recovered.status == "succeeded" and recovered.plan.adds == 6
    assert world.received() == world.desired() and set(world.state()) == set(world.desired())


def test_throttling_and_timeouts_are_ridden_out_within_the_run(world: World):
    sync = definition()
    world.set_people(people(6))
    world.sandbox.inject(Fault.throttle(retry_after=0), Fault.timeout(1.0, apply_first=True))
    result = world.run(sync, read_timeout=0.3)
    assert result.status == "succeeded", result.message
    assert world.received() == world.desired()


def test_a_crash_between_send_and_commit_converges_without_duplicated_effects(world: World):
    sync = definition()
    world.set_people(people(6))

    def crash_after_second_batch(batch_number: int) -> None:
        if batch_number == 2:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        world.run(sync, after_send=crash_after_second_batch)
    # the destination has both batches, state only the first: never an unconfirmed record
    assert len(world.received()) == 6
    assert set(world.state()) <= set(world.received()) and len(world.state()) == 3
    assert world.last_run()["status"] == "running"

    applied_before = world.sandbox.applied
    recovered = world.run(sync)
    assert recovered.status == "succeeded" and recovered.plan.adds == 3
    # the re-sent batch carried the same change ids, so the receiver de-duplicated it
    assert world.sandbox.duplicate_deliveries == 1 and world.sandbox.applied == applied_before
    assert set(world.state()) == set(world.received()) == set(world.desired())
    statuses = [row[0] for row in world.query("select status from cdp_sync.runs order by started_at")]
    assert statuses == ["crashed", "succeeded"]


def test_one_sync_never_runs_twice_at_once(world: World):
    sync = definition()
    world.set_people(people(6))
    inside, release = threading.Event(), threading.Event()

    def hold(batch_number: int) -> None:
        inside.set()
        release.wait(10)

    first = threading.Thread(target=lambda: world.run(sync, after_send=hold))
    first.start()
    try:
        assert inside.wait(10)
        with pytest.raises(SyncAlreadyRunning, match=r"sync 'test_sync' is already running \(pid \d+"):
            world.run(sync)
    finally:
        release.set()
        first.join(10)
    assert world.received() == world.desired()
    assert [row[0] for row in world.query("select status from cdp_sync.runs")] == ["succeeded"]


def test_the_warehouse_records_hold_no_raw_personal_data(world: World):
    crowd = people(4)
    crowd["m1"] = Person(email="broken-address")
    world.set_people(crowd)
    world.sandbox.inject(Fault.reject(keys={"person2@example.com"}, retryable=False, error="bad person2@example.com"))
    world.run(definition())
    logged = world.query(
        """
        select string_agg(coalesce(error, '') || profile_id || coalesce(key_sha256, ''), ' ') from cdp_sync.changes
        union all select string_agg(coalesce(error, '') || key_sha256, ' ') from cdp_sync.failures
        union all select string_agg(coalesce(message, ''), ' ') from cdp_sync.runs
        """
    )
    text = " ".join(row[0] or "" for row in logged)
    assert "@" not in text and "broken-address" not in text
    assert re.search(r"[0-9a-f]{64}", text)  # keys appear only as SHA-256


def test_full_resync_resends_every_desired_record(world: World):
    sync = definition()
    world.set_people(people(4))
    world.run(sync)
    world.sandbox.inject()  # no fault
    result = world.run(sync, full_resync=True)
    assert result.plan.updates == 4 and result.confirmed == 4
    assert world.received() == world.desired()


def test_a_destination_that_refuses_our_credentials_mid_run_fails_the_run_with_a_clear_message(world: World):
    from destinations.base import DestinationConfigError

    sync = definition()
    world.set_people(people(6))
    world.sandbox.inject_at(2, Fault.status(401, title="invalid signature"))
    with pytest.raises(DestinationConfigError, match="refused"):
        world.run(sync)
    run = world.last_run()
    assert run["status"] == "failed" and "DestinationConfigError" in run["message"]
    assert run["confirmed"] == 3 and len(world.state()) == 3  # the first batch stays committed
    assert world.run(sync).status == "succeeded" and world.received() == world.desired()


def test_re_adding_someone_with_the_same_fields_is_a_new_delivery_not_a_duplicate(world: World):
    """A receiver de-duplicates by webhook-id; a later, identical add must not look like a
    re-send of the first one (the property test found this)."""
    sync = definition(mode="upsert")
    crowd = people(1)
    world.set_people(crowd)
    world.run(sync)
    world.set_people({"p000": replace(crowd["p000"], consent=False)})
    world.run(sync, force=True)
    assert world.received() == {}
    world.set_people(crowd)  # consent granted again, same fields as the first time
    result = world.run(sync)
    assert result.confirmed == 1 and world.received() == world.desired()
    assert world.sandbox.duplicate_deliveries == 0
