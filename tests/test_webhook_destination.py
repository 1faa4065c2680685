"""The webhook connector against the webhook sandbox over a real local socket: what is
particular to Standard Webhooks (signatures, webhook-id de-duplication, the results body,
the receiver's batch limit) and to this connector's options. What every connector must do
is the contract suite in tests/contract/, which runs this connector too.

Each test asserts what a user would notice: what the receiver ends up holding, the
outcome of each record, the error message on misconfiguration. Retry timings are kept
small (no back-off, short timeouts) so the module runs in a few seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
import requests

from destinations.base import Change, DestinationConfigError, DestinationUnavailable
from destinations.config import DestinationConfig, connect
from destinations.http import Timeout, redact
from destinations.sandbox.webhook import Fault, WebhookSandbox
from destinations.webhook import WebhookDestination, encode_body

DEST = "crm-hook"
FAST = Timeout(connect=1.0, read=2.0)


@pytest.fixture
def sandbox() -> Iterator[WebhookSandbox]:
    with WebhookSandbox(max_batch=50) as sb:
        yield sb


def connector(sb: WebhookSandbox, **kwargs) -> WebhookDestination:
    """A connector tuned for tests: two retries, no back-off, short waits."""
    options = {
        "sync_name": "vip_to_crm",
        "timeout": FAST,
        "max_retries": 2,
        "backoff_factor": 0.0,
        "max_retry_after": 2.0,
    }
    options.update(kwargs)
    secret = options.pop("secret", sb.secret)
    return WebhookDestination(DEST, sb.url, secret, **options)


def upsert(key: str, email: str | None = None, **fields) -> Change:
    identifiers = {"email": email or f"{key}@example.com", "profile_id": key}
    return Change(change_id=f"chg-{key}-up", op="upsert", key=key, identifiers=identifiers, fields=fields)


def remove(key: str) -> Change:
    return Change(change_id=f"chg-{key}-rm", op="remove", key=key, identifiers={"profile_id": key})


def statuses(outcomes) -> dict[str, str]:
    return {o.change_id: o.status for o in outcomes}


def signed_post(
    sb: WebhookSandbox,
    body: bytes,
    *,
    webhook_id: str = "msg_raw",
    secret: str | None = None,
    timestamp: int | None = None,
    sign_body: bytes | None = None,
) -> requests.Response:
    """A Standard Webhooks delivery written from the spec, independent of the connector."""
    ts = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode((secret or sb.secret).removeprefix("whsec_"))
    signed = f"{webhook_id}.{ts}.".encode() + (body if sign_body is None else sign_body)
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,{signature}",
        "Content-Type": "application/json",
    }
    return requests.post(sb.url, data=body, headers=headers, timeout=5)


def envelope(n: int) -> bytes:
    changes = [
        {"id": f"c{i}", "op": "upsert", "key": f"k{i}", "identifiers": {"profile_id": f"k{i}"}, "fields": {}}
        for i in range(n)
    ]
    return json.dumps({"type": "audience.changes", "sync": "raw", "changes": changes}).encode()


# -- happy path -----------------------------------------------------------------------


def test_the_receiver_holds_identifiers_and_fields_as_sent(sandbox: WebhookSandbox) -> None:
    """The envelope carries each change's identifiers and fields unchanged (the contract
    suite, tests/contract/, covers what every connector must do)."""
    batch = [upsert("p1", plan="gold"), upsert("p2", plan="silver"), upsert("p3", ltv=12.5)]

    outcomes = connector(sandbox).send(batch)

    assert [o.status for o in outcomes] == ["confirmed"] * 3
    assert sandbox.state == {
        "p1": {"identifiers": {"email": "p1@example.com", "profile_id": "p1"}, "fields": {"plan": "gold"}},
        "p2": {"identifiers": {"email": "p2@example.com", "profile_id": "p2"}, "fields": {"plan": "silver"}},
        "p3": {"identifiers": {"email": "p3@example.com", "profile_id": "p3"}, "fields": {"ltv": 12.5}},
    }


def test_same_batch_keeps_its_webhook_id(sandbox: WebhookSandbox) -> None:
    dest = connector(sandbox)
    dest.send([upsert("a"), upsert("b")])
    dest.send([upsert("a"), upsert("b")])
    dest.send([upsert("a")])
    ids = [r.webhook_id for r in sandbox.requests]
    assert ids[0] == ids[1] != ids[2]
    assert sandbox.duplicate_deliveries == 1
    assert sandbox.applied == 3


# -- signature -------------------------------------------------------------------------


def test_sandbox_verifies_signature_and_timestamp(sandbox: WebhookSandbox) -> None:
    body = envelope(1)
    assert signed_post(sandbox, body, webhook_id="msg_ok").status_code == 200

    tampered = body.replace(b'"k0"', b'"k9"')
    answer = signed_post(sandbox, tampered, webhook_id="msg_tampered", sign_body=body)
    assert answer.status_code == 401 and answer.json() == {"title": "invalid signature"}

    stale = signed_post(sandbox, envelope(1), webhook_id="msg_stale", timestamp=int(time.time()) - 301)
    assert stale.status_code == 401

    unsigned = requests.post(sandbox.url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert unsigned.status_code == 401
    assert set(sandbox.state) == {"k0"}


# -- batch limit -------------------------------------------------------------------------


def test_batch_limit_is_exact(sandbox: WebhookSandbox) -> None:
    at_limit = signed_post(sandbox, envelope(50), webhook_id="msg_50")
    assert at_limit.status_code == 200 and len(at_limit.json()["results"]) == 50

    over = signed_post(sandbox, envelope(51), webhook_id="msg_51")
    assert over.status_code == 413


def test_batch_larger_than_receiver_limit_is_a_config_error(sandbox: WebhookSandbox) -> None:
    dest = connector(sandbox, batch_size=100)
    with pytest.raises(DestinationConfigError, match=r"HTTP 413.*batch_size \(now 100\)"):
        dest.send([upsert(f"p{i}") for i in range(51)])
    assert sandbox.state == {}


# -- throttling, server errors, timeouts, drops -----------------------------------------


def test_a_timed_out_batch_that_landed_is_answered_not_reapplied(sandbox: WebhookSandbox) -> None:
    """The retry after a timeout carries the same webhook-id: the receiver answers it from
    memory instead of applying it twice."""
    sandbox.inject(Fault.timeout(1.0, apply_first=True))
    dest = connector(sandbox, timeout=Timeout(connect=1.0, read=0.3))

    outcomes = dest.send([upsert("p1"), upsert("p2")])

    assert {o.status for o in outcomes} == {"confirmed"}
    assert set(sandbox.state) == {"p1", "p2"}
    assert sandbox.duplicate_deliveries == 1
    assert sandbox.applied == 2


def test_dropped_after_applying_then_resend_is_deduplicated(sandbox: WebhookSandbox) -> None:
    batch = [upsert("p1"), upsert("p2"), remove("p0")]
    sandbox.inject(Fault.drop(apply_first=True))
    no_retries = connector(sandbox, max_retries=0)

    with pytest.raises(DestinationUnavailable, match="dropped"):
        no_retries.send(batch)
    assert set(sandbox.state) == {"p1", "p2"}  # it landed, though we could not know

    outcomes = connector(sandbox).send(batch)  # the engine plans the batch again next run

    assert {o.status for o in outcomes} == {"confirmed"}
    assert set(sandbox.state) == {"p1", "p2"}
    assert sandbox.duplicate_deliveries == 1
    assert sandbox.applied == 3
    first, second = sandbox.requests
    assert first.webhook_id == second.webhook_id and first.status is None and second.status == 200


def test_fault_at_chosen_request(sandbox: WebhookSandbox) -> None:
    sandbox.inject_at(2, Fault.status(500))
    dest = connector(sandbox)
    dest.send([upsert("p1")])
    dest.send([upsert("p2")])
    assert [r.status for r in sandbox.requests] == [200, 500, 200]
    assert set(sandbox.state) == {"p1", "p2"}


def test_cleared_faults_do_not_fire(sandbox: WebhookSandbox) -> None:
    sandbox.inject(Fault.status(503), Fault.drop())
    sandbox.inject_at(1, Fault.status(500))
    assert sandbox.clear_faults() == 3
    connector(sandbox, max_retries=0).send([upsert("p1")])
    assert [r.status for r in sandbox.requests] == [200]


# -- per-record results --------------------------------------------------------------------


def test_fractional_rejection_is_deterministic_and_state_matches(sandbox: WebhookSandbox) -> None:
    batch = [upsert(f"p{i}") for i in range(40)]
    sandbox.inject(Fault.reject(fraction=0.25))
    outcomes = connector(sandbox).send(batch)

    refused = {o.change_id for o in outcomes if o.status == "rejected"}
    assert 0 < len(refused) < 40
    assert {c.key for c in batch if c.change_id not in refused} == set(sandbox.state)
    assert refused == {c.change_id for c in batch if Fault.reject(fraction=0.25).rejects(c.key)}


def test_invalid_identifiers_rejected_without_echoing_the_value(sandbox: WebhookSandbox) -> None:
    bad_email = "jane.doe(at)example"
    bad_phone = "0151 2345 6789"
    batch = [
        upsert("p1", email=bad_email),
        Change("chg-p2", "upsert", "p2", identifiers={"phone": bad_phone}),
        upsert("p3"),
    ]
    outcomes = connector(sandbox).send(batch)

    assert [o.status for o in outcomes] == ["rejected", "rejected", "confirmed"]
    assert outcomes[0].error == "invalid email identifier"
    assert outcomes[1].error == "invalid phone identifier"
    assert bad_email not in repr(outcomes) and bad_phone not in repr(outcomes)
    assert set(sandbox.state) == {"p3"}


def test_other_4xx_rejects_every_change_with_status_and_title(sandbox: WebhookSandbox) -> None:
    sandbox.inject(Fault.status(422, title="unknown audience"))
    outcomes = connector(sandbox).send([upsert("p1"), upsert("p2")])
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    assert all("HTTP 422" in o.error and "unknown audience" in o.error for o in outcomes)


def test_missing_results_are_failed(sandbox: WebhookSandbox) -> None:
    dest = connector(sandbox)
    # The receiver answers for the changes it saw; a change it never mentions must not count as delivered.
    sandbox.inject(Fault.status(200, title="accepted"))
    outcomes = dest.send([upsert("p1")])
    assert [(o.status, o.error) for o in outcomes] == [("failed", "destination returned no result for this record")]


# -- configuration ---------------------------------------------------------------------------

GOOD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.mark.parametrize(
    ("options", "env", "named"),
    [
        ({"secret_env": "HOOK_SECRET"}, {"HOOK_SECRET": GOOD_SECRET}, "url"),
        ({"url": "http://127.0.0.1:9/hooks"}, {}, "secret_env"),
        ({"url": "http://127.0.0.1:9/hooks", "secret_env": "HOOK_SECRET"}, {}, "$HOOK_SECRET"),
        (
            {"url": "http://127.0.0.1:9/hooks", "secret_env": "HOOK_SECRET"},
            {"HOOK_SECRET": "hunter2-plain"},
            "$HOOK_SECRET",
        ),
        (
            {"url": "http://127.0.0.1:9/hooks", "secret_env": "HOOK_SECRET"},
            {"HOOK_SECRET": "whsec_***"},
            "$HOOK_SECRET",
        ),
        ({"url": "ftp://host/x", "secret_env": "HOOK_SECRET"}, {"HOOK_SECRET": GOOD_SECRET}, "url"),
        (
            {"url": "http://h/x", "secret_env": "HOOK_SECRET", "batch_size": 0},
            {"HOOK_SECRET": GOOD_SECRET},
            "batch_size",
        ),
        (
            {"url": "http://h/x", "secret_env": "HOOK_SECRET", "batch_size": "many"},
            {"HOOK_SECRET": GOOD_SECRET},
            "batch_size",
        ),
        (
            {"url": "http://h/x", "secret_env": "HOOK_SECRET", "timeout_seconds": -1},
            {"HOOK_SECRET": GOOD_SECRET},
            "timeout_seconds",
        ),
        (
            {"url": "http://h/x", "secret_env": "HOOK_SECRET", "batchsize": 10},
            {"HOOK_SECRET": GOOD_SECRET},
            "batchsize",
        ),
    ],
    ids=[
        "no-url",
        "no-secret_env",
        "env-unset",
        "not-whsec",
        "bad-base64",
        "bad-url-scheme",
        "batch_size-zero",
        "batch_size-text",
        "negative-timeout",
        "unknown-option",
    ],
)
def test_from_config_errors_name_destination_and_field(options: dict, env: dict, named: str) -> None:
    with pytest.raises(DestinationConfigError) as raised:
        WebhookDestination.from_config(DEST, options, env)
    message = str(raised.value)
    assert DEST in message and named in message
    for secret in env.values():
        assert secret not in message


def test_from_config_builds_a_working_connector(sandbox: WebhookSandbox) -> None:
    dest = WebhookDestination.from_config(
        DEST,
        # numbers may arrive as strings after ${VAR} substitution in destinations.yml
        {"type": "webhook", "url": sandbox.url, "secret_env": "HOOK_SECRET", "batch_size": "50", "timeout_seconds": 5},
        {"HOOK_SECRET": sandbox.secret},
        sync_name="vip",
    )
    assert dest.batch_size == 50 and dest.timeout == Timeout(connect=5.0, read=5.0)
    assert statuses(dest.send([upsert("p1")])) == {"chg-p1-up": "confirmed"}
    assert set(sandbox.state) == {"p1"}


def test_connect_hands_the_sync_name_to_from_config(sandbox: WebhookSandbox) -> None:
    config = DestinationConfig("hook", "webhook", {"url": sandbox.url, "secret_env": "HOOK_SECRET"})
    dest = connect(config, sync_name="vip_to_crm", env={"HOOK_SECRET": sandbox.secret})
    assert dest.sync_name == "vip_to_crm"
    assert json.loads(encode_body(dest.sync_name, [upsert("p1")]))["sync"] == "vip_to_crm"


# -- redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "extra", "expected"),
    [
        ("bad address Jane.Doe+x@Example.co.uk here", (), "bad address [redacted] here"),
        ("call +49 151-2345 678 now", (), "call [redacted] now"),
        ("(555) 123-4567", (), "[redacted]"),
        ("code 123456 and id ab12345678", (), "code 123456 and id ab12345678"),
        ("name Jane Doe is taken", ("Jane Doe",), "name [redacted] is taken"),
        ("HTTP 503 after 3 attempts", (), "HTTP 503 after 3 attempts"),
        # a Dagster run id is not a phone number (it was redacted as one: d1a6f472-bae7-[redacted]-…)
        ("run d1a6f472-bae7-4817-8288-7406bc7e8a83 failed", (), "run d1a6f472-bae7-4817-8288-7406bc7e8a83 failed"),
    ],
)
def test_redact(text: str, extra: tuple[str, ...], expected: str) -> None:
    assert redact(text, *extra) == expected
