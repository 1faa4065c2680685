"""The official facebook-business SDK (26.0.3) against the Meta emulator, pointed at it by
base URL only (``api._session.GRAPH``): its core Custom Audiences flow works, its parsing
takes our answers, and what the audience ends up holding is what the SDK sent.

The SDK departs from Meta's published rules (it hashes "" for an unknown value, keeps
leading zeros, drops non-ASCII letters, lower-cases EXTERN_ID); the emulator must take what
it sends all the same — the SHA-256 of "" counts as empty, not as an invalid value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from destinations.sandbox.meta import DEFAULT_AUDIENCE_ID, MetaEmulator
from destinations.sandbox.server import SandboxServer

APP_SECRET = "sdk-app-secret-0123456789"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def graph() -> Iterator[tuple[SandboxServer, MetaEmulator]]:
    emulator = MetaEmulator(app_secret=APP_SECRET)
    with SandboxServer([emulator]) as server:
        yield server, emulator


def sdk(server: SandboxServer, emulator: MetaEmulator, *, token: str | None = None) -> FacebookAdsApi:
    """The SDK as its docs set it up, with the base URL (and crash reports off) changed."""
    api = FacebookAdsApi.init(
        access_token=token or emulator.access_token, app_secret=APP_SECRET, api_version="v26.0", crash_log=False
    )
    api._session.GRAPH = server.base_url(emulator)
    return api


def test_the_sdk_adds_reads_and_removes_and_the_audience_holds_what_it_sent(graph):
    server, emulator = graph
    audience = CustomAudience(DEFAULT_AUDIENCE_ID, api=sdk(server, emulator))

    # single-key schema: the SDK trims, lower-cases and hashes each email itself
    added = audience.add_users(CustomAudience.Schema.email_hash, [" Ann@Example.com", "bob@example.com"]).json()
    assert added["num_received"] == 2 and added["num_invalid_entries"] == 0
    assert added["audience_id"] == DEFAULT_AUDIENCE_ID and added["session_id"].isdigit()

    # multi-key schema with raw values the SDK normalises and hashes, a session, unknown values
    schema = ["EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY", "EXTERN_ID"]
    users = [["carol@example.com", "+44 7700 900123", "Carol", "", "SW1A 1AA", "GB", "CUST-3"]]
    session = {"session_id": 42, "batch_seq": 1, "last_batch_flag": True, "estimated_num_total": 1}
    multi = audience.add_users(schema, users, is_raw=True, session=session).json()
    assert multi == {
        "audience_id": DEFAULT_AUDIENCE_ID,
        "session_id": "42",
        "num_received": 1,
        "num_invalid_entries": 0,  # the hash of "" for LN is "empty", not invalid
        "invalid_entry_samples": {},
    }

    read = audience.api_get(
        fields=[
            CustomAudience.Field.approximate_count_lower_bound,
            CustomAudience.Field.approximate_count_upper_bound,
            CustomAudience.Field.operation_status,
        ]
    )
    assert read[CustomAudience.Field.approximate_count_lower_bound] == 3
    assert read[CustomAudience.Field.approximate_count_upper_bound] == 3
    assert read[CustomAudience.Field.operation_status]["code"] == 200

    # removal: every param in the query string of a DELETE
    removed = audience.remove_users(CustomAudience.Schema.email_hash, ["bob@example.com"]).json()
    assert removed["num_received"] == 1

    held = emulator.snapshot()["audiences"][DEFAULT_AUDIENCE_ID]
    assert held["members"] == 2
    assert held["EMAIL"] == sorted([sha("ann@example.com"), sha("carol@example.com")])
    assert held["PHONE"] == [sha("447700900123")]
    assert held["EXTERN_ID"] == ["cust-3"]  # in the clear, lower-cased by the SDK
    assert "LN" not in held  # sent as the hash of "": nothing stored
    assert [(r.method, r.path) for r in emulator.requests] == [
        ("POST", "/v26.0/23850000000000001/users"),
        ("POST", "/v26.0/23850000000000001/users"),
        ("GET", "/v26.0/23850000000000001/"),
        ("DELETE", "/v26.0/23850000000000001/users"),
    ]


def test_raw_pii_sent_as_hashed_is_counted_invalid_and_not_stored(graph):
    """``pre_hashed=True`` with raw emails: Meta counts them invalid and shows samples."""
    server, emulator = graph
    audience = CustomAudience(DEFAULT_AUDIENCE_ID, api=sdk(server, emulator))
    answer = audience.add_users(
        CustomAudience.Schema.email_hash, ["dave@example.com", sha("erin@example.com")], pre_hashed=True
    ).json()
    assert answer["num_received"] == 2 and answer["num_invalid_entries"] == 1
    assert list(answer["invalid_entry_samples"]) == ["dave@example.com"]
    assert emulator.emails() == {sha("erin@example.com")}


def test_a_wrong_token_is_a_facebook_request_error_with_code_190(graph):
    server, emulator = graph
    audience = CustomAudience(DEFAULT_AUDIENCE_ID, api=sdk(server, emulator, token="EAAnotTheToken"))
    with pytest.raises(FacebookRequestError) as raised:
        audience.add_users(CustomAudience.Schema.email_hash, ["ann@example.com"])
    error = raised.value
    assert error.api_error_code() == 190 and error.api_error_type() == "OAuthException"
    assert error.http_status() == 400
    assert emulator.emails() == set()


def test_an_unknown_audience_is_graph_error_100_subcode_33(graph):
    server, emulator = graph
    with pytest.raises(FacebookRequestError) as raised:
        CustomAudience("999", api=sdk(server, emulator)).add_users(CustomAudience.Schema.email_hash, ["a@b.co"])
    assert raised.value.api_error_code() == 100 and raised.value.api_error_subcode() == 33
    assert "Object with ID '999' does not exist" in raised.value.api_error_message()
