"""Google Customer Match through the Data Manager API: the connector
(destinations/google_customer_match.py) against its emulator
(destinations/sandbox/datamanager.py) over a real local socket, and the emulator's own
rules. What every connector must do is the contract suite (tests/contract/), which runs
this connector too; here is what is particular to Data Manager: the fast-fail rule (one bad
member rejects the whole request) and how the connector isolates bad members, hashing,
consent and terms, the request status, the project quota, and the audience a sync leaves.

Each test says what a user would notice. Waits are shrunk (status polls every 10 ms, no
retry back-off) so the module runs in seconds.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from contract.google_customer_match import (
    MEMBER_ROUTE,
    TOKEN_ENV,
    GoogleCustomerMatchHarness,
    GoogleSandbox,
    email_hash,
)
from sync_world import Person, World, definition

from destinations.base import Change, DestinationConfigError, DestinationUnavailable
from destinations.config import DestinationConfig
from destinations.definitions import SyncDefinitionError, parse_sync_definition
from destinations.google_customer_match import GoogleCustomerMatchDestination
from destinations.http import Timeout
from destinations.identifiers import google_user_identifiers, hex_to_base64
from destinations.sandbox.datamanager import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_AUDIENCE_ID,
    DEFAULT_MANAGER_ID,
    DEFAULT_TOKEN,
    MAX_MEMBERS,
    DataManagerEmulator,
)
from destinations.sandbox.faults import Fault, RateWindow
from destinations.sandbox.server import SandboxServer

DEST = "google-ads-audience"


# -- plumbing -----------------------------------------------------------------------------


def running(emulator: DataManagerEmulator | None = None):
    """A context manager: a sandbox serving ``emulator`` (a default one if None)."""
    emulator = emulator or DataManagerEmulator()

    class _Running:
        def __enter__(self) -> GoogleSandbox:
            self.server = SandboxServer([emulator]).start()
            return GoogleSandbox(self.server, emulator)

        def __exit__(self, *exc: object) -> None:
            self.server.stop()

    return _Running()


@pytest.fixture
def dm() -> Iterator[GoogleSandbox]:
    with running() as sandbox:
        yield sandbox


def connector(sandbox: GoogleSandbox, **kwargs: Any) -> GoogleCustomerMatchDestination:
    """A connector tuned for tests: two retries, no back-off, 10 ms status polls."""
    options: dict[str, Any] = {
        "access_token": sandbox.emulator.token,
        "operating_account_id": DEFAULT_ACCOUNT_ID,
        "audience_id": DEFAULT_AUDIENCE_ID,
        "base_url": sandbox.base_url,
        "sync_name": "vip_to_google",
        "timeout": Timeout(connect=1.0, read=2.0),
        "max_retries": 2,
        "backoff_factor": 0.0,
        "max_retry_after": 2.0,
        "status_poll_seconds": 0.01,
        "status_wait_seconds": 2.0,
        "token_env": TOKEN_ENV,
    }
    options.update(kwargs)
    return GoogleCustomerMatchDestination(DEST, **options)


def upsert(key: str, **identifiers: Any) -> Change:
    identifiers = identifiers or {"email": f"{key}@example.com"}
    return Change(change_id=f"chg-{key}-up", op="upsert", key=key, identifiers=identifiers)


def remove(key: str, destination_id: str | None = None) -> Change:
    return Change(
        change_id=f"chg-{key}-rm",
        op="remove",
        key=key,
        identifiers={"email": f"{key}@example.com"},
        destination_id=destination_id,
    )


def statuses(outcomes) -> dict[str, str]:
    return {outcome.change_id: outcome.status for outcome in outcomes}


def audience(sandbox: GoogleSandbox, audience_id: str = DEFAULT_AUDIENCE_ID) -> dict[str, Any]:
    return sandbox.emulator.snapshot()["audiences"][audience_id]


def member_posts(sandbox: GoogleSandbox) -> list[Any]:
    return [r for r in sandbox.emulator.requests if r.method == "POST" and "/audienceMembers:" in r.path]


def polls(sandbox: GoogleSandbox) -> list[Any]:
    return [r for r in sandbox.emulator.requests if "requestStatus" in r.path]


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the emulator's own rules, over raw HTTP ----------------------------------------------

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


def body(members: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """An ingest body as the reference shows it: one destination, consent, terms, encoding."""
    payload: dict[str, Any] = {
        "destinations": [
            {
                "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": DEFAULT_ACCOUNT_ID},
                "productDestinationId": DEFAULT_AUDIENCE_ID,
            }
        ],
        "audienceMembers": members,
        "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"},
        "encoding": "HEX",
        "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


def member(*identifiers: dict[str, Any]) -> dict[str, Any]:
    return {"userData": {"userIdentifiers": list(identifiers)}}


def email_member(i: int) -> dict[str, Any]:
    return member({"emailAddress": h(f"person{i}@example.com")})


def call(sandbox: GoogleSandbox, path: str, payload: Any = None, *, headers=AUTH, **kwargs) -> requests.Response:
    url = f"{sandbox.base_url}{path}"
    if payload is None:
        return requests.get(url, headers=headers, timeout=5, **kwargs)
    return requests.post(url, json=payload, headers=headers, timeout=5, **kwargs)


def violations(response: requests.Response) -> list[dict[str, str]]:
    details = response.json()["error"].get("details", [])
    return [v for d in details for v in d.get("fieldViolations", [])]


def test_emulator_refuses_a_missing_or_wrong_token_with_googles_401(dm: GoogleSandbox):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": DEFAULT_TOKEN}):
        response = call(dm, "/audienceMembers:ingest", body([email_member(1)]), headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["status"] == "UNAUTHENTICATED" and error["code"] == 401
        assert "Bearer" in response.headers["WWW-Authenticate"]
    assert audience(dm)["emails"] == []


def test_emulator_takes_10000_members_and_refuses_10001_whole(dm: GoogleSandbox):
    accepted = call(dm, "/audienceMembers:ingest", body([email_member(i) for i in range(MAX_MEMBERS)]))
    assert accepted.status_code == 200 and accepted.json()["requestId"]
    assert len(audience(dm)["emails"]) == MAX_MEMBERS

    refused = call(
        dm, "/audienceMembers:ingest", body([email_member(i) for i in range(MAX_MEMBERS, 2 * MAX_MEMBERS + 1)])
    )
    assert refused.status_code == 400
    assert [v["reason"] for v in violations(refused)] == ["TOO_MANY_AUDIENCE_MEMBERS"]
    assert len(audience(dm)["emails"]) == MAX_MEMBERS  # nothing of the refused request was applied


def test_emulator_fast_fail_one_raw_email_rejects_the_whole_request_naming_the_member(dm: GoogleSandbox):
    members = [email_member(0), member({"emailAddress": "ann@example.com"}), email_member(2)]
    response = call(dm, "/audienceMembers:ingest", body(members))
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert violations(response) == [
        {
            "field": "audience_members.audience_members[1].user_data.user_identifiers",
            "description": "Email is not hex encoded.",
            "reason": "INVALID_HEX_ENCODING",
        }
    ]
    assert audience(dm)["emails"] == []  # fast fail: the two valid members were not applied either
    assert dm.emulator.snapshot()["requests"]["rejected"] == 1


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ({"emailAddress": h("a@example.com").upper()}, "INVALID_SHA256_FORMAT"),  # hex, but not lower-case
        ({"emailAddress": h("a@example.com")[:60]}, "INVALID_SHA256_FORMAT"),
        ({"phoneNumber": "+16505550100"}, "INVALID_HEX_ENCODING"),  # a raw phone number
        ({"emailAddress": h("a@x.com"), "phoneNumber": h("+16505550100")}, "INVALID_FORMAT"),  # two kinds in one
        ({"address": {"givenName": h("ann"), "familyName": h("lee"), "regionCode": "US"}}, "REQUIRED_FIELD_MISSING"),
        (
            {"address": {"givenName": h("ann"), "familyName": h("lee"), "regionCode": "us", "postalCode": "94025"}},
            "INVALID_REGION_CODE",
        ),
        (
            {"address": {"givenName": h("ann"), "familyName": h("lee"), "regionCode": "US", "postalCode": h("94025")}},
            "INVALID_POSTAL_CODE",  # the postal code is sent in the clear
        ),
        (
            {"address": {"givenName": "Ann", "familyName": h("lee"), "regionCode": "US", "postalCode": "94025"}},
            "INVALID_HEX_ENCODING",  # a raw name
        ),
    ],
)
def test_emulator_refuses_what_is_not_a_proper_hash_or_address(dm: GoogleSandbox, identifier, reason):
    response = call(dm, "/audienceMembers:ingest", body([email_member(0), member(identifier)]))
    assert response.status_code == 400
    assert [(v["field"].split(".user_data")[0], v["reason"]) for v in violations(response)] == [
        ("audience_members.audience_members[1]", reason)
    ]
    assert audience(dm) == {"operating_account_id": DEFAULT_ACCOUNT_ID, "emails": [], "phones": [], "addresses": []}


def test_emulator_base64_encoding_takes_32_byte_digests_only(dm: GoogleSandbox):
    digest = h("ann@example.com")
    ok = call(dm, "/audienceMembers:ingest", body([member({"emailAddress": hex_to_base64(digest)})], encoding="BASE64"))
    assert ok.status_code == 200
    assert audience(dm)["emails"] == [digest]  # held as the same hash a HEX upload gives
    hex_as_base64 = call(dm, "/audienceMembers:ingest", body([member({"emailAddress": digest})], encoding="BASE64"))
    assert [v["reason"] for v in violations(hex_as_base64)] == ["INVALID_SHA256_FORMAT"]
    garbage = call(dm, "/audienceMembers:ingest", body([member({"emailAddress": "not base64!"})], encoding="BASE64"))
    assert [v["reason"] for v in violations(garbage)] == ["INVALID_BASE64_ENCODING"]


def test_emulator_identifier_count_per_member_is_1_to_10(dm: GoogleSandbox):
    ten = member(*[{"emailAddress": h(f"{i}@example.com")} for i in range(10)])
    assert call(dm, "/audienceMembers:ingest", body([ten])).status_code == 200
    eleven = member(*[{"emailAddress": h(f"{i}@example.com")} for i in range(11)])
    assert [v["reason"] for v in violations(call(dm, "/audienceMembers:ingest", body([eleven])))] == [
        "TOO_MANY_USER_IDENTIFIERS"
    ]
    assert [v["reason"] for v in violations(call(dm, "/audienceMembers:ingest", body([member()])))] == [
        "NO_IDENTIFIERS_PROVIDED"
    ]


def test_emulator_requires_customer_match_terms_consent_and_encoding(dm: GoogleSandbox):
    no_terms = call(dm, "/audienceMembers:ingest", body([email_member(1)], termsOfService=None))
    assert [v["reason"] for v in violations(no_terms)] == ["TERMS_AND_CONDITIONS_NOT_SIGNED"]
    rejected_terms = body([email_member(1)], termsOfService={"customerMatchTermsOfServiceStatus": "REJECTED"})
    assert violations(call(dm, "/audienceMembers:ingest", rejected_terms))[0]["reason"] == (
        "TERMS_AND_CONDITIONS_NOT_SIGNED"
    )
    no_consent = call(dm, "/audienceMembers:ingest", body([email_member(1)], consent=None))
    assert [(v["field"], v["reason"]) for v in violations(no_consent)] == [
        ("audience_members.audience_members[0].consent", "REQUIRED_FIELD_MISSING")
    ]
    half_consent = call(dm, "/audienceMembers:ingest", body([email_member(1)], consent={"adUserData": 1}))
    assert violations(half_consent)[0]["field"] == "consent.ad_personalization"
    no_encoding = call(dm, "/audienceMembers:ingest", body([email_member(1)], encoding=None))
    assert [(v["field"], v["reason"]) for v in violations(no_encoding)] == [("encoding", "REQUIRED_FIELD_MISSING")]
    assert audience(dm)["emails"] == []

    # consent on every member instead of the request is enough
    with_member_consent = {**email_member(1), "consent": {"adUserData": 1, "adPersonalization": 1}}
    assert call(dm, "/audienceMembers:ingest", body([with_member_consent], consent=None)).status_code == 200
    assert audience(dm)["emails"] == [h("person1@example.com")]


def test_emulator_denied_consent_is_accepted_but_not_added(dm: GoogleSandbox):
    denied = {**email_member(2), "consent": {"adUserData": "CONSENT_DENIED", "adPersonalization": "CONSENT_GRANTED"}}
    response = call(dm, "/audienceMembers:ingest", body([email_member(1), denied]))
    assert response.status_code == 200
    assert audience(dm)["emails"] == [h("person1@example.com")]
    request_id = response.json()["requestId"]
    call(dm, "/requestStatus:retrieve", params={"requestId": request_id})
    (status,) = call(dm, "/requestStatus:retrieve", params={"requestId": request_id}).json()[
        "requestStatusPerDestination"
    ]
    assert status["requestStatus"] == "PARTIAL_SUCCESS"
    assert status["errorInfo"] == {
        "errorCounts": [{"recordCount": "1", "reason": "PROCESSING_ERROR_REASON_DENIED_CONSENT"}]
    }


def test_emulator_accepts_enums_as_numbers_and_answers_in_kind(dm: GoogleSandbox):
    numeric = body(
        [email_member(1)],
        destinations=[
            {"operatingAccount": {"accountType": 1, "accountId": DEFAULT_ACCOUNT_ID}, "productDestinationId": "555"}
        ],
        consent={"adUserData": 1, "adPersonalization": 1},
        encoding=1,
        termsOfService={"customerMatchTermsOfServiceStatus": 1},
    )
    int_enums = {"$alt": "json;enum-encoding=int"}
    response = call(dm, "/audienceMembers:ingest", numeric, params=int_enums)
    assert response.status_code == 200
    request_id = response.json()["requestId"]
    (first,) = call(dm, "/requestStatus:retrieve", params={"requestId": request_id, **int_enums}).json()[
        "requestStatusPerDestination"
    ]
    assert first["requestStatus"] == 2  # PROCESSING
    assert first["destination"]["operatingAccount"]["accountType"] == 1


def test_emulator_request_status_is_not_done_at_the_first_poll(dm: GoogleSandbox):
    members = [
        member({"emailAddress": h("a@example.com")}, {"phoneNumber": h("+16505550100")}),
        member({"emailAddress": h("b@example.com")}),
    ]
    request_id = call(dm, "/audienceMembers:ingest", body(members)).json()["requestId"]
    first, second = (
        call(dm, "/requestStatus:retrieve", params={"requestId": request_id}).json()["requestStatusPerDestination"][0]
        for _ in range(2)
    )
    assert first["requestStatus"] == "PROCESSING" and "errorInfo" not in first
    assert second["requestStatus"] == "SUCCESS"
    assert second["audienceMembersIngestionStatus"]["userDataIngestionStatus"] == {
        "recordCount": "2",
        "userIdentifierCount": "3",
        "uploadMatchRateRange": "MATCH_RATE_RANGE_91_TO_100",
    }
    unknown = call(dm, "/requestStatus:retrieve", params={"requestId": "nope"})
    assert unknown.status_code == 400 and violations(unknown)[0]["reason"] == "INVALID_REQUEST_ID"


def test_emulator_remove_takes_no_consent_and_removes_the_identifiers_it_names(dm: GoogleSandbox):
    both = member({"emailAddress": h("a@example.com")}, {"phoneNumber": h("+16505550100")})
    call(dm, "/audienceMembers:ingest", body([both, member({"emailAddress": h("b@example.com")})]))
    with_consent = call(dm, "/audienceMembers:remove", body([both], termsOfService=None))
    assert with_consent.status_code == 400 and 'Unknown name "consent"' in with_consent.json()["error"]["message"]
    removed = call(dm, "/audienceMembers:remove", body([both], consent=None, termsOfService=None))
    assert removed.status_code == 200
    assert audience(dm)["emails"] == [h("b@example.com")] and audience(dm)["phones"] == []


def test_emulator_unknown_audience_account_and_login(dm: GoogleSandbox):
    def destination(**changes):
        base = {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": DEFAULT_ACCOUNT_ID},
            "productDestinationId": DEFAULT_AUDIENCE_ID,
        }
        return body([email_member(1)], destinations=[{**base, **changes}])

    unknown = call(dm, "/audienceMembers:ingest", destination(productDestinationId="999"))
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    malformed = call(dm, "/audienceMembers:ingest", destination(productDestinationId="vip-list"))
    assert malformed.status_code == 400
    assert violations(malformed)[0] == {
        "field": "destinations[0].product_destination_id",
        "description": "User list is not valid.",
        "reason": "INVALID_USER_LIST_ID",
    }
    other_account = destination(operatingAccount={"accountType": "GOOGLE_ADS", "accountId": "9999999999"})
    assert call(dm, "/audienceMembers:ingest", other_account).json()["error"]["status"] == "PERMISSION_DENIED"
    stranger_login = destination(loginAccount={"accountType": "GOOGLE_ADS", "accountId": "4444444444"})
    assert call(dm, "/audienceMembers:ingest", stranger_login).status_code == 403
    manager_login = destination(loginAccount={"accountType": "GOOGLE_ADS", "accountId": DEFAULT_MANAGER_ID})
    assert call(dm, "/audienceMembers:ingest", manager_login).status_code == 200
    too_many = body([email_member(1)], destinations=[destination()["destinations"][0]] * 11)
    assert violations(call(dm, "/audienceMembers:ingest", too_many))[0]["reason"] == "TOO_MANY_DESTINATIONS"


def test_emulator_counts_requests_over_the_quota_and_throttles_them():
    emulator = DataManagerEmulator(requests_per_minute=RateWindow(3, 60.0))
    with running(emulator) as sandbox:
        answers = [call(sandbox, "/audienceMembers:ingest", body([email_member(i)])) for i in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    error = answers[-1].json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert int(answers[-1].headers["Retry-After"]) >= 59
    assert any(d["@type"].endswith("RetryInfo") for d in error["details"])
    assert emulator.rate_violations == 1


def test_emulator_faults_speak_google(dm: GoogleSandbox):
    dm.emulator.faults.inject(Fault.throttle(retry_after=3), Fault.status(503, title="backend unavailable"))
    throttled = call(dm, "/audienceMembers:ingest", body([email_member(1)]))
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["details"][1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "3s",
    }
    unavailable = call(dm, "/audienceMembers:ingest", body([email_member(1)]))
    assert unavailable.json() == {"error": {"code": 503, "message": "backend unavailable", "status": "UNAVAILABLE"}}


def test_emulator_can_hide_which_members_are_bad():
    emulator = DataManagerEmulator(name_members=False)
    with running(emulator) as sandbox:
        response = call(sandbox, "/audienceMembers:ingest", body([email_member(0), member({"emailAddress": "x"})]))
    assert [v["field"] for v in violations(response)] == ["audience_members"]


def test_emulator_a_request_can_fail_in_processing_unapplied(dm: GoogleSandbox):
    dm.emulator.fail_processing()
    request_id = call(dm, "/audienceMembers:ingest", body([email_member(1)])).json()["requestId"]
    call(dm, "/requestStatus:retrieve", params={"requestId": request_id})
    (status,) = call(dm, "/requestStatus:retrieve", params={"requestId": request_id}).json()[
        "requestStatusPerDestination"
    ]
    assert status["requestStatus"] == "FAILED" and audience(dm)["emails"] == []


def test_emulator_refuses_unknown_fields_like_googles_json_parser(dm: GoogleSandbox):
    response = call(dm, "/audienceMembers:ingest", body([{**email_member(1), "email": "ann@example.com"}]))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith('Invalid JSON payload received. Unknown name "email"')


# -- the connector: isolating what Data Manager would refuse --------------------------------


def test_a_member_without_a_usable_identifier_is_set_aside_without_a_request(dm: GoogleSandbox):
    """The user sees the record rejected with the reason; the others land in one request."""
    destination = connector(dm)
    batch = [
        upsert("p1"),
        upsert("p2", email="not an email", phone="12", first_name="Ann"),  # nothing Google can match on
        upsert("p3", phone="+44 20 7946 0958"),
        upsert("p4", first_name="Ann", last_name="Lee", zip="94025", country="US"),
    ]
    outcomes = destination.send(batch)
    assert statuses(outcomes) == {
        "chg-p1-up": "confirmed",
        "chg-p2-up": "rejected",
        "chg-p3-up": "confirmed",
        "chg-p4-up": "confirmed",
    }
    assert outcomes[1].error.startswith("no usable identifier") and "Ann" not in outcomes[1].error
    assert len(member_posts(dm)) == 1
    held = audience(dm)
    assert held["emails"] == [h("p1@example.com")]
    assert held["phones"] == [h("+442079460958")]
    assert held["addresses"] == [[h("ann"), h("lee"), "US", "94025"]]
    assert destination.report()["members_set_aside"] == 1

    only_bad = destination.send([upsert("p5", email="nope")])
    assert statuses(only_bad) == {"chg-p5-up": "rejected"} and len(member_posts(dm)) == 1


def test_members_google_names_are_rejected_exactly_and_the_rest_land_in_one_more_request(dm: GoogleSandbox):
    """Fast fail: the first request is refused whole; the connector sets aside exactly the
    members Google named and sends the others again — two requests for any number of bad ones."""
    dm.emulator.faults.on_route("POST", MEMBER_ROUTE, Fault.reject(keys={email_hash("p2"), email_hash("p4")}))
    destination = connector(dm)
    outcomes = destination.send([upsert(f"p{i}") for i in range(1, 6)])
    assert statuses(outcomes) == {
        "chg-p1-up": "confirmed",
        "chg-p2-up": "rejected",
        "chg-p3-up": "confirmed",
        "chg-p4-up": "rejected",
        "chg-p5-up": "confirmed",
    }
    assert "INVALID_AUDIENCE_MEMBER" in outcomes[1].error and "refused the whole request" in outcomes[1].error
    assert len(member_posts(dm)) == 2
    assert audience(dm)["emails"] == sorted(h(f"p{i}@example.com") for i in (1, 3, 5))
    report = destination.report()
    assert report["members_rejected_by_google"] == 2 and report["isolation_requests"] == 1


@pytest.mark.parametrize(("n", "bad"), [(1000, [7]), (1000, [3, 500, 999]), (64, list(range(0, 64, 9)))])
def test_unnamed_bad_members_are_found_by_bisection_within_the_bound(n: int, bad: list[int]):
    """When Google does not say which members are bad, the connector splits the request until
    it finds them: exactly the bad ones are rejected, every good one lands, none accepted is
    sent twice, and it takes at most 1 + 2·k·⌈log₂ n⌉ requests for k bad members."""
    emulator = DataManagerEmulator(name_members=False)
    for i in bad:
        # the platform refuses these members every time it sees them, without naming them
        emulator.faults.on_key(email_hash(f"p{i}"), Fault.reject(keys={email_hash(f"p{i}")}))
    with running(emulator) as sandbox:
        destination = connector(sandbox, max_isolation_requests=500)
        outcomes = destination.send([upsert(f"p{i}") for i in range(n)])
        posts = len(member_posts(sandbox))
    rejected = {o.change_id for o in outcomes if o.status == "rejected"}
    assert rejected == {f"chg-p{i}-up" for i in bad}
    assert all(o.status == "confirmed" for o in outcomes if o.change_id not in rejected)
    ingested = [keys for kind, keys in emulator.accepted_members if kind == "ingest"]
    assert len(ingested) == n - len(bad) == len(set(ingested))  # each good member accepted exactly once
    assert posts <= 1 + 2 * len(bad) * math.ceil(math.log2(n))


def test_isolation_stops_at_its_request_budget_and_leaves_the_rest_for_next_run():
    emulator = DataManagerEmulator(name_members=False)
    emulator.faults.on_key(email_hash("p5"), Fault.reject(keys={email_hash("p5")}))
    with running(emulator) as sandbox:
        outcomes = connector(sandbox, max_isolation_requests=3).send([upsert(f"p{i}") for i in range(16)])
        assert len(member_posts(sandbox)) == 3
    by_status = {status: sum(1 for o in outcomes if o.status == status) for status in ("confirmed", "failed")}
    assert by_status == {"confirmed": 8, "failed": 8}  # the half holding p5 waits for the next run
    assert "more than 3 requests" in next(o.error for o in outcomes if o.status == "failed")


def test_a_transient_reason_is_failed_not_rejected(dm: GoogleSandbox):
    dm.emulator.faults.on_route("POST", MEMBER_ROUTE, Fault.reject(keys={email_hash("p1")}, retryable=True))
    outcomes = connector(dm).send([upsert("p1"), upsert("p2")])
    assert statuses(outcomes) == {"chg-p1-up": "failed", "chg-p2-up": "confirmed"}
    assert "INTERNAL_ERROR" in outcomes[0].error


# -- the connector: limits, auth, settings ----------------------------------------------------


def test_batch_size_is_the_platform_limit_at_most(dm: GoogleSandbox):
    assert connector(dm).batch_size == MAX_MEMBERS
    with pytest.raises(DestinationConfigError, match=r"option batch_size must be an integer from 1 to 10000"):
        connector(dm, batch_size=MAX_MEMBERS + 1)
    destination = connector(dm)
    with pytest.raises(ValueError, match="batch_size 10000"):
        destination.send([upsert(f"p{i}") for i in range(MAX_MEMBERS + 1)])
    assert member_posts(dm) == []
    outcomes = destination.send([upsert(f"p{i}") for i in range(MAX_MEMBERS)])
    assert {o.status for o in outcomes} == {"confirmed"} and len(member_posts(dm)) == 1


def test_an_operating_account_the_token_cannot_use_is_a_configuration_error(dm: GoogleSandbox):
    with pytest.raises(DestinationConfigError) as raised:
        connector(dm, operating_account_id="9999999999").send([upsert("p1")])
    message = str(raised.value)
    assert DEST in message and "HTTP 403" in message and "operating_account_id" in message
    assert f"${TOKEN_ENV}" in message and DEFAULT_TOKEN not in message
    with pytest.raises(DestinationConfigError, match="login_account_id"):
        connector(dm, login_account_id="4444444444").send([upsert("p1")])
    assert statuses(connector(dm, login_account_id=DEFAULT_MANAGER_ID).send([upsert("p1")])) == {
        "chg-p1-up": "confirmed"
    }


@pytest.mark.parametrize("audience_id", ["999", "vip-list"], ids=["unknown", "malformed"])
def test_an_unknown_audience_is_a_configuration_error_naming_audience_id(dm: GoogleSandbox, audience_id: str):
    """Google's 404 (or its INVALID_USER_LIST_ID for a malformed id) stops the run with an
    error that names the setting to fix; no member is blamed."""
    with pytest.raises(DestinationConfigError) as raised:
        connector(dm, audience_id=audience_id).send([upsert("p1"), upsert("p2")])
    message = str(raised.value)
    assert DEST in message and "audience_id" in message
    assert ("HTTP 404" if audience_id == "999" else "INVALID_USER_LIST_ID") in message
    assert len(member_posts(dm)) == 1  # no bisection of a request-level refusal


def test_options_are_checked_per_mode():
    env = {TOKEN_ENV: "ya29.x"}
    base = {"access_token_env": TOKEN_ENV, "operating_account_id": DEFAULT_ACCOUNT_ID, "audience_id": "555"}

    def error(options: dict) -> str:
        with pytest.raises(DestinationConfigError) as raised:
            GoogleCustomerMatchDestination.from_config(DEST, options, env)
        assert DEST in str(raised.value)
        return str(raised.value)

    assert "option audience_id is required in mode data_manager" in error({**base, "audience_id": None})
    assert "option operating_account_id is required" in error(
        {k: v for k, v in base.items() if k != "operating_account_id"}
    )
    assert "write 123-456-7890 as 1234567890" in error({**base, "operating_account_id": "123-456-7890"})
    assert "option user_list_id applies only to mode google_ads_legacy" in error({**base, "user_list_id": "1"})
    assert "option operating_account_id applies only to mode data_manager" in error(
        {**base, "mode": "google_ads_legacy"}
    )
    assert "option encoding must be one of 'HEX', 'BASE64'" in error({**base, "encoding": "hex"})
    built = GoogleCustomerMatchDestination.from_config(DEST, base, env)
    assert built.base_url == "https://datamanager.googleapis.com/v1" and built.batch_size == MAX_MEMBERS
    unquoted = GoogleCustomerMatchDestination.from_config(DEST, {**base, "operating_account_id": 1234567890}, env)
    assert unquoted.operating_account_id == "1234567890"  # an unquoted YAML number is the same id


def test_the_demo_connection_in_destinations_yml_points_at_the_sandbox(monkeypatch: pytest.MonkeyPatch):
    from destinations.config import connect, load_destinations

    monkeypatch.delenv("CDP_SANDBOX_URL", raising=False)
    config = load_destinations()["demo_google_ads"]
    destination = connect(config, env={"CDP_DEMO_GOOGLE_ACCESS_TOKEN": DEFAULT_TOKEN})
    assert destination.base_url == "http://127.0.0.1:8765/datamanager/v1"
    assert (destination.operating_account_id, destination.audience_id) == (DEFAULT_ACCOUNT_ID, DEFAULT_AUDIENCE_ID)


def test_base64_encoding_lands_the_same_hashes(dm: GoogleSandbox):
    outcomes = connector(dm, encoding="BASE64").send(
        [upsert("p1", email="p1@example.com", first_name="Ann", last_name="Lee", zip="94025", country="US")]
    )
    assert statuses(outcomes) == {"chg-p1-up": "confirmed"}
    assert audience(dm)["emails"] == [h("p1@example.com")]
    assert audience(dm)["addresses"] == [[h("ann"), h("lee"), "US", "94025"]]


# -- the connector: throttling and the request status ------------------------------------------


def test_requests_are_paced_to_the_quota_so_the_window_is_never_exceeded():
    """The project quota is counted per request (polls too); the connector paces itself to it
    and the emulator records no violation. Without pacing the same work exceeds it."""
    for pace, expect_violations in ((5, False), (None, True)):
        emulator = DataManagerEmulator(requests_per_minute=RateWindow(5, 1.0))
        with running(emulator) as sandbox:
            destination = connector(
                sandbox, requests_per_minute=pace, pacing_window_seconds=1.0, max_retries=0, status_wait_seconds=0
            )
            started = time.monotonic()
            try:
                for i in range(4):  # 4 ingests + 4 first polls = 8 requests over a 5-per-second window
                    destination.send([upsert(f"p{i}")])
            except DestinationUnavailable:
                assert expect_violations
            elapsed = time.monotonic() - started
        if expect_violations:
            assert emulator.rate_violations > 0
        else:
            assert emulator.rate_violations == 0 and elapsed >= 1.0
            assert len(audience(sandbox)["emails"]) == 4


def test_a_throttled_request_is_waited_out_then_unavailable_past_the_budget(dm: GoogleSandbox):
    dm.emulator.faults.on_route("POST", MEMBER_ROUTE, Fault.throttle(retry_after=1), times=3)
    started = time.monotonic()
    with pytest.raises(DestinationUnavailable, match=r"HTTP 429.*after 3 attempts"):
        connector(dm, max_retries=2, max_retry_after=2.0).send([upsert("p1")])
    assert time.monotonic() - started >= 2.0  # two Retry-After waits of 1 s
    assert audience(dm)["emails"] == []


def test_each_request_is_polled_to_completion_and_reported(dm: GoogleSandbox):
    destination = connector(dm)
    destination.send(
        [upsert("p1", email="p1@example.com", phone="+16505550100"), upsert("p2"), upsert("p3", email="x")]
    )
    assert len(polls(dm)) == 2  # PROCESSING at the first poll, SUCCESS at the second
    assert destination.report() == {
        "ingest_requests": 1,
        "match_rate_range": "MATCH_RATE_RANGE_91_TO_100",
        "members_ingested": 2,
        "members_set_aside": 1,
        "records_processed": 2,
        "request_status": "SUCCESS",
        "requests_succeeded": 1,
        "user_identifiers_processed": 3,
    }


def test_a_request_still_processing_at_the_deadline_is_confirmed_and_reported():
    emulator = DataManagerEmulator(polls_to_complete=1000)
    with running(emulator) as sandbox:
        destination = connector(sandbox, status_wait_seconds=0.1)
        outcomes = destination.send([upsert("p1")])
        assert statuses(outcomes) == {"chg-p1-up": "confirmed"}  # accepted: Google processes it
        assert destination.report()["requests_processing"] == 1


def test_a_request_that_fails_in_processing_fails_its_members(dm: GoogleSandbox):
    dm.emulator.fail_processing()
    destination = connector(dm)
    outcomes = destination.send([upsert("p1"), upsert("p2")])
    assert {o.status for o in outcomes} == {"failed"}
    assert "processing FAILED (PROCESSING_ERROR_REASON_INTERNAL_ERROR: 2)" in outcomes[0].error
    assert destination.report()["requests_failed"] == 1


def test_an_unreadable_status_does_not_undo_an_accepted_request(dm: GoogleSandbox):
    dm.emulator.faults.on_route("GET", "requestStatus", Fault.status(503, title="busy"), times=100)
    destination = connector(dm, status_wait_seconds=0.05)
    assert statuses(destination.send([upsert("p1")])) == {"chg-p1-up": "confirmed"}
    assert destination.report()["status_reads_failed"] >= 1


# -- through the engine: consent, updates, removals, faults at every step ------------------------


@pytest.fixture
def world(tmp_path: Path, dm: GoogleSandbox) -> World:
    return World(tmp_path / "warehouse.duckdb", dm, GoogleCustomerMatchHarness())


def expected_audience(people: dict[str, Person]) -> dict[str, Any]:
    """What Google should hold for the consenting members of the segment, as it hashes them."""
    emails, phones, addresses = set(), set(), set()
    for p in people.values():
        if not (p.in_segment and p.consent and not p.deleted):
            continue
        identifiers = {
            "email": p.email,
            "phone": p.phone,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "zip": p.postal_code,
            "country": p.country,
        }
        for entry in google_user_identifiers(identifiers):
            if "emailAddress" in entry:
                emails.add(entry["emailAddress"])
            elif "phoneNumber" in entry:
                phones.add(entry["phoneNumber"])
            else:
                a = entry["address"]
                addresses.add((a["givenName"], a["familyName"], a["regionCode"], a["postalCode"]))
    return {"emails": sorted(emails), "phones": sorted(phones), "addresses": [list(a) for a in sorted(addresses)]}


def held(world: World) -> dict[str, Any]:
    snapshot = audience(world.sandbox)
    return {key: snapshot[key] for key in ("emails", "phones", "addresses")}


def person(i: int, **overrides: Any) -> Person:
    values = {
        "email": f"person{i}@example.com",
        "phone": f"+1650555{i:04d}",
        "first_name": ["Ann", "Grace", "Alan"][i % 3],
        "last_name": f"Lee{chr(97 + i % 26)}",
        "postal_code": f"94{i:03d}",
        "country": "US",
    }
    values.update(overrides)
    return Person(**values)


def test_a_sync_must_filter_by_ads_personalization_consent():
    """The connector tells Google every member consented; a sync that does not filter by
    that consent is refused when definitions are loaded, naming the field."""
    destinations = {"ads": DestinationConfig("ads", "google_customer_match", {})}
    spec = {"segment": "vip", "destination": "ads", "mode": "mirror", "key": "email", "identifiers": {"email": "email"}}
    exposure = {"name": "vip_to_google", "depends_on": {"nodes": []}}
    for purpose in (None, "email_marketing"):
        with pytest.raises(
            SyncDefinitionError, match=r"field 'consent_purpose'.*set consent_purpose: ads_personalization"
        ):
            parse_sync_definition(exposure, {**spec, "consent_purpose": purpose}, destinations)
    sync = parse_sync_definition(exposure, {**spec, "consent_purpose": "ads_personalization"}, destinations)
    assert sync.consent_column == "has_ads_personalization_consent"


def test_a_mirror_sync_over_three_builds_leaves_the_audience_equal_to_the_segment(world: World):
    """Adds, a changed phone, a changed address, people leaving, a consent revoked: after each
    build the audience holds exactly the segment's consenting members, as Google hashes them."""
    sync = definition(harness=world.harness, max_removal_share=1.0)
    builds = [
        {f"p{i}": person(i) for i in range(6)} | {"p9": person(9, consent=False)},
        {f"p{i}": person(i) for i in range(1, 6)}
        | {"p2": person(2, phone="+16505559999"), "p3": person(3, postal_code="10001"), "p6": person(6)},
        {f"p{i}": person(i) for i in (1, 2, 6, 7)} | {"p2": person(2, phone="+16505559999", consent=False)},
    ]
    for people in builds:
        world.set_people(people)
        result = world.run(sync, batch_size=4)
        assert result.status == "succeeded", result.message
        assert held(world) == expected_audience(people)
        assert set(world.state()) == {p.email for p in people.values() if p.consent}
    assert result.destination_report["request_status"] == "SUCCESS"
    (stored,) = world.query(
        "select destination_report from cdp_sync.runs where run_id = :run_id", {"run_id": result.run_id}
    )[0]
    assert '"request_status": "SUCCESS"' in stored


