"""The legacy Customer Match mode (Google Ads OfflineUserDataJob: create → addOperations →
run → poll) of the google_customer_match connector, against the Google Ads emulator.

The connector contract suite runs here a second time, for this mode (imported below, with
this module's ``harness`` and ``sandbox`` fixtures): the suite proper runs each connector
type once, and the legacy mode is the same type. Then the emulator's rules, and what a user
of an allowlisted account would notice: partial failures mapped to exactly the right
records, the job polled to completion, a fault at every step recovered on the next run
with no duplicate effect (abandoned jobs never run), and a clear error for an account that
Google no longer allowlists.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from contract.google_customer_match import (
    LEGACY_TOKEN_ENV,
    LEGACY_USER_LIST,
    GoogleAdsLegacyHarness,
    GoogleAdsSandbox,
    email_hash,
)
from contract.test_connector_contract import (  # noqa: F401 - collected here for the legacy mode
    test_a_drop_with_no_retry_left_is_unavailable_and_sending_again_converges,
    test_a_dropped_connection_is_retried_within_the_send,
    test_a_full_batch_at_the_default_size_is_within_the_platform_limit,
    test_a_refused_identifier_is_rejected_without_echoing_it,
    test_a_retry_after_beyond_the_limit_gives_up_at_once,
    test_a_server_error_is_retried_within_the_send,
    test_a_timeout_is_retried_and_the_platform_ends_right,
    test_an_unreachable_platform_is_unavailable,
    test_configuration_errors_name_the_destination_and_the_option_never_a_secret,
    test_from_config_builds_a_working_connector_for_a_sync,
    test_per_record_failures_are_failed_when_retryable_and_rejected_otherwise,
    test_persistent_server_errors_make_the_platform_unavailable_after_the_retry_budget,
    test_platform_errors_that_echo_personal_data_are_redacted,
    test_refused_credentials_are_a_configuration_error_naming_the_destination_not_the_secret,
    test_the_connector_implements_the_interface,
    test_the_connector_refuses_more_than_its_batch_size_before_sending,
    test_throttling_is_waited_out_as_retry_after_asks,
    test_upserts_land_removals_delete_and_each_change_gets_one_outcome_in_order,
)
from sync_world import Person, World, definition

from destinations.base import Change, DestinationConfigError
from destinations.google_ads_legacy import GoogleAdsLegacyDestination
from destinations.google_customer_match import GoogleCustomerMatchDestination
from destinations.sandbox.faults import Fault
from destinations.sandbox.googleads import (
    DEFAULT_CUSTOMER_ID,
    DEFAULT_MANAGER_ID,
    DEFAULT_TOKEN,
    NOT_ALLOWLISTED_CUSTOMER_ID,
    GoogleAdsEmulator,
)
from destinations.sandbox.server import SandboxServer

# -- the contract suite, for this mode ----------------------------------------------------------


@pytest.fixture
def harness() -> GoogleAdsLegacyHarness:
    return GoogleAdsLegacyHarness()


@pytest.fixture
def sandbox(harness: GoogleAdsLegacyHarness) -> Iterator[GoogleAdsSandbox]:
    with harness.sandbox() as running:
        yield running


# -- the emulator's rules, over raw HTTP ----------------------------------------------------------

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def post(sb: GoogleAdsSandbox, path: str, body: dict[str, Any], headers: dict[str, str] = AUTH) -> requests.Response:
    return requests.post(f"{sb.base_url}{path}", json=body, headers=headers, timeout=5)


def create_job(sb: GoogleAdsSandbox, customer: str = DEFAULT_CUSTOMER_ID, user_list: str = "555", **kw):
    job = {
        "type": "CUSTOMER_MATCH_USER_LIST",
        "customerMatchUserListMetadata": {
            "userList": f"customers/{customer}/userLists/{user_list}",
            "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"},
        },
    }
    return post(sb, f"/customers/{customer}/offlineUserDataJobs:create", {"job": job}, **kw)


def create_op(*identifiers: dict[str, Any]) -> dict[str, Any]:
    return {"create": {"userIdentifiers": list(identifiers)}}


def status(sb: GoogleAdsSandbox, job: str) -> str:
    query = f"SELECT offline_user_data_job.status FROM offline_user_data_job WHERE offline_user_data_job.resource_name = '{job}'"
    (row,) = post(sb, f"/customers/{DEFAULT_CUSTOMER_ID}/googleAds:search", {"query": query}).json()["results"]
    return row["offlineUserDataJob"]["status"]


def codes(response: requests.Response) -> list[str]:
    details = response.json()["error"]["details"]
    return [v for d in details for e in d["errors"] for v in e["errorCode"].values()]


def held_emails(sb: GoogleAdsSandbox) -> list[str]:
    return sb.emulator.snapshot()["user_lists"][LEGACY_USER_LIST]["emails"]


def test_emulator_job_flow_applies_only_when_the_job_succeeds(sandbox: GoogleAdsSandbox):
    job = create_job(sandbox).json()["resourceName"]
    added = post(sandbox, f"/{job}:addOperations", {"operations": [create_op({"hashedEmail": h("a@x.com")})]})
    assert added.status_code == 200 and added.json() == {}
    assert status(sandbox, job) == "PENDING" and held_emails(sandbox) == []
    operation = post(sandbox, f"/{job}:run", {}).json()
    assert operation["name"].startswith(f"customers/{DEFAULT_CUSTOMER_ID}/operations/")
    assert status(sandbox, job) == "RUNNING" and held_emails(sandbox) == []  # not done at the first poll
    assert status(sandbox, job) == "SUCCESS" and held_emails(sandbox) == [h("a@x.com")]
    late = post(sandbox, f"/{job}:addOperations", {"operations": [create_op({"hashedEmail": h("b@x.com")})]})
    assert late.status_code == 400 and codes(late) == ["JOB_ALREADY_STARTED"]
    assert codes(post(sandbox, f"/{job}:run", {})) == ["JOB_ALREADY_STARTED"]


def test_emulator_partial_failure_locates_each_refused_operation(sandbox: GoogleAdsSandbox):
    job = create_job(sandbox).json()["resourceName"]
    operations = [
        create_op({"hashedEmail": h("a@x.com")}),
        create_op({"hashedEmail": "a@x.com"}),  # raw email where a hash belongs
        create_op(*[{"hashedEmail": h(f"{i}@x.com")} for i in range(21)]),  # more than 20 identifiers
        create_op({"hashedPhoneNumber": h("+16505550100")}),
    ]
    answer = post(sandbox, f"/{job}:addOperations", {"operations": operations, "enablePartialFailure": True}).json()
    failure = answer["partialFailureError"]
    assert failure["code"] == 3 and failure["message"].startswith("Multiple errors in 'details'.")
    (details,) = failure["details"]
    assert details["@type"] == "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure"
    located = [
        (e["location"]["fieldPathElements"][0], e["errorCode"]["offlineUserDataJobError"]) for e in details["errors"]
    ]
    assert located == [
        ({"fieldName": "operations", "index": 1}, "INVALID_SHA256_FORMAT"),
        ({"fieldName": "operations", "index": 2}, "TOO_MANY_USER_IDENTIFIERS"),
    ]
    assert sandbox.emulator.snapshot()["jobs"][job]["operations"] == 2  # the valid ones were kept

    whole = post(sandbox, f"/{job}:addOperations", {"operations": operations})  # no partial failure
    assert whole.status_code == 400 and codes(whole) == ["INVALID_SHA256_FORMAT", "TOO_MANY_USER_IDENTIFIERS"]
    assert sandbox.emulator.snapshot()["jobs"][job]["operations"] == 2


def test_emulator_takes_100000_identifiers_a_request_and_refuses_100001(sandbox: GoogleAdsSandbox):
    job = create_job(sandbox).json()["resourceName"]
    digest = h("a@x.com")
    ops = [create_op(*[{"hashedEmail": digest}] * 20) for _ in range(5000)]  # 100,000 identifiers
    assert post(sandbox, f"/{job}:addOperations", {"operations": ops}).status_code == 200
    refused = post(sandbox, f"/{job}:addOperations", {"operations": [*ops, create_op({"hashedEmail": digest})]})
    assert refused.status_code == 400 and codes(refused) == ["TOO_MANY_USER_IDENTIFIERS"]


def test_emulator_one_identifier_kind_per_entry(sandbox: GoogleAdsSandbox):
    job = create_job(sandbox).json()["resourceName"]
    both = create_op({"hashedEmail": h("a@x.com"), "hashedPhoneNumber": h("+16505550100")})
    response = post(sandbox, f"/{job}:addOperations", {"operations": [both], "enablePartialFailure": True})
    assert response.status_code == 400 and "oneof" in response.json()["error"]["message"]


def test_emulator_auth_allowlisting_lists_and_managers(sandbox: GoogleAdsSandbox):
    unauthenticated = create_job(sandbox, headers={"Authorization": "Bearer nope"})
    assert unauthenticated.status_code == 401 and codes(unauthenticated) == ["OAUTH_TOKEN_INVALID"]
    not_allowlisted = create_job(sandbox, customer=NOT_ALLOWLISTED_CUSTOMER_ID, user_list="556")
    assert not_allowlisted.status_code == 403 and codes(not_allowlisted) == [
        "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"
    ]
    assert codes(create_job(sandbox, user_list="999")) == ["INVALID_USER_LIST_ID"]
    stranger = create_job(sandbox, headers={**AUTH, "login-customer-id": "4444444444"})
    assert stranger.status_code == 403 and codes(stranger) == ["USER_PERMISSION_DENIED"]
    assert create_job(sandbox, headers={**AUTH, "login-customer-id": DEFAULT_MANAGER_ID}).status_code == 200


def test_emulator_runs_one_job_per_list_at_a_time_and_never_runs_an_abandoned_one():
    emulator = GoogleAdsEmulator(complete_after_seconds=0.3)
    with SandboxServer([emulator]) as server:
        sb = GoogleAdsSandbox(server, emulator)
        first = create_job(sb).json()["resourceName"]
        second = create_job(sb).json()["resourceName"]
        abandoned = create_job(sb).json()["resourceName"]
        for job in (first, second, abandoned):
            post(sb, f"/{job}:addOperations", {"operations": [create_op({"hashedEmail": h(job)})]})
        assert post(sb, f"/{first}:run", {}).status_code == 200
        busy = post(sb, f"/{second}:run", {})
        assert busy.status_code == 409 and codes(busy) == ["CONCURRENT_MODIFICATION"]
        time.sleep(0.35)  # nobody polls the first job: it finishes on its own
        assert post(sb, f"/{second}:run", {}).status_code == 200
        time.sleep(0.35)
        jobs = sb.emulator.snapshot()["jobs"]
        assert [jobs[j]["status"] for j in (first, second, abandoned)] == ["SUCCESS", "SUCCESS", "PENDING"]
        assert held_emails(sb) == sorted([h(first), h(second)])


# -- the connector in legacy mode -------------------------------------------------------------------


def upsert(key: str, **identifiers: Any) -> Change:
    return Change(f"chg-{key}-up", "upsert", key, identifiers or {"email": f"{key}@example.com"})


def test_an_account_google_no_longer_allowlists_is_told_to_use_data_manager(
    harness: GoogleAdsLegacyHarness, sandbox: GoogleAdsSandbox
):
    options = {**harness.options(sandbox), "customer_id": NOT_ALLOWLISTED_CUSTOMER_ID, "user_list_id": "556"}
    destination = GoogleCustomerMatchDestination.from_config("ads", options, harness.env(sandbox))
    assert isinstance(destination, GoogleAdsLegacyDestination)
    with pytest.raises(
        DestinationConfigError, match=r"CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE.*use mode: data_manager"
    ):
        destination.send([upsert("p1")])


def test_an_unknown_user_list_is_a_configuration_error_naming_user_list_id(
    harness: GoogleAdsLegacyHarness, sandbox: GoogleAdsSandbox
):
    options = {**harness.options(sandbox), "user_list_id": "999"}
    destination = GoogleCustomerMatchDestination.from_config("ads", options, harness.env(sandbox))
    with pytest.raises(DestinationConfigError, match=r"'ads'.*user_list_id"):
        destination.send([upsert("p1")])


def test_partial_failures_map_to_exactly_the_refused_records(
    harness: GoogleAdsLegacyHarness, sandbox: GoogleAdsSandbox
):
    sandbox.emulator.faults.on_route(
        "POST", r":addOperations$", Fault.reject(keys={email_hash("p2"), email_hash("p4")})
    )
    destination = harness.build(sandbox)
    outcomes = destination.send([harness.upsert(f"p{i}") for i in range(1, 6)])
    assert {o.change_id: o.status for o in outcomes} == {
        "chg-p1-up": "confirmed",
        "chg-p2-up": "rejected",
        "chg-p3-up": "confirmed",
        "chg-p4-up": "rejected",
        "chg-p5-up": "confirmed",
    }
    assert set(harness.held(sandbox)) == {"p1", "p3", "p5"}
    assert destination.report() == {
        "job_status": "SUCCESS",
        "jobs_created": 1,
        "jobs_succeeded": 1,
        "operations_added": 5,
        "operations_refused": 2,
    }


def test_the_job_is_polled_to_completion_and_a_failed_job_fails_its_records(
    harness: GoogleAdsLegacyHarness, sandbox: GoogleAdsSandbox
):
    destination = harness.build(sandbox)
    destination.send([harness.upsert("p1")])
    searches = [r for r in sandbox.emulator.requests if r.path.endswith("googleAds:search")]
    assert len(searches) == 2  # RUNNING, then SUCCESS
    sandbox.emulator.fail_jobs()
    outcomes = destination.send([harness.upsert("p2")])
    assert outcomes[0].status == "failed" and "FAILED" in outcomes[0].error
    assert set(harness.held(sandbox)) == {"p1"}


def person(i: int, **overrides: Any) -> Person:
    values = {
        "email": f"person{i}@example.com",
        "phone": f"+1650555{i:04d}",
        "postal_code": f"94{i:03d}",
        "country": "US",
    }
    values.update(overrides)
    return Person(**values)


@pytest.mark.parametrize(
    ("step", "route"),
    [
        ("create", r"offlineUserDataJobs:create$"),
        ("add", r":addOperations$"),
        ("run", r":run$"),
        ("poll", r"googleAds:search$"),
    ],
)
def test_a_fault_at_every_step_is_recovered_on_the_next_run_with_no_duplicate_effect(
    tmp_path: Path, harness: GoogleAdsLegacyHarness, sandbox: GoogleAdsSandbox, step: str, route: str
):
    """Each step's request lands and its answer is lost, past every retry. The run fails (or,
    for the poll, confirms the running job); the next run converges; a job abandoned before
    ``:run`` never runs, so nothing stale is ever applied."""
    world = World(tmp_path / "warehouse.duckdb", sandbox, harness)
    sync = definition(harness=harness, max_removal_share=1.0)
    world.set_people({f"p{i}": person(i) for i in range(3)})
    assert world.run(sync).status == "succeeded"
    second = {f"p{i}": person(i) for i in range(1, 5)} | {"p1": person(1, phone="+16505558888")}
    world.set_people(second)
    sandbox.emulator.faults.on_route("POST", route, Fault.drop(apply_first=True), times=3)
    broken = world.run(sync)
    assert broken.status == ("succeeded" if step == "poll" else "failed"), broken.message
    sandbox.emulator.faults.clear()
    healed = world.run(sync)
    assert healed.status == "succeeded", healed.message
    harness.wait_idle(sandbox)
    expected = sorted(hashlib.sha256(p.email.encode()).hexdigest() for p in second.values())
    snapshot = sandbox.emulator.snapshot()
    assert snapshot["user_lists"][LEGACY_USER_LIST]["emails"] == expected
    assert snapshot["user_lists"][LEGACY_USER_LIST]["phones"] == sorted(
        hashlib.sha256(p.phone.encode()).hexdigest() for p in second.values()
    )
    statuses = [job["status"] for job in snapshot["jobs"].values()]
    # abandoned jobs stay PENDING for good: three creates landed unanswered, or one job got operations
    assert statuses.count("PENDING") == {"create": 3, "add": 1}.get(step, 0)
    assert set(statuses) <= {"SUCCESS", "PENDING"}
    assert set(world.state()) == {p.email for p in second.values()}


def test_options_for_the_legacy_mode(harness: GoogleAdsLegacyHarness, sandbox: GoogleAdsSandbox):
    options = {k: v for k, v in harness.options(sandbox).items() if k != "user_list_id"}
    with pytest.raises(DestinationConfigError, match="option user_list_id is required in mode google_ads_legacy"):
        GoogleCustomerMatchDestination.from_config("ads", options, {LEGACY_TOKEN_ENV: "t"})
    built = GoogleCustomerMatchDestination.from_config(
        "ads",
        {**harness.options(sandbox), "base_url": None, "login_customer_id": DEFAULT_MANAGER_ID},
        {LEGACY_TOKEN_ENV: "t"},
    )
    assert built.base_url == "https://googleads.googleapis.com/v26"
    assert built._session.headers["login-customer-id"] == DEFAULT_MANAGER_ID
