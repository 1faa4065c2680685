"""Klaviyo: the connector (destinations/klaviyo.py) against the emulator
(destinations/sandbox/klaviyo.py) over real local sockets, and the emulator's own rules.

What every connector must do is the contract suite (tests/contract/), which runs this
connector too; here is what is particular to Klaviyo: the import → resolve → list add
flow and a fault at each of its steps (driven through the real engine with
tests/sync_world.py), Klaviyo's limits exactly at N and N+1 on both sides, its rate tiers,
import errors mapped back to records, fields that become empty, consent left alone on
removal. Klaviyo's windows are shortened (tests/contract/klaviyo.py) so nothing waits a
real minute. Each test says what a user would notice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from contract.klaviyo import WINDOWS, KlaviyoHarness, RunningKlaviyo, fast_emulator
from sync_world import Person, World, definition

from destinations.base import Change, DestinationConfigError, DestinationUnavailable
from destinations.http import Timeout
from destinations.klaviyo import (
    MAX_JOB_BYTES,
    REVISION,
    KlaviyoDestination,
    RateTier,
    _index_from_payload,
    job_size,
    split_into_jobs,
)
from destinations.sandbox.faults import Fault
from destinations.sandbox.klaviyo import DEFAULT_LIST_ID, SANDBOX_API_KEY, KlaviyoEmulator, members_by
from destinations.sandbox.server import SandboxServer

NAME = "crm-klaviyo"
JSON_API = "application/vnd.api+json"


# -- plumbing ------------------------------------------------------------------------------------


@pytest.fixture
def running() -> Iterator[RunningKlaviyo]:
    with Serving(fast_emulator()) as sandbox:
        yield sandbox


class Serving:
    """A sandbox host serving ``emulator``, as a context manager."""

    def __init__(self, emulator: KlaviyoEmulator) -> None:
        self.emulator = emulator
        self.server = SandboxServer([emulator])

    def __enter__(self) -> RunningKlaviyo:
        self.server.start()
        return RunningKlaviyo(self.server, self.emulator)

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()


def connector(sandbox: RunningKlaviyo, **overrides: Any) -> KlaviyoDestination:
    """A connector tuned for tests: two retries without back-off, short waits and windows."""
    options: dict[str, Any] = {
        "api_key": sandbox.emulator.api_key,
        "list_id": DEFAULT_LIST_ID,
        "base_url": sandbox.base_url,
        "timeout": Timeout(connect=1.0, read=2.0),
        "max_retries": 2,
        "backoff_factor": 0.0,
        "max_retry_after": 2.0,
        "window_seconds": WINDOWS,
        "poll_interval": 0.005,
        "poll_timeout": 10.0,
    }
    options.update(overrides)
    return KlaviyoDestination(NAME, **options)


def upsert(key: str, *, email: str | None = None, **fields: Any) -> Change:
    identifiers = {"email": email if email is not None else f"{key}@example.com"}
    return Change(f"chg-{key}-up", "upsert", key, identifiers=identifiers, fields=fields)


def remove(key: str, destination_id: str | None = None) -> Change:
    return Change(f"chg-{key}-rm", "remove", key, {"email": f"{key}@example.com"}, destination_id=destination_id)


def statuses(outcomes) -> dict[str, str]:
    return {outcome.change_id: outcome.status for outcome in outcomes}


def in_list(sandbox: RunningKlaviyo) -> dict[str, dict[str, Any]]:
    """The list's members by email."""
    return members_by(sandbox.emulator, "email")