@pytest.mark.parametrize(
    ("step", "method", "route"),
    [
        ("ingest", "POST", r"audienceMembers:ingest$"),
        ("remove", "POST", r"audienceMembers:remove$"),
        ("status", "GET", r"requestStatus:retrieve$"),
    ],
)
def test_a_fault_at_every_step_is_recovered_on_the_next_run(world: World, step: str, method: str, route: str):
    """Each call of the flow breaks past its retries (the request applied, then the answer
    lost); the run reports failures, and the next run converges with no duplicate effect."""
    sync = definition(harness=world.harness, max_removal_share=1.0)
    first = {f"p{i}": person(i) for i in range(4)}
    world.set_people(first)
    assert world.run(sync).status == "succeeded"
    second = {f"p{i}": person(i) for i in range(2, 7)} | {"p3": person(3, phone="+16505558888")}
    world.set_people(second)
    world.sandbox.emulator.faults.on_route(method, route, Fault.drop(apply_first=True), times=50)
    broken = world.run(sync)
    if step == "status":
        assert broken.status == "succeeded"  # accepted requests stand; the status is reported as unread
        assert broken.destination_report["status_reads_failed"] >= 1
    else:
        assert broken.status == "failed" and "dropped" in broken.message
    world.sandbox.emulator.faults.clear()
    healed = world.run(sync)
    assert healed.status == "succeeded", healed.message
    assert held(world) == expected_audience(second)
    assert set(world.state()) == {p.email for p in second.values()}
