"""Meta Custom Audiences: the emulator's rules, one test each, and the connector against them,
all over real HTTP. Each test says what a user would see.

The contract suite (tests/contract/) and the sync property test run this connector too;
these are the Meta-specific cases: the 10,000-row limit, Meta's own errors inside HTTP 400,
invalid entries mapped back to their rows, sessions, removals that travel in the URL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from contract.meta import APP_SECRET, MetaHarness, MetaSandbox, email_hash
from sync_world import Person, World, definition

from destinations.base import Change, DestinationConfigError, DestinationUnavailable
from destinations.definitions import SyncDefinitionError
from destinations.http import Timeout
from destinations.identifiers import EMPTY_SHA256
from destinations.meta import MAX_ROWS, MetaCustomAudienceDestination
from destinations.sandbox import demo_environment
from destinations.sandbox.faults import Fault, RateWindow
from destinations.sandbox.meta import DEFAULT_AUDIENCE_ID, MetaEmulator
from destinations.sandbox.server import SandboxServer

AUDIENCE = DEFAULT_AUDIENCE_ID
TOKEN_ENV = "TEST_META_TOKEN"
SECRET_ENV = "TEST_META_APP_SECRET"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def meta() -> Iterator[MetaSandbox]:
    emulator = MetaEmulator(minute_seconds=0.2)
    with SandboxServer([emulator]) as server:
        yield MetaSandbox(server, emulator)


def call(
    sandbox: MetaSandbox,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    token: str | None = "default",
    version: str = "v27.0",
) -> requests.Response:
    """A raw Graph API call as the SDK makes it: JSON-text params, form-encoded for POST,
    in the query for GET and DELETE, the token always in the query."""
    query: dict[str, str] = {}
    if token is not None:
        query["access_token"] = sandbox.emulator.access_token if token == "default" else token
    encoded = {
        k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))
        for k, v in (params or {}).items()
    }
    url = f"{sandbox.base_url}/{version}/{path}"
    if method == "POST":
        return requests.post(url, params=query, data=encoded, timeout=5)
    return requests.request(method, url, params={**query, **encoded}, timeout=5)


def add(sandbox: MetaSandbox, schema, data, **kwargs: Any) -> requests.Response:
    return call(
        sandbox,
        "POST",
        f"{AUDIENCE}/users",
        params={"payload": {"schema": schema, "data": data, "is_raw": True}},
        **kwargs,
    )


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def connector(sandbox: MetaSandbox, **overrides: Any) -> MetaCustomAudienceDestination:
    settings: dict[str, Any] = {
        "audience_id": AUDIENCE,
        "access_token": sandbox.emulator.access_token,
        "base_url": sandbox.base_url,
        "timeout": Timeout(connect=1.0, read=2.0),
        "max_retries": 2,
        "backoff_factor": 0.0,
        "max_retry_after": 5.0,
        "minute_seconds": sandbox.emulator.minute_seconds,
        "access_token_env": TOKEN_ENV,
        **overrides,
    }
    return MetaCustomAudienceDestination("ads", **settings)


def person(i: int, **identifiers: Any) -> Change:
    values = {"email": f"person{i}@example.com", "phone": f"+1650555{i:04d}", "first_name": "Ada", **identifiers}
    return Change(f"chg-{i}", "upsert", values["email"] or f"k{i}", values)


def removal(i: int) -> Change:
    return Change(f"rm-{i}", "remove", f"person{i}@example.com", {"email": f"person{i}@example.com"})


def statuses(outcomes) -> dict[str, str]:
    return {outcome.change_id: outcome.status for outcome in outcomes}


# ===================================================================== the emulator's rules


def test_emulator_a_missing_or_wrong_token_is_meta_s_own_oauth_error(meta):
    missing = error_of(add(meta, ["EMAIL"], [[sha("a@b.co")]], token=None))
    assert missing["code"] == 104
    wrong = add(meta, ["EMAIL"], [[sha("a@b.co")]], token="EAAwrong")
    assert error_of(wrong)["code"] == 190 and error_of(wrong)["type"] == "OAuthException"
    assert "invalid_token" in wrong.headers["WWW-Authenticate"]
    assert meta.emulator.emails() == set()


def test_emulator_requires_the_appsecret_proof_when_the_app_has_a_secret():
    emulator = MetaEmulator(app_secret=APP_SECRET)
    with SandboxServer([emulator]) as server:
        sandbox = MetaSandbox(server, emulator)
        row = [[sha("a@b.co")]]
        assert "appsecret_proof argument" in error_of(add(sandbox, ["EMAIL"], row))["message"]
        url = f"{sandbox.base_url}/v27.0/{AUDIENCE}/users"
        payload = json.dumps({"schema": ["EMAIL"], "data": row})
        wrong = requests.post(
            url,
            params={"access_token": emulator.access_token, "appsecret_proof": "0" * 64},
            data={"payload": payload},
            timeout=5,
        )
        assert "Invalid appsecret_proof" in error_of(wrong)["message"]
        right = requests.post(
            url,
            params={"access_token": emulator.access_token, "appsecret_proof": emulator.appsecret_proof()},
            data={"payload": payload},
            timeout=5,
        )
        assert right.status_code == 200 and emulator.emails() == {sha("a@b.co")}


@pytest.mark.parametrize(
    ("version", "code"), [("v27.0", None), ("v26.0", None), ("v25.0", 2635), ("v28.0", 2500), ("latest", 2500)]
)
def test_emulator_serves_v27_and_v26_only(meta, version: str, code: int | None):
    response = add(meta, ["EMAIL"], [[sha("a@b.co")]], version=version)
    if code is None:
        assert response.status_code == 200
    else:
        assert error_of(response)["code"] == code


def test_emulator_takes_10000_rows_and_refuses_10001(meta):
    rows = [[sha(f"p{i}@example.com")] for i in range(MAX_ROWS + 1)]
    too_many = error_of(add(meta, ["EMAIL"], rows))
    assert too_many["code"] == 100 and "10000" in too_many["message"]
    assert meta.emulator.emails() == set()
    assert add(meta, ["EMAIL"], rows[:MAX_ROWS]).json()["num_received"] == MAX_ROWS
    assert len(meta.emulator.emails()) == MAX_ROWS


def test_emulator_refuses_a_row_whose_length_differs_from_the_schema(meta):
    error = error_of(add(meta, ["EMAIL", "FN"], [[sha("a@b.co"), sha("ann")], [sha("b@b.co")]]))
    assert error["code"] == 100 and "schema" in error["message"]
    assert meta.emulator.emails() == set()


def test_emulator_counts_raw_pii_and_non_hex_hashes_as_invalid_entries_and_stores_nothing_of_them(meta):
    rows = [
        ["ann@example.com", "", ""],  # raw email where a hash belongs
        [sha("bob@example.com").upper(), "", ""],  # upper-case hex
        [sha("carol@example.com"), EMPTY_SHA256, ""],  # the SDK's hash of "" is an empty value
        ["", "", ""],  # nothing to match on
        ["", "", "cust-7"],  # EXTERN_ID alone, in the clear
    ]
    answer = add(meta, ["EMAIL", "FN", "EXTERN_ID"], rows).json()
    assert answer["num_received"] == 5 and answer["num_invalid_entries"] == 3
    assert set(answer["invalid_entry_samples"]) == {"ann@example.com", sha("bob@example.com").upper(), '["","",""]'}
    held = meta.emulator.snapshot()["audiences"][AUDIENCE]
    assert held["EMAIL"] == [sha("carol@example.com")] and held["EXTERN_ID"] == ["cust-7"] and held["members"] == 2


def test_emulator_wants_post_params_form_encoded_and_delete_params_in_the_query(meta):
    url = f"{meta.base_url}/v27.0/{AUDIENCE}/users"
    as_json = requests.post(
        url,
        params={"access_token": meta.emulator.access_token},
        json={"payload": {"schema": ["EMAIL"], "data": [[sha("a@b.co")]]}},
        timeout=5,
    )
    assert error_of(as_json)["code"] == 100
    add(meta, ["EMAIL"], [[sha("a@b.co")]])
    removed = call(
        meta, "DELETE", f"{AUDIENCE}/users", params={"payload": {"schema": ["EMAIL"], "data": [[sha("a@b.co")]]}}
    )
    assert removed.json()["num_received"] == 1 and meta.emulator.emails() == set()


def test_emulator_sessions_never_go_back_and_end_with_the_last_batch(meta):
    def batch(seq: int, last: bool = False) -> requests.Response:
        session = {"session_id": 77, "batch_seq": seq, "last_batch_flag": last, "estimated_num_total": 3}
        return call(
            meta,
            "POST",
            f"{AUDIENCE}/users",
            params={"payload": {"schema": ["EMAIL"], "data": [[sha(f"s{seq}@b.co")]]}, "session": session},
        )

    assert batch(1).json()["session_id"] == "77"
    assert batch(2).status_code == 200
    assert batch(2).status_code == 200  # the same batch again (a retry) is accepted
    assert "batch_seq 1 comes after 2" in error_of(batch(1))["message"]
    assert batch(3, last=True).status_code == 200
    assert "already finished" in error_of(batch(4))["message"]


def test_emulator_an_unknown_audience_is_graph_error_100_subcode_33(meta):
    error = error_of(
        call(meta, "POST", "999/users", params={"payload": {"schema": ["EMAIL"], "data": [[sha("a@b.co")]]}})
    )
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")
    assert error["message"].startswith("Unsupported post request. Object with ID '999' does not exist")


def test_emulator_reads_the_audience_node_with_its_approximate_counts(meta):
    add(meta, ["EMAIL"], [[sha(f"p{i}@example.com")] for i in range(1234)])
    fields = "approximate_count_lower_bound,approximate_count_upper_bound,operation_status"
    node = call(meta, "GET", f"{AUDIENCE}/", params={"fields": fields}).json()
    assert node == {
        "id": AUDIENCE,
        "approximate_count_lower_bound": 1200,
        "approximate_count_upper_bound": 1300,
        "operation_status": {"code": 200, "description": "Normal"},
    }
    assert error_of(call(meta, "GET", f"{AUDIENCE}/", params={"fields": "members"}))["code"] == 100


def test_emulator_removal_removes_the_people_it_names_and_nobody_sharing_a_city(meta):
    schema = ["EMAIL", "PHONE", "CT", "COUNTRY"]
    london, gb = sha("london"), sha("gb")
    add(meta, schema, [[sha("ann@x.co"), sha("441"), london, gb], [sha("bob@x.co"), sha("442"), london, gb]])
    add(meta, schema, [[sha("ann@x.co"), sha("443"), "", gb]])  # Ann again, with another phone
    call(meta, "DELETE", f"{AUDIENCE}/users", params={"payload": {"schema": ["EMAIL"], "data": [[sha("ann@x.co")]]}})
    held = meta.emulator.snapshot()["audiences"][AUDIENCE]
    assert held["members"] == 1 and held["EMAIL"] == [sha("bob@x.co")] and held["PHONE"] == [sha("442")]


def test_emulator_a_flagged_audience_refuses_membership_edits(meta):
    meta.emulator.add_audience("555", operation_status=471)
    error = error_of(
        call(meta, "POST", "555/users", params={"payload": {"schema": ["EMAIL"], "data": [[sha("a@b.co")]]}})
    )
    assert (error["code"], error["error_subcode"]) == (100, 1713230)


def test_emulator_a_small_audience_refuses_removals(meta):
    meta.emulator.add_audience("556", refuse_removals_below=100)
    params = {"payload": {"schema": ["EMAIL"], "data": [[sha("a@b.co")]]}}
    assert call(meta, "POST", "556/users", params=params).status_code == 200
    error = error_of(call(meta, "DELETE", "556/users", params=params))
    assert error["code"] == 2650 and "size too low" in error["message"]


def test_emulator_throttles_with_code_80003_in_http_400_and_counts_rate_violations():
    emulator = MetaEmulator(minute_seconds=1.0, rate_limit=RateWindow(2, 60.0))
    with SandboxServer([emulator]) as server:
        sandbox = MetaSandbox(server, emulator)
        assert [add(sandbox, ["EMAIL"], [[sha(f"{i}@b.co")]]).status_code for i in range(2)] == [200, 200]
        throttled = add(sandbox, ["EMAIL"], [[sha("3@b.co")]])
        assert error_of(throttled)["code"] == 80003 and error_of(throttled)["is_transient"] is True
        usage = json.loads(throttled.headers["X-Business-Use-Case-Usage"])
        [entry] = next(iter(usage.values()))
        assert entry["type"] == "custom_audience" and entry["estimated_time_to_regain_access"] == 60
        assert emulator.rate_violations == 1 and len(emulator.emails()) == 2


def test_emulator_describes_itself_for_the_ready_file(meta):
    """What `cdp sandbox --ready-file` tells a client: where, which token, which audience."""
    document = meta.server.ready_document()["platforms"]["meta"]
    assert document == {
        "base_url": meta.base_url,
        "api_version": "v27.0",
        "api_versions": ["v27.0", "v26.0"],
        "access_token": meta.emulator.access_token,
        "audiences": [{"id": AUDIENCE, "name": "CDP sandbox audience"}],
    }
    add(meta, ["EMAIL"], [[sha("a@b.co")], [sha("b@b.co")]])
    assert meta.emulator.audience_sizes() == {f"{AUDIENCE} (CDP sandbox audience)": 2}
    # the demo connection (destinations.yml) reads its token from the same document
    assert demo_environment(meta.server.ready_document())["CDP_DEMO_META_TOKEN"] == meta.emulator.access_token


# ===================================================================== the connector


def test_a_send_hashes_every_identifier_and_sends_only_hashes_and_extern_ids(meta):
    """What reaches Meta: 64-character hashes (and EXTERN_ID in the clear), never an email."""
    destination = connector(meta)
    changes = [
        person(i, last_name="Lovelace", city="Menlo Park", zip="94025-1234", country="US", external_id=f"c{i}")
        for i in range(3)
    ]
    assert set(statuses(destination.send(changes)).values()) == {"confirmed"}
    held = meta.emulator.snapshot()["audiences"][AUDIENCE]
    assert held["EMAIL"] == sorted(sha(f"person{i}@example.com") for i in range(3))
    assert held["PHONE"] == sorted(sha(f"1650555{i:04d}") for i in range(3))
    assert held["ZIP"] == [sha("94025")] and held["CT"] == [sha("menlopark")] and held["COUNTRY"] == [sha("us")]
    assert held["EXTERN_ID"] == ["c0", "c1", "c2"]
    assert destination.report() == {"num_received": 3, "num_invalid_entries": 0, "sessions": 1, "requests": 1}


def test_the_connector_takes_at_most_10000_changes(meta):
    with pytest.raises(DestinationConfigError, match=r"option batch_size must be an integer from 1 to 10000"):
        connector(meta, batch_size=MAX_ROWS + 1)
    destination = connector(meta)
    assert destination.batch_size == MAX_ROWS
    with pytest.raises(ValueError, match="batch_size 10000"):
        destination.send([person(i) for i in range(MAX_ROWS + 1)])
    assert meta.emulator.requests == []


def test_an_upsert_whose_key_does_not_normalise_is_rejected_before_anything_is_sent(meta):
    """The key is how a mirror sync removes the person later: without it, nobody is added."""
    bad_key = Change("chg-bad", "upsert", "not-an-email", {"email": "not-an-email", "phone": "+16505550000"})
    nothing = Change("chg-none", "upsert", "k", {"first_name": "!!"})
    outcomes = connector(meta).send([bad_key, nothing])
    assert statuses(outcomes) == {"chg-bad": "rejected", "chg-none": "rejected"}
    assert "key identifier 'email'" in outcomes[0].error and "not-an-email" not in outcomes[0].error
    assert "no identifier" in outcomes[1].error
    assert meta.emulator.requests == []


def test_rows_meta_counts_invalid_are_mapped_to_exactly_their_changes(meta):
    bad = {3, 17, 41}
    meta.emulator.faults.inject(Fault.reject(keys={sha(f"person{i}@example.com") for i in bad}, error="Invalid EMAIL"))
    outcomes = connector(meta).send([person(i) for i in range(50)])
    assert {o.change_id for o in outcomes if o.status == "rejected"} == {f"chg-{i}" for i in bad}
    assert {o.status for o in outcomes if o.change_id not in {f"chg-{i}" for i in bad}} == {"confirmed"}
    assert all(o.error == "Invalid EMAIL" for o in outcomes if o.status == "rejected")
    assert meta.emulator.emails() == {sha(f"person{i}@example.com") for i in range(50) if i not in bad}


def test_invalid_rows_meta_does_not_sample_are_found_by_sending_halves_again(meta):
    """Meta shows only a few samples: the rows it counted but did not name are re-sent in halves
    (harmless: an audience is a set) until each one is found; no valid row is blamed."""
    meta.emulator.max_samples = 2
    bad = {2, 9, 23, 24, 38}
    hashes = frozenset(sha(f"person{i}@example.com") for i in bad)
    for digest in hashes:  # the same rows are invalid every time they are sent
        meta.emulator.faults.on_key(digest, Fault.reject(keys=hashes))
    destination = connector(meta)
    outcomes = destination.send([person(i) for i in range(40)])
    assert {o.change_id for o in outcomes if o.status != "confirmed"} == {f"chg-{i}" for i in bad}
    assert {o.status for o in outcomes if o.status != "confirmed"} == {"rejected"}
    assert meta.emulator.emails() == {sha(f"person{i}@example.com") for i in range(40) if i not in bad}
    report = destination.report()
    assert report["num_received"] == 40 and report["num_invalid_entries"] == 5  # Meta's own figures, once
    assert 1 < report["requests"] < 40


def test_wrong_credentials_name_the_connection_and_the_variables_never_the_secrets():
    emulator = MetaEmulator(app_secret=APP_SECRET)
    with SandboxServer([emulator]) as server:
        sandbox = MetaSandbox(server, emulator)
        wrong_secret = connector(sandbox, app_secret="not-the-secret-at-all", app_secret_env=SECRET_ENV)
        with pytest.raises(DestinationConfigError) as raised:
            wrong_secret.send([person(1)])
        message = str(raised.value)
        assert "'ads'" in message and "appsecret_proof" in message and f"${SECRET_ENV}" in message
        assert "not-the-secret" not in message and emulator.access_token not in message
        with pytest.raises(DestinationConfigError, match=rf"error 190.*\${TOKEN_ENV}"):
            connector(sandbox, access_token="EAAwrong", app_secret=APP_SECRET).send([person(1)])
        assert emulator.emails() == set()


def test_a_retried_request_is_logged_without_the_token_or_the_proof(caplog):
    """urllib3 logs the URL of a request it retries; Meta's token travels in that URL."""
    emulator = MetaEmulator(app_secret=APP_SECRET)
    with SandboxServer([emulator]) as server:
        sandbox = MetaSandbox(server, emulator)
        emulator.faults.inject(Fault.drop())
        with caplog.at_level(logging.WARNING, logger="urllib3"):
            assert statuses(connector(sandbox, app_secret=APP_SECRET).send([person(1)])) == {"chg-1": "confirmed"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Retrying" in logged and "access_token=[redacted]" in logged
    assert emulator.access_token not in logged and emulator.appsecret_proof() not in logged


def test_an_unknown_audience_is_a_configuration_error_naming_the_setting(meta):
    with pytest.raises(DestinationConfigError, match=r"audience 999 does not exist.*check option audience_id"):
        connector(meta, audience_id="999").send([person(1)])


def test_a_flagged_audience_is_a_configuration_error_saying_what_to_do(meta):
    meta.emulator.add_audience("555", operation_status=471)
    with pytest.raises(
        DestinationConfigError, match=r"audience 555 is flagged \(operation_status 471\).*Audience Manager"
    ):
        connector(meta, audience_id="555").send([person(1)])


def test_removals_from_a_too_small_audience_are_rejected_not_retried(meta):
    meta.emulator.add_audience("556", refuse_removals_below=100)
    destination = connector(meta, audience_id="556")
    outcomes = destination.send([person(1), person(2), removal(3)])
    assert statuses(outcomes) == {"chg-1": "confirmed", "chg-2": "confirmed", "rm-3": "rejected"}
    assert "audience size too low" in outcomes[2].error


def test_throttling_is_waited_out_for_the_minutes_meta_names(meta):
    """Meta throttles with HTTP 400 and code 80003; a minute lasts 0.2 s here."""
    meta.emulator.faults.inject(Fault.throttle(retry_after=1))  # 5 "minutes" of 0.2 s
    started = time.monotonic()
    outcomes = connector(meta).send([person(1)])
    assert time.monotonic() - started >= 1.0
    assert statuses(outcomes) == {"chg-1": "confirmed"}
    assert [r.status for r in meta.emulator.requests] == [400, 200]


def test_throttling_longer_than_the_budget_gives_up_until_the_next_run(meta):
    meta.emulator.faults.inject(Fault.throttle(retry_after=2.0))  # 10 "minutes" = 2 s
    with pytest.raises(DestinationUnavailable, match=r"error 80003.*wait 2s .*max_retry_after=1s"):
        connector(meta, max_retry_after=1.0).send([person(1)])
    assert len(meta.emulator.requests) == 1


def test_a_transient_error_inside_http_400_is_retried(meta):
    meta.emulator.faults.inject(Fault.status(400, title="An unexpected error has occurred. Please retry."))
    # an injected 400 is not transient: a configuration error, with Meta's words
    with pytest.raises(DestinationConfigError, match="unexpected error"):
        connector(meta).send([person(1)])

    class Transient(MetaEmulator):
        def fault_reply(self, fault, request):  # Meta's code 2 with is_transient, inside HTTP 400
            from destinations.sandbox.meta import graph_error
            from destinations.sandbox.server import Reply

            return Reply.json(400, graph_error("Service temporarily unavailable", 2, transient=True))

    emulator = Transient()
    with SandboxServer([emulator]) as server:
        emulator.faults.inject(Fault.status(400), Fault.status(400))
        sandbox = MetaSandbox(server, emulator)
        assert statuses(connector(sandbox).send([person(1)])) == {"chg-1": "confirmed"}
        assert [r.status for r in emulator.requests] == [400, 400, 200]


def test_a_rate_window_is_never_exceeded_twice_in_a_row():
    """Meta publishes no fixed window: the connector learns it from the throttle answer and
    waits as told, so every throttled request is followed by an accepted one."""
    emulator = MetaEmulator(minute_seconds=0.5, rate_limit=RateWindow(2, 0.5))
    with SandboxServer([emulator]) as server:
        sandbox = MetaSandbox(server, emulator)
        destination = connector(sandbox, max_url_chars=2_000, max_retries=4)
        destination.send([person(i) for i in range(30)])
        outcomes = destination.send([removal(i) for i in range(30)])  # several DELETEs: the URL is short
        assert {o.status for o in outcomes} == {"confirmed"} and emulator.emails() == set()
        codes = [r.status for r in emulator.requests]
        assert emulator.rate_violations == codes.count(400) >= 1
        assert all(not (a == b == 400) for a, b in zip(codes, codes[1:], strict=False))


def test_removals_travel_in_the_query_split_over_one_session(meta):
    destination = connector(meta, max_url_chars=1_500)
    destination.send([person(i) for i in range(60)])
    outcomes = destination.send([removal(i) for i in range(60)])
    assert {o.status for o in outcomes} == {"confirmed"} and meta.emulator.emails() == set()
    deletes = meta.emulator.requests_to("DELETE", "/users")
    assert len(deletes) > 2
    sessions = meta.emulator.audience().sessions
    assert len(sessions) == 2  # the adds' session and the removals' session
    assert sorted((s.last_seq, s.closed) for s in sessions.values()) == [(1, True), (len(deletes), True)]


def test_from_config_reads_the_options_and_refuses_an_unknown_version(meta):
    options = {
        "audience_id": AUDIENCE,
        "access_token_env": TOKEN_ENV,
        "base_url": meta.base_url,
        "api_version": "v26.0",
    }
    destination = MetaCustomAudienceDestination.from_config("ads", options, {TOKEN_ENV: meta.emulator.access_token})
    assert statuses(destination.send([person(1)])) == {"chg-1": "confirmed"}
    assert meta.emulator.requests[0].path == f"/v26.0/{AUDIENCE}/users"
    with pytest.raises(DestinationConfigError, match=r"option api_version must be one of 'v27.0', 'v26.0'"):
        MetaCustomAudienceDestination.from_config("ads", {**options, "api_version": "v24.0"}, {TOKEN_ENV: "x"})
    with pytest.raises(DestinationConfigError, match="option schema must list Meta schema keys"):
        MetaCustomAudienceDestination.from_config("ads", {**options, "schema": "EMAIL,SHOE_SIZE"}, {TOKEN_ENV: "x"})


def test_a_configured_schema_must_hold_every_mapped_identifier(meta):
    destination = connector(meta, schema=["EMAIL", "EXTERN_ID"])
    with pytest.raises(DestinationConfigError, match=r"option schema \(EMAIL,EXTERN_ID\) lacks PHONE, FN"):
        destination.send([person(1)])
    outcomes = destination.send([Change("c", "upsert", "a@b.co", {"email": "a@b.co"})])
    assert statuses(outcomes) == {"c": "confirmed"}
    assert meta.emulator.snapshot()["audiences"][AUDIENCE]["members"] == 1


# ===================================================================== through the sync engine


class SmallUrlHarness(MetaHarness):
    """Removals split over several DELETEs (short URLs), so a fault can hit each step."""

    def build(self, sandbox, **kwargs):
        destination = super().build(sandbox, **kwargs)
        destination.max_url_chars = 1_500
        return destination


def test_a_sync_mapping_fields_or_keying_on_a_name_is_a_definition_error():
    with pytest.raises(SyncDefinitionError, match="holds people, not fields"):
        definition(harness=MetaHarness(), fields={"ltv": "lifetime_value"})
    with pytest.raises(SyncDefinitionError, match="addresses records by email, external_id, phone"):
        definition(harness=MetaHarness(), key="first_name")


def test_a_mirror_sync_over_three_builds_leaves_the_audience_equal_to_the_segment(tmp_path: Path):
    harness = MetaHarness()
    with harness.sandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, harness)
        sync = definition(harness=harness, max_removal_share=1.0)
        builds = [
            {f"p{i}": Person(email=f"p{i}@example.com", phone=f"+4477009001{i:02d}") for i in range(12)},
            {f"p{i}": Person(email=f"p{i}@example.com", in_segment=i % 3 != 0) for i in range(6, 20)},
            {f"p{i}": Person(email=f"p{i}@example.com", consent=i != 15, first_name="Grace") for i in range(10, 25)},
        ]
        for people in builds:
            world.set_people(people)
            result = world.run(sync, batch_size=4)
            assert result.status == "succeeded", result.message
            expected = {email_hash(p.email) for p in people.values() if p.in_segment and p.consent}
            assert sandbox.emulator.emails() == expected
        report = json.loads(world.last_run()["destination_report"])
        assert report["num_invalid_entries"] == 0 and report["num_received"] >= 1


