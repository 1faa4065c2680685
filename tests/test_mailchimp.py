"""Mailchimp: the emulator's rules, the connector against it, and syncs through the engine —
all over real HTTP on loopback.

Mailchimp has no asynchronous job in this flow (the batch subscribe/update call answers
with its per-member results at once; archiving is one call per member), so there is no
job to poll. Its multi-call flow is: the batch call, then one archive call per removal, and
— when an archive finds nobody — one read of the list to tell "already gone" from
"no such list"; a fault at each of those steps is recovered on the next run.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests
from contract.mailchimp import LIST_ID, MailchimpHarness
from sync_world import Person, World, definition, people

from destinations.base import Change, DestinationConfigError, DestinationUnavailable
from destinations.identifiers import mailchimp_subscriber_hash
from destinations.mailchimp import MailchimpDestination, default_base_url
from destinations.sandbox.faults import Fault
from destinations.sandbox.mailchimp import (
    PROBLEM_CONTENT_TYPE,
    MailchimpEmulator,
    MailchimpSandbox,
)

API_KEY_ENV = "TEST_MAILCHIMP_API_KEY"


@pytest.fixture
def sandbox():
    with MailchimpSandbox(MailchimpEmulator(merge_fields={"LTV": "number"})) as running:
        yield running


def call(sandbox: MailchimpSandbox, method: str, path: str, *, key: str | None = None, **kwargs) -> requests.Response:
    """One request to the emulator as any client sends it (HTTP Basic, the key as password)."""
    auth = ("anystring", sandbox.api_key if key is None else key)
    return requests.request(method, sandbox.base_url + path, auth=auth, timeout=5, **kwargs)


def batch(sandbox: MailchimpSandbox, members: list[dict], **body) -> requests.Response:
    return call(sandbox, "POST", f"/lists/{sandbox.list_id}", json={"members": members, **body})


def member(email: str, **extra) -> dict:
    return {"email_address": email, "status_if_new": "subscribed", **extra}


def connector(sandbox: MailchimpSandbox, **options) -> MailchimpDestination:
    tuning = {"max_retries": 2, "backoff_factor": 0.0, "max_retry_after": 2.0, "timeout": 2.0}
    return MailchimpDestination(
        "crm-mailchimp",
        sandbox.api_key,
        sandbox.list_id,
        base_url=sandbox.base_url,
        **{
            **tuning,
            **options,
        },
    )


def upsert(email: str, **fields) -> Change:
    return Change(change_id=f"up-{email}", op="upsert", key=email, identifiers={"email": email}, fields=fields)


def remove(email: str) -> Change:
    return Change(change_id=f"rm-{email}", op="remove", key=email, identifiers={"email": email})


def statuses(outcomes) -> dict[str, str]:
    return {outcome.change_id: outcome.status for outcome in outcomes}


def assert_problem(response: requests.Response, status: int, title: str) -> dict:
    """Mailchimp's error body with its exact Content-Type (the SDK decodes by it)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["title"] == title and body["status"] == status
    assert {"type", "detail", "instance"} <= set(body)
    return body


# ============================================================== the emulator's rules


def test_the_batch_call_takes_500_members_and_refuses_501_with_nothing_applied(sandbox):
    at_limit = batch(sandbox, [member(f"a{i}@example.com") for i in range(500)], update_existing=True)
    assert at_limit.status_code == 200 and at_limit.json()["total_created"] == 500
    over = batch(sandbox, [member(f"b{i}@example.com") for i in range(501)], update_existing=True)
    assert_problem(over, 400, "Invalid Resource")
    assert sandbox.emulator.held_count() == 500  # none of the 501 landed


def test_a_wrong_or_missing_api_key_is_a_401_problem_and_changes_nothing(sandbox):
    wrong = call(sandbox, "POST", f"/lists/{sandbox.list_id}", key="0" * 32 + "-us19", json={"members": []})
    assert_problem(wrong, 401, "API Key Invalid")
    missing = requests.get(f"{sandbox.base_url}/lists/{sandbox.list_id}", timeout=5)
    assert_problem(missing, 401, "API Key Invalid")
    assert sandbox.emulator.members() == {}