def api(sandbox: RunningKlaviyo, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
    """A raw request to the emulator, with valid credentials unless told otherwise."""
    sent = {
        "Authorization": f"Klaviyo-API-Key {sandbox.emulator.api_key}",
        "revision": REVISION,
        "Accept": JSON_API,
        **({"Content-Type": JSON_API} if body is not None else {}),
        **headers,
    }
    sent = {name: value for name, value in sent.items() if value != ""}
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    return requests.request(method, f"{sandbox.base_url}{path}", data=data, headers=sent, timeout=10)


def job_body(n: int, *, pad: int = 0, list_id: str | None = None) -> dict:
    profiles = [
        {
            "type": "profile",
            "attributes": {"email": f"p{i}@example.com", **({"properties": {"x": "y" * pad}} if pad else {})},
        }
        for i in range(n)
    ]
    body: dict = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}}
    if list_id:
        body["data"]["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return body


def finish(sandbox: RunningKlaviyo, job_id: str) -> dict:
    """Poll a job until it completes; its attributes."""
    for _ in range(sandbox.emulator.polls_to_complete):
        attributes = api(sandbox, "GET", f"/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"]
    return attributes


def first_error(response: requests.Response) -> dict:
    [error] = response.json()["errors"]
    return error


# -- the emulator's rules ----------------------------------------------------------------------


def test_emulator_auth_answers_klaviyos_401_body(running):
    missing = api(running, "GET", f"/lists/{DEFAULT_LIST_ID}", Authorization="")
    wrong = api(running, "GET", f"/lists/{DEFAULT_LIST_ID}", Authorization="Klaviyo-API-Key pk_nope")
    assert (missing.status_code, first_error(missing)["code"]) == (401, "not_authenticated")
    assert (wrong.status_code, first_error(wrong)["code"]) == (401, "authentication_failed")
    error = first_error(wrong)
    assert all(isinstance(error[name], str) for name in ("id", "code", "title", "detail")) and error["status"] == 401
    assert "pk_nope" not in wrong.text
    assert api(running, "GET", f"/lists/{DEFAULT_LIST_ID}").status_code == 200


def test_emulator_requires_a_published_revision_header_and_json_api_bodies(running):
    assert api(running, "GET", f"/lists/{DEFAULT_LIST_ID}", revision="").status_code == 400
    unknown = api(running, "GET", f"/lists/{DEFAULT_LIST_ID}", revision="2099-01-15")
    assert unknown.status_code == 400 and first_error(unknown)["source"] == {"parameter": "revision"}
    assert api(running, "GET", f"/lists/{DEFAULT_LIST_ID}", revision="2026-07-15").status_code == 200
    plain_json = api(running, "POST", "/profile-bulk-import-jobs", job_body(1), **{"Content-Type": "application/json"})
    assert plain_json.status_code == 415


def test_emulator_takes_10000_profiles_per_import_job_and_refuses_10001(running):
    assert api(running, "POST", "/profile-bulk-import-jobs", job_body(10_000)).status_code == 202
    refused = api(running, "POST", "/profile-bulk-import-jobs", job_body(10_001))
    assert refused.status_code == 400 and first_error(refused)["code"] == "invalid"
    assert "10000" in first_error(refused)["detail"]


def _body_of_size(size: int) -> bytes:
    """An import job body of exactly ``size`` bytes: 60 profiles padded evenly."""
    base = json.dumps(job_body(60, pad=1), separators=(",", ":")).encode()
    per_profile, extra = divmod(size - len(base), 60)
    body = job_body(60, pad=1 + per_profile)
    body["data"]["attributes"]["profiles"]["data"][0]["attributes"]["properties"]["x"] += "y" * extra
    encoded = json.dumps(body, separators=(",", ":")).encode()
    assert len(encoded) == size
    return encoded


def test_emulator_takes_an_import_job_of_5000000_bytes_and_refuses_one_more(running):
    assert api(running, "POST", "/profile-bulk-import-jobs", _body_of_size(MAX_JOB_BYTES)).status_code == 202
    refused = api(running, "POST", "/profile-bulk-import-jobs", _body_of_size(MAX_JOB_BYTES + 1))
    assert refused.status_code == 400 and "5000000" in first_error(refused)["detail"]


def _profile_of_size(size: int) -> dict:
    profile = {"type": "profile", "attributes": {"email": "big@example.com", "properties": {"x": ""}}}
    profile["attributes"]["properties"]["x"] = "y" * (size - len(json.dumps(profile, separators=(",", ":"))))
    return profile


def test_emulator_takes_a_profile_of_100000_bytes_and_refuses_one_more(running):
    for size, status in ((100_000, 202), (100_001, 400)):
        body = {
            "data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [_profile_of_size(size)]}}}
        }
        assert api(running, "POST", "/profile-bulk-import-jobs", body).status_code == status


def test_emulator_takes_1000_ids_per_list_call_and_refuses_1001(running):
    ids = [running.emulator.seed_profile(email=f"m{i}@example.com") for i in range(1_001)]
    path = f"/lists/{DEFAULT_LIST_ID}/relationships/profiles"
    for method in ("POST", "DELETE"):
        refused = api(running, method, path, {"data": [{"type": "profile", "id": pid} for pid in ids]})
        assert refused.status_code == 400 and "1000" in first_error(refused)["detail"]
    assert (
        api(running, "POST", path, {"data": [{"type": "profile", "id": pid} for pid in ids[:1000]]}).status_code == 204
    )
    assert len(running.emulator.members()) == 1_000


def test_emulator_pages_at_most_100_and_filters_on_at_most_100_values(running):
    for i in range(101):
        running.emulator.seed_profile(email=f"q{i}@example.com")
    assert len(api(running, "GET", "/profiles?page[size]=100").json()["data"]) == 100
    assert api(running, "GET", "/profiles?page[size]=101").status_code == 400
    emails = [f"q{i}@example.com" for i in range(101)]
    hundred = api(running, "GET", "/profiles", params=None) if False else None
    hundred = requests.get(
        f"{running.base_url}/profiles",
        params={"filter": f"any(email,{json.dumps(emails[:100])})", "page[size]": "100"},
        headers={"Authorization": f"Klaviyo-API-Key {running.emulator.api_key}", "revision": REVISION},
        timeout=10,
    )
    assert hundred.status_code == 200 and len(hundred.json()["data"]) == 100
    too_many = requests.get(
        f"{running.base_url}/profiles",
        params={"filter": f"any(email,{json.dumps(emails)})"},
        headers={"Authorization": f"Klaviyo-API-Key {running.emulator.api_key}", "revision": REVISION},
        timeout=10,
    )
    assert too_many.status_code == 400


def test_emulator_rate_windows_are_counted_per_request_and_reported_in_headers():
    emulator = KlaviyoEmulator(tiers={"L": (3, 5)}, burst_seconds=0.5, steady_seconds=2.0)
    with Serving(emulator) as sandbox:
        answers = [api(sandbox, "GET", f"/lists/{DEFAULT_LIST_ID}") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]  # the burst: 3 a window
        assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["4", "3", "2"]
        assert answers[0].headers["RateLimit-Limit"] == "5" and answers[0].headers["RateLimit-Reset"] in {"1", "2"}
        assert answers[3].headers["Retry-After"] == "1" and "RateLimit-Limit" not in answers[3].headers
        assert first_error(answers[3])["code"] == "throttled"
        time.sleep(0.55)
        later = [api(sandbox, "GET", f"/lists/{DEFAULT_LIST_ID}") for _ in range(3)]
        assert [a.status_code for a in later] == [200, 200, 429]  # the steady window: 5 in 2 s
        assert emulator.violations["L"] == 2 and emulator.rate_violations == 2
        # another tier has windows of its own
        assert api(sandbox, "POST", "/profile-bulk-import-jobs", job_body(1)).status_code == 202


def test_emulator_jobs_are_not_complete_at_the_first_poll_and_complete_in_order():
    with Serving(fast_emulator(polls_to_complete=3)) as sandbox:
        older = api(sandbox, "POST", "/profile-bulk-import-jobs", job_body(2)).json()["data"]
        newer = api(sandbox, "POST", "/profile-bulk-import-jobs", job_body(3)).json()["data"]
        assert older["attributes"]["status"] == "queued" and older["links"]["self"].endswith(older["id"])
        seen = [finish_one(sandbox, newer["id"]) for _ in range(3)]
        assert [s["status"] for s in seen] == ["processing", "processing", "complete"]
        # the older job, never polled, completed first (Klaviyo works through jobs in order)
        assert sandbox.emulator.jobs[older["id"]].status == "complete"
        assert seen[-1]["completed_count"] == 3 and seen[-1]["failed_count"] == 0
    with pytest.raises(ValueError, match="at least 2"):
        KlaviyoEmulator(polls_to_complete=1)


def finish_one(sandbox: RunningKlaviyo, job_id: str) -> dict:
    return api(sandbox, "GET", f"/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"]


def test_emulator_reports_record_failures_only_inside_the_completed_job(running):
    body = job_body(3)
    body["data"]["attributes"]["profiles"]["data"][1]["attributes"] = {"email": "not-an-email"}
    body["data"]["attributes"]["profiles"]["data"][2]["attributes"] = {"phone_number": "0151 2345678"}
    created = api(running, "POST", "/profile-bulk-import-jobs", body)
    assert created.status_code == 202  # the request as a whole is fine
    job_id = created.json()["data"]["id"]
    assert api(running, "GET", f"/profile-bulk-import-jobs/{job_id}/import-errors").json()["data"] == []
    attributes = finish(running, job_id)
    assert (attributes["completed_count"], attributes["failed_count"]) == (1, 2)
    errors = api(running, "GET", f"/profile-bulk-import-jobs/{job_id}/import-errors").json()["data"]
    assert [e["attributes"]["source"]["pointer"] for e in errors] == [
        "/data/attributes/profiles/data/1/attributes/email",
        "/data/attributes/profiles/data/2/attributes/phone_number",
    ]
    assert all(e["type"] == "import-error" and e["attributes"]["code"] == "invalid" for e in errors)


def test_emulator_import_ignores_nulls_and_adds_to_a_list_only_when_named(running):
    first = {"email": "ann@example.com", "first_name": "Ann", "properties": {"tier": "gold"}}
    body = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": first}]}},
        }
    }
    finish(running, api(running, "POST", "/profile-bulk-import-jobs", body).json()["data"]["id"])
    assert running.emulator.members() == {}  # no list named: nobody added
    nulls = {"email": "ann@example.com", "first_name": None, "properties": {"tier": None}}
    body["data"]["attributes"]["profiles"]["data"][0]["attributes"] = nulls
    body["data"]["relationships"] = {"lists": {"data": [{"type": "list", "id": DEFAULT_LIST_ID}]}}
    finish(running, api(running, "POST", "/profile-bulk-import-jobs", body).json()["data"]["id"])
    [ann] = running.emulator.members().values()
    assert ann["first_name"] == "Ann" and ann["properties"] == {"tier": "gold"}  # nulls cleared nothing
    [profile_id] = running.emulator.members()
    patch = {"data": {"type": "profile", "id": profile_id, "attributes": {"first_name": None}}}
    patch["data"]["meta"] = {"patch_properties": {"unset": ["tier"]}}
    assert api(running, "PATCH", f"/profiles/{profile_id}", patch).status_code == 200
    assert running.emulator.profiles[profile_id]["first_name"] is None
    assert running.emulator.profiles[profile_id]["properties"] == {}