@pytest.mark.parametrize("step", [1, 2, 3], ids=["first-delete", "second-delete", "post"])
def test_a_fault_at_any_request_of_a_send_is_recovered_next_run_with_no_duplicate(tmp_path: Path, step: int):
    """One send = two DELETEs (the removals' URLs are kept short) then a POST; the connection
    drops after step ``step`` applied, on every retry too: the run stops, the next one
    converges, and nobody is in the audience twice."""
    harness = SmallUrlHarness()
    with harness.sandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox, harness)
        sync = definition(harness=harness, max_removal_share=1.0)
        world.set_people({f"p{i}": Person(email=f"p{i}@example.com") for i in range(40)})
        assert world.run(sync, batch_size=100).status == "succeeded"
        later = {f"p{i}": Person(email=f"p{i}@example.com", in_segment=i >= 20) for i in range(60)}
        world.set_people(later)
        before = len(sandbox.emulator.requests)
        for attempt in range(3):  # the request and both its retries: the send gives up
            sandbox.emulator.faults.inject_at(before + step + attempt, Fault.drop(apply_first=True))
        failed = world.run(sync, batch_size=100)
        assert failed.status == "failed" and "unavailable" in failed.message
        harness.wait_idle(sandbox)
        before = len(sandbox.emulator.requests)
        assert world.run(sync, batch_size=100).status == "succeeded"
        steps = [r.method for r in sandbox.emulator.requests[before:]]
        assert steps == ["DELETE", "DELETE", "POST"]
        wanted = {email_hash(f"p{i}@example.com") for i in range(20, 60)}
        assert sandbox.emulator.emails() == wanted
        assert sandbox.emulator.snapshot()["audiences"][AUDIENCE]["members"] == len(wanted)