def test_an_unknown_list_is_mailchimps_404_problem(sandbox):
    assert_problem(call(sandbox, "GET", "/lists/nope"), 404, "Resource Not Found")
    assert_problem(batch_to(sandbox, "nope"), 404, "Resource Not Found")
    assert_problem(call(sandbox, "DELETE", f"/lists/nope/members/{'0' * 32}"), 404, "Resource Not Found")


def batch_to(sandbox: MailchimpSandbox, list_id: str) -> requests.Response:
    return call(sandbox, "POST", f"/lists/{list_id}", json={"members": [member("a@example.com")]})


def test_per_member_errors_come_inside_a_200_and_the_rest_lands(sandbox):
    response = batch(
        sandbox,
        [
            member("Ann@Example.com", merge_fields={"FNAME": "Ann", "LTV": 12.5}, tags=["vip"]),
            member("not-an-email"),
            member("bob@example.com", merge_fields={"NICKNAME": "Bobby"}),
            member("cy@example.com", merge_fields={"LTV": "lots"}),
        ],
        update_existing=True,
    )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert [m["email_address"] for m in body["new_members"]] == ["Ann@Example.com"]
    assert body["total_created"] == 1 and body["error_count"] == 3
    errors = {e["email_address"]: e for e in body["errors"]}
    assert "looks fake or invalid" in errors["not-an-email"]["error"]
    assert errors["bob@example.com"]["error"] == "Your merge fields were invalid."
    assert errors["bob@example.com"]["field"] == "NICKNAME"
    assert errors["cy@example.com"]["field"] == "LTV"
    assert {e["error_code"] for e in body["errors"]} == {"ERROR_GENERIC"}
    [ann] = sandbox.emulator.members().values()
    assert ann["merge_fields"] == {"FNAME": "Ann", "LTV": 12.5} and ann["tags"] == ["vip"]


def test_a_required_merge_field_is_needed_for_a_new_member_unless_validation_is_skipped(sandbox):
    sandbox.emulator.add_merge_field(sandbox.list_id, "PLAN", required=True)
    body = batch(sandbox, [member("a@example.com"), member("b@example.com", merge_fields={"PLAN": "gold"})]).json()
    assert [e["field"] for e in body["errors"]] == ["PLAN"] and body["total_created"] == 1
    skipped = call(
        sandbox,
        "POST",
        f"/lists/{sandbox.list_id}",
        params={"skip_merge_validation": "true"},
        json={"members": [member("a@example.com")]},
    )
    assert skipped.json()["total_created"] == 1


def test_an_unsubscribed_member_cannot_be_subscribed_again_by_api(sandbox):
    emulator = sandbox.emulator
    subscriber_hash = emulator.seed_member("gone@example.com", status="unsubscribed")
    # batch with status: a per-member error, nothing changed
    body = batch(sandbox, [{"email_address": "gone@example.com", "status": "subscribed"}], update_existing=True).json()
    assert "compliance state" in body["errors"][0]["error"]
    # a single PUT with status: Mailchimp's problem title
    put = call(
        sandbox,
        "PUT",
        f"/lists/{sandbox.list_id}/members/{subscriber_hash}",
        json={"email_address": "gone@example.com", "status": "subscribed"},
    )
    assert_problem(put, 400, "Member In Compliance State")
    # status_if_new leaves an existing member's status alone and updates the rest
    body = batch(sandbox, [member("gone@example.com", merge_fields={"FNAME": "G"})], update_existing=True).json()
    assert body["updated_members"][0]["status"] == "unsubscribed" and body["error_count"] == 0
    assert emulator.members()[subscriber_hash]["status"] == "unsubscribed"
    assert emulator.members()[subscriber_hash]["merge_fields"] == {"FNAME": "G"}
    # pending (a confirmation email) is how an unsubscribed person is invited back
    pending = call(sandbox, "PATCH", f"/lists/{sandbox.list_id}/members/{subscriber_hash}", json={"status": "pending"})
    assert pending.status_code == 200 and pending.json()["status"] == "pending"