def test_emulator_404s_an_unknown_list_or_job_and_400s_an_unknown_profile_id(running):
    assert api(running, "GET", "/lists/NoSuch").status_code == 404
    assert api(running, "GET", "/lists/NoSuch/profiles").status_code == 404
    one = {"data": [{"type": "profile", "id": "01NOSUCHPROFILE"}]}
    assert api(running, "POST", "/lists/NoSuch/relationships/profiles", one).status_code == 404
    assert api(running, "POST", "/profile-bulk-import-jobs", job_body(1, list_id="NoSuch")).status_code == 404
    assert api(running, "GET", "/profile-bulk-import-jobs/NOSUCHJOB").status_code == 404
    unknown = api(running, "POST", f"/lists/{DEFAULT_LIST_ID}/relationships/profiles", one)
    assert unknown.status_code == 400 and first_error(unknown)["source"]["pointer"] == "/data/0/id"


def test_emulator_answers_409_duplicate_profile_and_keeps_identifiers_unique(running):
    ann = running.emulator.seed_profile(email="ann@example.com", phone_number="+15005550006")
    body = {"data": {"type": "profile", "attributes": {"email": "ann@example.com"}}}
    duplicate = api(running, "POST", "/profiles", body)
    assert duplicate.status_code == 409
    error = first_error(duplicate)
    assert error["code"] == "duplicate_profile" and error["meta"]["duplicate_profile_id"] == ann
    created = api(
        running, "POST", "/profiles", {"data": {"type": "profile", "attributes": {"email": "bo@example.com"}}}
    )
    assert created.status_code == 201 and created.json()["data"]["id"] != ann
    # an import giving Ann's phone to Bo: Klaviyo keeps identifiers unique, the record fails
    clash = job_body(1)
    clash["data"]["attributes"]["profiles"]["data"][0]["attributes"] = {
        "email": "bo@example.com",
        "phone_number": "+15005550006",
    }
    job_id = api(running, "POST", "/profile-bulk-import-jobs", clash).json()["data"]["id"]
    assert finish(running, job_id)["failed_count"] == 1


def test_emulator_removal_leaves_the_profile_and_its_consent(running):
    ann = running.emulator.seed_profile(email="ann@example.com", consent="SUBSCRIBED")
    path = f"/lists/{DEFAULT_LIST_ID}/relationships/profiles"
    api(running, "POST", path, {"data": [{"type": "profile", "id": ann}]})
    assert api(running, "DELETE", path, {"data": [{"type": "profile", "id": ann}]}).status_code == 204
    assert running.emulator.members() == {}
    assert running.emulator.profiles[ann]["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"


def test_emulator_search_lags_imports_by_the_configured_time():
    with Serving(fast_emulator(search_lag_seconds=30)) as sandbox:
        finish(sandbox, api(sandbox, "POST", "/profile-bulk-import-jobs", job_body(1)).json()["data"]["id"])
        assert api(sandbox, "GET", '/profiles?filter=equals(email,"p0@example.com")').json()["data"] == []
        assert len(sandbox.emulator.profiles) == 1


def test_emulator_faults_answer_in_klaviyos_own_shape(running):
    running.emulator.faults.inject(Fault.status(503, title="maintenance"), Fault.throttle(retry_after=3))
    unavailable = api(running, "GET", f"/lists/{DEFAULT_LIST_ID}")
    throttled = api(running, "GET", f"/lists/{DEFAULT_LIST_ID}")
    assert unavailable.status_code == 503 and first_error(unavailable)["title"] == "maintenance"
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert first_error(throttled)["code"] == "throttled"
    assert running.emulator.rate_violations == 0  # injected, not earned


def test_emulator_describes_itself_for_the_ready_file(running):
    described = running.server.ready_document()["platforms"]["klaviyo"]
    assert described["base_url"] == running.base_url and described["api_key"] == SANDBOX_API_KEY
    assert described["lists"] == [{"id": DEFAULT_LIST_ID, "name": "CDP sandbox audience"}]
    assert described["revision"] == REVISION


# -- the connector: limits -------------------------------------------------------------------


def test_batch_size_is_at_most_klaviyos_10000_profiles_per_job(running):
    """What the user sees: batch_size 10,000 is accepted, 10,001 names the option and the limit."""
    options = {"list_id": DEFAULT_LIST_ID, "api_key_env": "K", "base_url": running.base_url}
    assert KlaviyoDestination.from_config(NAME, {**options, "batch_size": 10_000}, {"K": "pk_x"}).batch_size == 10_000
    with pytest.raises(DestinationConfigError, match=r"crm-klaviyo.*batch_size must be an integer from 1 to 10000"):
        KlaviyoDestination.from_config(NAME, {**options, "batch_size": 10_001}, {"K": "pk_x"})
    with pytest.raises(ValueError, match="batch_size 10000"):
        connector(running).send([upsert(f"p{i}") for i in range(10_001)])
    assert running.emulator.requests == []


def test_a_batch_over_5_mb_is_split_into_jobs_each_within_the_limit(running):
    """What the user sees: 60 profiles of ~90 KB (5.4 MB) all land, in two import jobs."""
    batch = [upsert(f"p{i}", notes="n" * 90_000) for i in range(60)]
    outcomes = connector(running).send(batch)
    assert set(statuses(outcomes).values()) == {"confirmed"}
    assert len(running.emulator.requests_to("POST", "/profile-bulk-import-jobs")) == 2
    assert len(in_list(running)) == 60


def test_split_into_jobs_is_exact_at_the_byte_and_profile_limits():
    fixed = job_size([])
    assert split_into_jobs([MAX_JOB_BYTES - fixed]) == [range(0, 1)]
    half = (MAX_JOB_BYTES - fixed - 1) // 2
    assert split_into_jobs([half, half]) == [range(0, 2)]  # exactly 5,000,000 bytes or one less: one job
    assert split_into_jobs([half, half + 2]) == [range(0, 1), range(1, 2)]  # one byte over: two jobs
    assert job_size([half, half]) <= MAX_JOB_BYTES < job_size([half, half + 2])
    assert [len(r) for r in split_into_jobs([10] * 20_001)] == [10_000, 10_000, 1]


def test_a_profile_over_100_kb_is_rejected_before_sending_and_one_at_the_limit_lands(running):
    """What the user sees: the oversized record is rejected with the size and limit; the rest land."""
    at_limit = len(
        json.dumps(
            {"type": "profile", "attributes": {"email": "p1@example.com", "properties": {"notes": ""}}},
            separators=(",", ":"),
        )
    )
    outcomes = connector(running).send(
        [upsert("p1", notes="n" * (100_000 - at_limit)), upsert("p2", notes="n" * (100_001 - at_limit))]
    )
    assert statuses(outcomes) == {"chg-p1-up": "confirmed", "chg-p2-up": "rejected"}
    assert "100,001 bytes" in outcomes[1].error and "100,000" in outcomes[1].error
    assert set(in_list(running)) == {"p1@example.com"}


def test_list_calls_carry_at_most_1000_profile_ids(running):
    outcomes = connector(running).send([upsert(f"p{i}") for i in range(2_500)])
    assert set(statuses(outcomes).values()) == {"confirmed"}
    assert len(running.emulator.requests_to("POST", f"/lists/{DEFAULT_LIST_ID}/relationships/profiles")) == 3
    removals = connector(running).send([remove(f"p{i}", o.destination_id) for i, o in enumerate(outcomes)])
    assert set(statuses(removals).values()) == {"confirmed"}
    assert len(running.emulator.requests_to("DELETE", f"/lists/{DEFAULT_LIST_ID}/relationships/profiles")) == 3
    assert in_list(running) == {}


# -- the connector: the flow ----------------------------------------------------------------------


def test_an_import_job_is_polled_until_complete_and_its_counts_are_reported():
    with Serving(fast_emulator(polls_to_complete=5)) as sandbox:
        destination = connector(sandbox)
        outcomes = destination.send([upsert("p1", tier="gold"), upsert("p2"), upsert("bad", email="bad(at)x")])
        assert statuses(outcomes) == {"chg-p1-up": "confirmed", "chg-p2-up": "confirmed", "chg-bad-up": "rejected"}
        [job_id] = sandbox.emulator.jobs
        assert len(sandbox.emulator.requests_to("GET", f"/profile-bulk-import-jobs/{job_id}")) >= 5
        report = destination.report()
        assert {k: report[k] for k in ("import_jobs", "import_total_count", "import_completed_count")} == {
            "import_jobs": 1,
            "import_total_count": 3,
            "import_completed_count": 2,
        }
        assert (report["import_failed_count"], report["list_adds"], report["list_removes"]) == (1, 2, 0)
        assert all(o.destination_id for o in outcomes if o.status == "confirmed")


def test_a_job_that_never_completes_makes_klaviyo_unavailable_after_the_poll_timeout():
    """What the user sees: the run stops, naming the job and poll_timeout_seconds; nothing is in the list."""
    with Serving(fast_emulator(polls_to_complete=10_000)) as sandbox:
        with pytest.raises(
            DestinationUnavailable, match=r"import job \w+ is still processing .*poll_timeout_seconds=0.2"
        ):
            connector(sandbox, poll_timeout=0.2).send([upsert("p1")])
        assert in_list(sandbox) == {}


def test_import_errors_are_mapped_to_exactly_their_records(running):
    """What the user sees: the invalid email and phone and the record Klaviyo could not store
    are the only ones not confirmed, each with Klaviyo's words and no personal data."""
    running.emulator.faults.on_route(
        "POST", "profile-bulk-import-jobs$", Fault.reject(keys={"p4@example.com"}, retryable=True)
    )
    batch = [
        upsert("p0"),
        upsert("p1", email="p1(at)example.com"),
        upsert("p2"),
        Change("chg-p3-up", "upsert", "p3", {"email": "p3@example.com", "phone": "0151 2345678"}),
        upsert("p4"),
        upsert("p5"),
    ]
    outcomes = connector(running).send(batch)
    assert statuses(outcomes) == {
        "chg-p0-up": "confirmed",
        "chg-p1-up": "rejected",
        "chg-p2-up": "confirmed",
        "chg-p3-up": "rejected",
        "chg-p4-up": "failed",
        "chg-p5-up": "confirmed",
    }
    assert outcomes[1].error == "Invalid email address: [redacted]"
    assert outcomes[3].error.startswith("Invalid phone number [redacted]") and "2345678" not in outcomes[3].error
    assert set(in_list(running)) == {"p0@example.com", "p2@example.com", "p5@example.com"}


def test_an_error_without_a_pointer_is_mapped_by_its_original_payload():
    by_identifier = {("email", "ann@example.com"): 0, ("phone_number", "+15005550006"): 1}
    assert _index_from_payload({"email": "Ann@Example.com"}, by_identifier) == 0
    assert _index_from_payload({"attributes": {"phone_number": "+15005550006"}}, by_identifier) == 1
    assert _index_from_payload({"email": "zed@example.com"}, by_identifier) is None


def test_cached_ids_are_used_and_a_stale_one_is_resolved_again(running):
    """A profile id kept from an earlier run saves the look-up; if Klaviyo deleted that
    profile since, the list call's 400 makes the connector look the record up again."""
    first = connector(running).send([upsert("p1"), upsert("p2")])
    ids = {o.change_id: o.destination_id for o in first}
    lookups = len(running.emulator.requests_to("GET", "/profiles"))
    cached = [replace(upsert("p1", tier="gold"), destination_id=ids["chg-p1-up"])]
    assert statuses(connector(running).send(cached)) == {"chg-p1-up": "confirmed"}
    assert len(running.emulator.requests_to("GET", "/profiles")) == lookups  # no look-up needed

    stale = [replace(upsert("p2", tier="gold"), destination_id="01STALEPROFILEID000000000")]
    [outcome] = connector(running).send(stale)
    assert outcome.status == "confirmed" and outcome.destination_id == ids["chg-p2-up"]
    assert in_list(running)["p2@example.com"]["properties"] == {"tier": "gold"}


def test_a_profile_the_search_does_not_find_yet_is_named_by_the_409_duplicate():
    """Klaviyo's search lags its writes: the connector asks POST /profiles, whose 409 names
    the imported profile, and the record is confirmed with that id."""
    with Serving(fast_emulator(search_lag_seconds=60)) as sandbox:
        [outcome] = connector(sandbox).send([upsert("p1")])
        assert outcome.status == "confirmed"
        assert outcome.destination_id in sandbox.emulator.members()
        assert len(sandbox.emulator.requests_to("POST", "/api/profiles")) == 1
        assert len(sandbox.emulator.profiles) == 1  # no second profile


def test_an_unknown_list_is_a_configuration_error_naming_the_setting(running):
    """What the user sees: 'klaviyo destination … has no list 'NoSuch' … check option list_id'."""
    for batch in ([upsert("p1")], [remove("p1")]):
        with pytest.raises(DestinationConfigError) as raised:
            connector(running, list_id="NoSuch").send(batch)
        message = str(raised.value)
        assert NAME in message and "'NoSuch'" in message and "HTTP 404" in message and "list_id" in message


def test_a_refused_key_names_the_variable_never_the_key(running):
    options = {"list_id": DEFAULT_LIST_ID, "api_key_env": "KLAVIYO_KEY", "base_url": running.base_url}
    destination = KlaviyoDestination.from_config(NAME, options, {"KLAVIYO_KEY": "pk_wrong_but_well_formed_0123456789"})
    with pytest.raises(DestinationConfigError) as raised:
        destination.send([upsert("p1")])
    message = str(raised.value)
    assert "HTTP 401" in message and "$KLAVIYO_KEY" in message and NAME in message
    assert "pk_wrong" not in message


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ("M=20/150", "may only lower Klaviyo's published limits; M asks for more"),
        ("M=5", "must list tiers as TIER=per_second/per_minute"),
        ("Q=1/1", "must list tiers as TIER=per_second/per_minute"),
    ],
)
def test_rate_tiers_option_only_lowers_klaviyos_limits(tiers: str, problem: str):
    options = {"list_id": DEFAULT_LIST_ID, "api_key_env": "K", "rate_tiers": tiers}
    with pytest.raises(DestinationConfigError, match=problem):
        KlaviyoDestination.from_config(NAME, options, {"K": "pk_x"})
    lowered = KlaviyoDestination.from_config(NAME, {**options, "rate_tiers": "M=5/75, L=40/350"}, {"K": "pk_x"})
    assert lowered is not None