def test_a_permanently_deleted_address_cannot_be_added_again(sandbox):
    batch(sandbox, [member("forget@example.com")], update_existing=True)
    subscriber_hash = mailchimp_subscriber_hash("forget@example.com")
    deleted = call(sandbox, "POST", f"/lists/{sandbox.list_id}/members/{subscriber_hash}/actions/delete-permanent")
    assert deleted.status_code == 204
    put = call(
        sandbox,
        "PUT",
        f"/lists/{sandbox.list_id}/members/{subscriber_hash}",
        json={"email_address": "forget@example.com", "status_if_new": "subscribed"},
    )
    assert_problem(put, 400, "Forgotten Email Not Subscribed")
    body = batch(sandbox, [member("forget@example.com")], update_existing=True).json()
    assert "permanently deleted" in body["errors"][0]["error"]
    assert sandbox.emulator.members() == {}
    assert sandbox.emulator.snapshot()["lists"][sandbox.list_id]["forgotten"] == [subscriber_hash]


def test_an_existing_member_is_updated_only_with_update_existing(sandbox):
    batch(sandbox, [member("ann@example.com")], update_existing=True)
    body = batch(sandbox, [member("ANN@example.com", merge_fields={"FNAME": "Ann"})]).json()
    assert body["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
    created = call(
        sandbox,
        "POST",
        f"/lists/{sandbox.list_id}/members",
        json={"email_address": "ann@example.com", "status": "subscribed"},
    )
    assert_problem(created, 400, "Member Exists")
    assert batch(sandbox, [member("ann@example.com")], update_existing=True).json()["total_updated"] == 1


def test_archiving_answers_204_then_404_and_adding_again_restores_the_member(sandbox):
    emulator = sandbox.emulator
    batch(sandbox, [member("ann@example.com"), member("bob@example.com")], update_existing=True)
    emulator.seed_member("left@example.com", status="unsubscribed")
    for email in ("ann@example.com", "left@example.com"):
        path = f"/lists/{sandbox.list_id}/members/{mailchimp_subscriber_hash(email)}"
        assert call(sandbox, "DELETE", path).status_code == 204
        assert_problem(call(sandbox, "DELETE", path), 404, "Resource Not Found")
    assert set(emulator.held()) == {"bob@example.com"}
    body = batch(sandbox, [member("ann@example.com"), member("left@example.com")], update_existing=True).json()
    assert {m["email_address"]: m["status"] for m in body["new_members"]} == {
        "ann@example.com": "subscribed",
        "left@example.com": "unsubscribed",  # an archived unsubscribe is kept
    }


def test_at_most_10_requests_of_one_key_are_in_flight_and_the_11th_is_a_429(sandbox):
    emulator = sandbox.emulator
    emulator.faults.inject(*[Fault.timeout(0.6)] * 11)  # each admitted request holds its connection
    answers: list[int] = []

    def ping() -> None:
        answers.append(call(sandbox, "GET", "/ping").status_code)

    threads = [threading.Thread(target=ping) for _ in range(11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(answers) == [200] * 10 + [429]
    assert emulator.rate_violations == 1 and emulator.peak_connections == 10
    emulator.faults.clear()
    assert_problem(call(sandbox, "GET", "/ping", key="f" * 32 + "-us19"), 401, "API Key Invalid")


def test_members_are_paged_by_count_and_offset_up_to_1000(sandbox):
    batch(sandbox, [member(f"m{i}@example.com") for i in range(25)], update_existing=True)
    page = call(sandbox, "GET", f"/lists/{sandbox.list_id}/members", params={"count": 10, "offset": 20}).json()
    assert page["total_items"] == 25 and [m["email_address"] for m in page["members"]] == [
        f"m{i}@example.com" for i in range(20, 25)
    ]
    assert call(sandbox, "GET", f"/lists/{sandbox.list_id}/members", params={"count": 1000}).status_code == 200
    too_many = call(sandbox, "GET", f"/lists/{sandbox.list_id}/members", params={"count": 1001})
    assert_problem(too_many, 400, "Invalid Resource")


def test_tags_and_merge_fields_are_managed_as_mailchimp_does(sandbox):
    batch(sandbox, [member("ann@example.com", tags=["old"])], update_existing=True)
    path = f"/lists/{sandbox.list_id}/members/ann@example.com/tags"  # the email is accepted for the hash
    tagged = call(
        sandbox,
        "POST",
        path,
        json={"tags": [{"name": "vip", "status": "active"}, {"name": "old", "status": "inactive"}]},
    )
    assert tagged.status_code == 204
    assert [tag["name"] for tag in call(sandbox, "GET", path).json()["tags"]] == ["vip"]
    assert_problem(call(sandbox, "POST", path, json={"tags": [{"name": "x"}]}), 400, "Invalid Resource")
    created = call(
        sandbox, "POST", f"/lists/{sandbox.list_id}/merge-fields", json={"name": "Plan", "type": "text", "tag": "PLAN"}
    )
    assert created.status_code == 200 and created.json()["tag"] == "PLAN"
    assert_problem(
        call(
            sandbox,
            "POST",
            f"/lists/{sandbox.list_id}/merge-fields",
            json={"name": "Plan", "type": "text", "tag": "PLAN"},
        ),
        400,
        "Invalid Resource",
    )
    tags = [
        field["tag"] for field in call(sandbox, "GET", f"/lists/{sandbox.list_id}/merge-fields").json()["merge_fields"]
    ]
    assert tags == ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY", "LTV", "PLAN"]


def test_the_edge_403_has_no_api_error_body(sandbox):
    sandbox.emulator.block_at_edge()
    blocked = call(sandbox, "GET", "/ping")
    assert blocked.status_code == 403 and blocked.headers["Content-Type"] == "text/html"
    assert call(sandbox, "GET", "/ping").json() == {"health_status": "Everything's Chimpy!"}


def test_the_ready_document_names_the_api_root_key_and_list(sandbox):
    described = sandbox.server.ready_document()["platforms"]["mailchimp"]
    assert described["base_url"] == sandbox.base_url and described["api_key"].endswith("-us19")
    assert described["lists"][0]["id"] == "demo0list1" and "FNAME" in described["lists"][0]["merge_fields"]


# ============================================================== the connector


def test_options_hold_mailchimps_limits():
    env = {API_KEY_ENV: "0" * 32 + "-us19"}
    base = {"list_id": "abc123", "api_key_env": API_KEY_ENV}

    def refused(**options) -> str:
        with pytest.raises(DestinationConfigError) as raised:
            MailchimpDestination.from_config("crm-mailchimp", {**base, **options}, env)
        assert "crm-mailchimp" in str(raised.value)
        return str(raised.value)

    assert "batch_size" in refused(batch_size=501)
    assert "max_connections" in refused(max_connections=11)
    assert "status_if_new" in refused(status_if_new="unsubscribed")
    assert "tags" in refused(tags="vip")
    built = MailchimpDestination.from_config("crm-mailchimp", {**base, "batch_size": 500, "tags": ["vip"]}, env)
    assert built.batch_size == 500 and built.base_url == "https://us19.api.mailchimp.com/3.0"


def test_the_api_root_comes_from_the_keys_data_centre_and_a_key_without_one_is_named_not_shown():
    assert default_base_url("0123456789abcdef0123456789abcdef-us21") == "https://us21.api.mailchimp.com/3.0"
    secret = "0123456789abcdef0123456789abcdef"
    with pytest.raises(DestinationConfigError) as raised:
        MailchimpDestination.from_config(
            "crm-mailchimp", {"list_id": "x", "api_key_env": API_KEY_ENV}, {API_KEY_ENV: secret}
        )
    message = str(raised.value)
    assert f"${API_KEY_ENV}" in message and "base_url" in message and secret[:12] not in message


def test_wrong_credentials_are_a_configuration_error_naming_the_connection_and_variable(sandbox):
    wrong = "deadbeefdeadbeefdeadbeefdeadbeef-us19"
    options = {"list_id": sandbox.list_id, "api_key_env": API_KEY_ENV, "base_url": sandbox.base_url}
    destination = MailchimpDestination.from_config("crm-mailchimp", options, {API_KEY_ENV: wrong})
    with pytest.raises(DestinationConfigError) as raised:
        destination.send([upsert("ann@example.com")])
    message = str(raised.value)
    assert "crm-mailchimp" in message and "HTTP 401: API Key Invalid" in message and f"${API_KEY_ENV}" in message
    assert "deadbeefdead" not in message
    assert sandbox.emulator.members() == {}


def test_500_members_go_in_one_call_and_501_are_refused_before_sending(sandbox):
    destination = connector(sandbox)
    assert destination.batch_size == 500
    with pytest.raises(ValueError, match="batch_size 500"):
        destination.send([upsert(f"x{i}@example.com") for i in range(501)])
    assert sandbox.emulator.requests == []
    outcomes = destination.send([upsert(f"x{i}@example.com", FNAME=f"X{i}") for i in range(500)])
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    assert [(r.method, r.status) for r in sandbox.emulator.requests] == [("POST", 200)]
    assert sandbox.emulator.held_count() == 500
    assert destination.report()["new_members"] == 500


def test_a_partial_failure_is_mapped_to_exactly_the_right_records(sandbox):
    emulator = sandbox.emulator
    emulator.seed_member("existing@example.com", status="subscribed")
    emulator.seed_member("unsub@example.com", status="unsubscribed")
    emulator.seed_member("bounced@example.com", status="cleaned")
    batch(sandbox, [member("forgotten@example.com")], update_existing=True)
    forgotten = mailchimp_subscriber_hash("forgotten@example.com")
    call(sandbox, "POST", f"/lists/{sandbox.list_id}/members/{forgotten}/actions/delete-permanent")
    # new members, updated members and errors come back in three arrays: only the email ties them to records
    changes = [
        upsert("new1@example.com", FNAME="New"),
        upsert("bad.address(at)example"),
        upsert("Existing@Example.com", FNAME="Ex"),
        upsert("tagless@example.com", NICKNAME="n"),
        upsert("unsub@example.com", FNAME="Un"),
        upsert("forgotten@example.com"),
        upsert("bounced@example.com"),
        upsert("new2@example.com", LTV=3),
    ]
    outcomes = connector(sandbox).send(changes)
    assert [outcome.change_id for outcome in outcomes] == [change.change_id for change in changes]
    assert [outcome.status for outcome in outcomes] == [
        "confirmed",
        "rejected",
        "confirmed",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "confirmed",
    ]
    errors = {outcome.change_id: outcome.error for outcome in outcomes}
    assert "looks fake or invalid" in errors["up-bad.address(at)example"]
    assert "bad.address(at)example" not in errors["up-bad.address(at)example"]
    assert errors["up-tagless@example.com"].startswith("Your merge fields were invalid. (NICKNAME")
    assert "unsubscribed" in errors["up-unsub@example.com"] and "not re-subscribed" in errors["up-unsub@example.com"]
    assert "permanently deleted" in errors["up-forgotten@example.com"]
    assert "cleaned" in errors["up-bounced@example.com"]
    assert not any("@" in (error or "") for error in errors.values())
    held = emulator.held()
    assert set(held) == {"new1@example.com", "existing@example.com", "new2@example.com"}
    assert held["existing@example.com"]["merge_fields"] == {"FNAME": "Ex"}
    assert emulator.members()[mailchimp_subscriber_hash("unsub@example.com")]["status"] == "unsubscribed"


def test_a_retryable_refusal_is_failed_and_a_permanent_one_rejected(sandbox):
    sandbox.emulator.faults.inject(Fault.reject(keys={"slow@example.com"}, retryable=True))
    outcomes = connector(sandbox).send([upsert("slow@example.com"), upsert("fine@example.com")])
    assert statuses(outcomes) == {"up-slow@example.com": "failed", "up-fine@example.com": "confirmed"}
    assert "signed up to a lot of lists very recently" in outcomes[0].error and "@" not in outcomes[0].error


def test_new_members_get_status_if_new_existing_keep_theirs_and_tags_are_added(sandbox):
    emulator = sandbox.emulator
    emulator.seed_member("member@example.com", status="subscribed", tags=["manual"])
    destination = connector(sandbox, status_if_new="pending", tags=["cdp", "champions"])
    outcomes = destination.send(
        [upsert("fresh@example.com", tags="winback, vip"), upsert("member@example.com", FNAME="M", tags=None)]
    )
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    members = {m["email_address"]: m for m in emulator.members().values()}
    assert members["fresh@example.com"]["status"] == "pending"  # double opt-in: Mailchimp sends the email
    assert members["fresh@example.com"]["tags"] == ["cdp", "champions", "winback", "vip"]
    assert members["member@example.com"]["status"] == "subscribed"
    assert members["member@example.com"]["tags"] == ["manual", "cdp", "champions"]  # tags are only added
    assert destination.report()["new_members"] == 1 and destination.report()["updated_members"] == 1


def test_removals_archive_within_the_connection_limit_and_a_missing_member_is_confirmed(sandbox):
    emulator = sandbox.emulator
    emails = [f"r{i}@example.com" for i in range(120)]
    destination = connector(sandbox, max_connections=10, batch_size=500)
    destination.send([upsert(email) for email in emails])
    # archives take a moment, as over the internet: the pool's calls overlap
    emulator.faults.on_route("DELETE", r"/members/", Fault.timeout(0.02), times=1000)
    outcomes = destination.send([remove(email) for email in emails] + [remove("never@example.com")])
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    assert emulator.held_count() == 0
    assert {m["status"] for m in emulator.members().values()} == {"archived"}
    assert emulator.rate_violations == 0 and emulator.peak_connections == 10
    assert destination.report()["archived"] == 120 and destination.report()["already_archived"] == 1
    # the 404 was told apart from an unknown list by one read of the list
    assert len(emulator.requests_to("GET", f"/lists/{sandbox.list_id}")) == 1


def test_a_429_from_the_connection_limit_is_waited_out(sandbox):
    """Another tool holds one of the key's 10 connections: some of our 10 parallel archives
    get Mailchimp's 429 and are retried with back-off until they pass."""
    emulator = sandbox.emulator
    destination = connector(sandbox, max_connections=10, max_retries=6, backoff_factor=0.05)
    destination.send([upsert(f"t{i}@example.com") for i in range(40)])
    emulator.faults.on_route("GET", r"/ping$", Fault.timeout(0.8))
    # each archive holds its connection a little, so ours and the other tool's overlap
    emulator.faults.on_route("DELETE", r"/members/", Fault.timeout(0.05), times=1000)
    other_tool = threading.Thread(target=lambda: call(sandbox, "GET", "/ping"))
    other_tool.start()
    time.sleep(0.1)
    outcomes = destination.send([remove(f"t{i}@example.com") for i in range(40)])
    other_tool.join(5)
    assert {outcome.status for outcome in outcomes} == {"confirmed"}
    assert emulator.rate_violations > 0  # it was throttled, and rode it out
    assert emulator.held_count() == 0


def test_a_bare_403_is_the_platform_unavailable_and_a_403_problem_is_a_configuration_error(sandbox):
    destination = connector(sandbox)
    sandbox.emulator.block_at_edge()
    with pytest.raises(DestinationUnavailable, match="403 without an API error body"):
        destination.send([upsert("ann@example.com")])
    sandbox.emulator.faults.inject(Fault.status(403, title="User Disabled"))
    with pytest.raises(DestinationConfigError, match="HTTP 403: User Disabled"):
        destination.send([upsert("ann@example.com")])
    assert sandbox.emulator.members() == {}
    assert statuses(destination.send([upsert("ann@example.com")])) == {"up-ann@example.com": "confirmed"}


def test_an_unknown_list_is_a_configuration_error_naming_list_id(sandbox):
    for changes in ([upsert("ann@example.com")], [remove("ann@example.com")]):
        destination = MailchimpDestination("crm-mailchimp", sandbox.api_key, "nolist99", base_url=sandbox.base_url)
        with pytest.raises(DestinationConfigError) as raised:
            destination.send(changes)
        message = str(raised.value)
        assert (
            "crm-mailchimp" in message and "list_id 'nolist99'" in message and "HTTP 404: Resource Not Found" in message
        )


# ============================================================== syncs through the engine


@pytest.fixture
def world(tmp_path: Path):
    harness = MailchimpHarness()
    with harness.sandbox() as running:
        yield World(tmp_path / "warehouse.duckdb", running, harness)


def audience(world: World) -> dict[str, dict]:
    return world.received()


def test_a_mirror_sync_over_three_builds_leaves_the_audience_equal_to_the_segment(world: World):
    sync = definition(harness=world.harness, max_removal_share=1.0)
    builds = [
        people(8),
        {
            **people(8),
            "p002": Person(email="person2@example.com", in_segment=False),
            "p009": Person("new9@example.com"),
        },
        {
            **people(6, first_name="Grace", lifetime_value=99.0),
            "p000": Person(email="person0@example.com", consent=False),
            "p010": Person(email="ten@example.com"),
        },
    ]
    for build in builds:
        world.set_people(build)
        result = world.run(sync, batch_size=4)
        assert result.status == "succeeded", result.message
        assert audience(world) == world.desired()
    members = world.sandbox.emulator.members(LIST_ID)
    assert len(members) == len({m["email_address"] for m in members.values()})  # one member per address


def test_an_unsubscribed_member_is_reported_and_never_resubscribed(world: World):
    emulator = world.sandbox.emulator
    unsubscribed = emulator.seed_member("person1@example.com", status="unsubscribed", list_id=LIST_ID)
    pending = emulator.seed_member("person2@example.com", status="pending", list_id=LIST_ID)
    world.set_people(people(4))
    sync = definition(harness=world.harness)

    first = world.run(sync)
    assert first.status == "partial" and (first.confirmed, first.rejected) == (3, 1)
    assert any("unsubscribed" in error and "not re-subscribed" in error for error in first.errors)
    assert not any("person1" in error for error in first.errors)
    members = emulator.members(LIST_ID)
    assert members[unsubscribed]["status"] == "unsubscribed"  # never re-subscribed
    assert members[unsubscribed]["merge_fields"]["FNAME"] == "Ada"  # the rest was updated: no status was sent
    assert members[pending]["status"] == "pending"  # a double opt-in in progress is left to finish
    assert first.destination_report["not_resubscribed"] == 1
    assert world.last_run()["rejected"] == 1

    second = world.run(sync)  # a rejection is not retried until the record changes
    assert second.status == "succeeded" and second.sent == 0
    assert emulator.members(LIST_ID)[unsubscribed]["status"] == "unsubscribed"


def test_the_platform_figures_are_stored_with_the_run(world: World):
    world.set_people(people(5))
    sync = definition(harness=world.harness, max_removal_share=1.0)
    world.run(sync)
    world.set_people({**people(3), "p009": Person(email="x@example.com")})
    result = world.run(sync)
    report = json.loads(world.last_run()["destination_report"])
    assert report == result.destination_report
    assert report["new_members"] == 1 and report["archived"] == 2 and report["error_count"] == 0


@pytest.mark.parametrize(
    ("step", "method", "route"),
    [
        ("the batch call", "POST", r"^/3\.0/lists/[^/]+$"),
        ("an archive call", "DELETE", r"/members/[0-9a-f]{32}$"),
        ("the list read after a 404", "GET", r"^/3\.0/lists/[^/]+$"),
    ],
)
def test_a_fault_at_every_step_is_recovered_on_the_next_run_with_no_duplicate_effect(
    world: World, step: str, method: str, route: str
):
    emulator = world.sandbox.emulator
    sync = definition(harness=world.harness, max_removal_share=1.0)
    world.set_people(people(6))
    assert world.run(sync).status == "succeeded"
    # someone archived person5 in Mailchimp meanwhile: removing them finds nobody (a 404)
    call_emulator_delete(world, "person5@example.com")
    world.set_people({**people(4), "p010": Person(email="ten@example.com", first_name="Ten")})

    # more faults than the retry budget of every call that can reach this step
    emulator.faults.on_route(method, route, Fault.status(503, title="injected outage"), times=10)
    failed = world.run(sync)
    assert failed.status == "failed" and "HTTP 503" in failed.message, f"{step}: {failed.message}"
    emulator.faults.clear()

    recovered = world.run(sync)
    assert recovered.status == "succeeded", recovered.message
    assert audience(world) == world.desired()
    members = emulator.members(LIST_ID)
    assert len(members) == 7 and len({m["email_address"] for m in members.values()}) == 7
    assert {m["email_address"] for m in members.values() if m["status"] == "archived"} == {
        "person4@example.com",
        "person5@example.com",
    }
    assert world.run(sync).sent == 0  # converged: nothing left to send


def call_emulator_delete(world: World, email: str) -> None:
    sandbox = world.sandbox
    response = call(sandbox, "DELETE", f"/lists/{LIST_ID}/members/{mailchimp_subscriber_hash(email)}")
    assert response.status_code == 204