# -- the connector: rate limits ------------------------------------------------------------------


def test_the_connector_paces_itself_within_every_window():
    """What the user sees: a slower run with no 429 — Klaviyo never throttles this account."""
    tiers = {"M": (3, 6), "L": (4, 8)}
    with Serving(KlaviyoEmulator(tiers=tiers, burst_seconds=0.1, steady_seconds=0.6)) as sandbox:
        destination = connector(
            sandbox,
            rate_tiers={name: RateTier(*limits) for name, limits in tiers.items()},
            window_seconds=(0.1, 0.6),
        )
        started = time.monotonic()
        for first in range(0, 1_200, 400):
            outcomes = destination.send([upsert(f"p{i}") for i in range(first, first + 400)])
            assert set(statuses(outcomes).values()) == {"confirmed"}
        elapsed = time.monotonic() - started
        assert sandbox.emulator.rate_violations == 0
        m_calls = len([r for r in sandbox.emulator.requests if r.method in ("POST", "DELETE") or "bulk" in r.path])
        assert m_calls >= 12 and elapsed >= 0.6  # 12+ M-tier calls at 6 per 0.6 s take at least one window
        assert destination.report()["rate_limit_wait_seconds"] >= 0


def test_the_connector_follows_the_rate_limit_headers_of_a_shared_account():
    """Klaviyo's headers say the account has fewer requests left than the connector's own
    count (another integration shares it): the connector waits for the window instead of
    running into 429s."""
    with Serving(KlaviyoEmulator(tiers={"M": (10, 4)}, burst_seconds=1.0, steady_seconds=2.0)) as sandbox:
        destination = connector(sandbox, window_seconds=(1.0, 2.0), rate_tiers={})
        outcomes = destination.send([upsert("p1"), upsert("p2")])  # import, 2 polls, list add: 4 M calls
        outcomes += destination.send([upsert("p3")])  # 4 more: must wait for the steady window
        assert set(statuses(outcomes).values()) == {"confirmed"}
        assert sandbox.emulator.rate_violations == 0


def test_retry_after_is_honoured_when_the_account_is_stricter_than_configured():
    """An account whose limits are lower than the published tiers answers 429 with
    Retry-After; the connector waits as asked and every record still lands."""
    with Serving(KlaviyoEmulator(tiers={"M": (1, 100)}, burst_seconds=1.0)) as sandbox:
        started = time.monotonic()
        outcomes = connector(sandbox, window_seconds=(1.0, 60.0)).send([upsert("p1"), upsert("p2")])
        assert set(statuses(outcomes).values()) == {"confirmed"}
        assert sandbox.emulator.rate_violations >= 1 and time.monotonic() - started >= 1.0
        assert all(r.status in (202, 200, 204, 429) for r in sandbox.emulator.requests)


# -- through the engine: faults at every step, fields, consent ------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    harness = KlaviyoHarness()
    with harness.sandbox() as sandbox:
        yield World(tmp_path / "warehouse.duckdb", sandbox, harness)


def crowd(n: int, **overrides: Any) -> dict[str, Person]:
    return {f"p{i:03d}": Person(email=f"person{i}@example.com", **overrides) for i in range(n)}


STEPS = {
    "import job": ("POST", r"^/api/profile-bulk-import-jobs$"),
    "poll": ("GET", r"^/api/profile-bulk-import-jobs/[^/]+$"),
    "import errors": ("GET", r"/import-errors$"),
    "resolve": ("GET", r"^/api/profiles$"),
    "list add": ("POST", r"^/api/lists/[^/]+/relationships/profiles$"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_fault_at_each_upsert_step_is_recovered_next_run_without_duplicate_effect(world: World, step: str):
    """What the user sees: the run fails naming Klaviyo as unavailable; the next run
    delivers, and Klaviyo ends with one profile per person and each once in the list."""
    emulator = world.sandbox.emulator
    sync = definition(harness=world.harness)
    people = crowd(5)
    world.set_people(people)
    assert world.run(sync).status == "succeeded"  # two already there: updates, not only adds
    joined = {pid: m["joined_group_at"] for pid, m in emulator.members().items()}

    people = {**{k: replace(p, first_name="Grace") for k, p in people.items()}, **crowd(8)}
    people = {k: replace(p, first_name="Grace") for k, p in people.items()}
    world.set_people(people)
    if step == "import errors":  # read only when the job counts failures: make one
        emulator.faults.on_route(
            "POST", STEPS["import job"][1], Fault.reject(keys={"person6@example.com"}, retryable=True)
        )
    method, path = STEPS[step]
    emulator.faults.on_route(method, path, Fault.status(503, title="injected"), times=3)  # the whole retry budget
    failed = world.run(sync, force=True)
    assert failed.status == "failed" and "unavailable" in failed.message

    emulator.faults.clear()
    recovered = world.run(sync, force=True)
    assert recovered.status == "succeeded", recovered.message
    assert world.received() == world.desired()
    assert len(emulator.profiles) == len(people)  # an import is an upsert: no second profile
    assert len(emulator.members()) == len(people)
    still = {pid: m["joined_group_at"] for pid, m in emulator.members().items() if pid in joined}
    assert still == joined  # membership is a set: nobody was added twice


@pytest.mark.parametrize("step", ["look-up", "list removal"])
def test_a_fault_at_each_removal_step_is_recovered_next_run(world: World, step: str):
    emulator = world.sandbox.emulator
    sync = definition(harness=world.harness, max_removal_share=1.0)
    people = crowd(6)
    world.set_people(people)
    assert world.run(sync).status == "succeeded"
    # forget two cached ids, so those removals are looked up in the list
    with __import__("cdp.warehouse", fromlist=["connect"]).connect(world.path) as con:
        con.execute(
            "update cdp_sync.state set destination_id = null where record_key in ('person0@example.com', 'person1@example.com')"
        )
    world.set_people({k: replace(p, in_segment=int(k[1:]) >= 3) for k, p in people.items()})
    route = ("GET", r"^/api/lists/[^/]+/profiles$") if step == "look-up" else ("DELETE", r"relationships/profiles$")
    emulator.faults.on_route(*route, Fault.status(503, title="injected"), times=3)
    assert world.run(sync, force=True).status == "failed"
    emulator.faults.clear()
    assert world.run(sync, force=True).status == "succeeded"
    assert world.received() == world.desired() and len(world.received()) == 3
    assert len(emulator.profiles) == 6  # removal leaves the profiles


def test_a_field_that_becomes_empty_is_cleared_but_others_values_are_left_alone(world: World):
    """What the user sees in Klaviyo: the first name and lifetime value the sync wrote are gone
    once the warehouse has none; a first name a sign-up form gave someone is kept."""
    emulator = world.sandbox.emulator
    emulator.seed_profile(email="person1@example.com", first_name="Zoe")  # from a sign-up form
    sync = definition(harness=world.harness)
    world.set_people(
        {"p000": Person(email="person0@example.com"), "p001": Person(email="person1@example.com", first_name=None)}
    )
    assert world.run(sync).status == "succeeded"
    people = members_by(emulator, "email")
    assert people["person0@example.com"]["first_name"] == "Ada"
    assert people["person1@example.com"]["first_name"] == "Zoe"  # never ours to clear

    world.set_people(
        {
            "p000": Person(email="person0@example.com", first_name=None, lifetime_value=None),
            "p001": Person(email="person1@example.com", first_name=None),
        }
    )
    assert world.run(sync).status == "succeeded"
    people = members_by(emulator, "email")
    assert people["person0@example.com"]["first_name"] is None
    assert "lifetime_value" not in people["person0@example.com"]["properties"]
    assert people["person1@example.com"]["first_name"] == "Zoe"
    assert json.loads(world.last_run()["destination_report"])["fields_cleared"] == 2


def test_leaving_the_audience_leaves_the_list_and_keeps_consent(world: World):
    emulator = world.sandbox.emulator
    subscribed = emulator.seed_profile(email="person0@example.com", consent="SUBSCRIBED")
    sync = definition(harness=world.harness, max_removal_share=1.0)
    world.set_people(crowd(2))
    assert world.run(sync).status == "succeeded" and subscribed in emulator.members()
    world.set_people(crowd(2, in_segment=False))
    assert world.run(sync, force=True).status == "succeeded"
    assert emulator.members() == {}
    assert emulator.profiles[subscribed]["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"


def test_a_mirror_over_three_builds_leaves_the_list_equal_to_the_segment(world: World):
    """Three builds of a changing segment: Klaviyo's list holds exactly the segment each time,
    with current fields; the platform's own figures are stored with each run."""
    sync = definition(harness=world.harness, max_removal_share=1.0)
    builds = [
        crowd(6),
        {
            **crowd(9),
            "p001": Person(email="person1@example.com", in_segment=False),
            "p004": Person(email="person4@example.com", first_name="Grace"),
        },
        {
            **crowd(4),
            "p000": Person(email="person0@example.com", consent=False),
            "p010": Person(email="person10@example.com", lifetime_value=99.0),
        },
    ]
    for people in builds:
        world.set_people(people)
        result = world.run(sync, force=True)
        assert result.status == "succeeded", result.message
        assert world.received() == world.desired()
        report = json.loads(world.last_run()["destination_report"])
        assert report["import_jobs"] >= 1 and report["import_failed_count"] == 0
    assert world.sandbox.emulator.rate_violations == 0


def test_a_phone_keyed_sync_finds_and_removes_its_members_by_phone(world: World):
    sync = definition(
        harness=world.harness, key="phone", identifiers={"email": "email", "phone": "phone"}, max_removal_share=1.0
    )
    people = {f"p{i}": Person(email=f"person{i}@example.com", phone=f"+1650555{i:04d}") for i in range(4)}
    world.set_people(people)
    assert world.run(sync).status == "succeeded"
    assert sorted(members_by(world.sandbox.emulator, "phone_number")) == [f"+1650555{i:04d}" for i in range(4)]
    with __import__("cdp.warehouse", fromlist=["connect"]).connect(world.path) as con:
        con.execute("update cdp_sync.state set destination_id = null")  # removals must find them by phone
    world.set_people({k: replace(p, in_segment=k in ("p0", "p1")) for k, p in people.items()})
    assert world.run(sync, force=True).status == "succeeded"
    assert sorted(members_by(world.sandbox.emulator, "phone_number")) == ["+16505550000", "+16505550001"]


def test_a_fault_while_clearing_a_field_is_recovered_next_run(world: World):
    """The last step of an update whose field became empty: the run fails naming Klaviyo
    as unavailable, and the next run clears the field."""
    emulator = world.sandbox.emulator
    sync = definition(harness=world.harness)
    world.set_people({"p000": Person(email="person0@example.com")})
    assert world.run(sync).status == "succeeded"
    world.set_people({"p000": Person(email="person0@example.com", first_name=None)})
    emulator.faults.on_route("PATCH", r"^/api/profiles/[^/]+$", Fault.status(503, title="injected"), times=3)
    assert world.run(sync).status == "failed"
    assert members_by(emulator, "email")["person0@example.com"]["first_name"] == "Ada"
    emulator.faults.clear()
    assert world.run(sync).status == "succeeded"
    assert members_by(emulator, "email")["person0@example.com"]["first_name"] is None
    assert len(emulator.profiles) == 1 and world.received() == {"person0@example.com": {"lifetime_value": 10.0}}


def test_members_who_share_a_phone_stay_two_profiles_and_neither_is_sent_the_phone(world: World):
    """Klaviyo keeps a phone number on one profile only: importing a second person with a phone
    another profile holds would update that profile, email included, and two members would
    become one list entry. The plan withholds a phone two members share; a phone of one's own
    still goes."""
    sync = definition(harness=world.harness, identifiers={"email": "email", "phone": "phone"}, max_removal_share=1.0)
    family = "+16505550100"
    world.set_people(
        {
            "p0": Person(email="parent@example.com", phone=family),
            "p1": Person(email="child@example.com", phone=family),
            "p2": Person(email="neighbour@example.com", phone="+16505550199"),
        }
    )
    result = world.run(sync)
    assert result.status == "succeeded", result.message
    members = members_by(world.sandbox.emulator, "email")
    assert sorted(members) == ["child@example.com", "neighbour@example.com", "parent@example.com"]
    assert members["neighbour@example.com"]["phone_number"] == "+16505550199"
    assert members["parent@example.com"]["phone_number"] is None
    assert members["child@example.com"]["phone_number"] is None
    assert len(world.state()) == len(world.sandbox.emulator.members(DEFAULT_LIST_ID)) == 3

    # the neighbour leaves: the family's phone is nobody else's now and reaches the one who keeps it
    world.set_people(
        {
            "p0": Person(email="parent@example.com", phone=family),
            "p1": Person(email="child@example.com", phone="+16505550101"),
            "p2": Person(email="neighbour@example.com", phone="+16505550199", in_segment=False),
        }
    )
    assert world.run(sync).status == "succeeded"
    members = members_by(world.sandbox.emulator, "email")
    assert sorted(members) == ["child@example.com", "parent@example.com"]
    assert members["parent@example.com"]["phone_number"] == family
    assert members["child@example.com"]["phone_number"] == "+16505550101"
