"""A strict Standard Webhooks receiver on a local socket, with faults on demand.

Tests and the demo point a :class:`~destinations.webhook.WebhookDestination` at it
unchanged (only the URL differs from production). It is deliberately strict, so a
connector bug shows up here rather than at a customer's receiver: it verifies the
signature and timestamp, enforces the batch limit exactly, rejects bad identifiers per
record, and drops re-delivered message ids the way a Standard Webhooks consumer does.

Signature checking is written here independently of the connector's signing code on
purpose: if both used one helper, a wrong scheme would pass every test.

Answers (all JSON):

- 200 ``{"results": [{"id": "<change id>", "status": "ok"}
  | {"id": ..., "status": "error", "error": "<message>", "retryable": true|false}]}``
- 4xx/5xx ``{"title": "<short message>"}`` (plus ``"detail"`` where useful); 429 also
  carries ``Retry-After``.

It is one :class:`~destinations.sandbox.server.Emulator` (:class:`WebhookEmulator`, prefix
``webhook``) that ``cdp sandbox`` serves beside the platform emulators;
:class:`WebhookSandbox` runs it alone on a port of its own, for tests.

Run ``python -m destinations.sandbox.webhook --port 8765`` for a manual demo.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from destinations.sandbox.faults import Fault
from destinations.sandbox.server import LOOPBACK, Emulator, Reply, Request, SandboxServer

__all__ = ["Delivery", "Fault", "WebhookEmulator", "WebhookSandbox", "new_secret", "secret_key", "signature_problem"]

PATH = "/hooks"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 20 * 1024 * 1024

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class Delivery:
    """One request as the sandbox saw it. ``status`` is None when it answered nothing."""

    number: int
    webhook_id: str | None
    changes: int
    status: int | None


class _Rejected(Exception):
    """The request as a whole is refused with this reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _problem(status: int, title: str, detail: str | None = None) -> Reply:
    payload = {"title": title} if detail is None else {"title": title, "detail": detail}
    return Reply.json(status, payload)


def secret_key(secret: str) -> bytes:
    """The HMAC key of a whsec_ secret (the sandbox's own reading, independent of the connector's)."""
    if not secret.startswith("whsec_"):
        raise ValueError("sandbox secret must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except binascii.Error:
        raise ValueError("sandbox secret must look like whsec_<base64>") from None
    if not key:
        raise ValueError("sandbox secret must not be empty")
    return key


class WebhookEmulator(Emulator):
    """A Standard Webhooks consumer holding an in-memory audience, under ``/webhook``.

    Deliveries go to ``<base>/hooks``. All inspection is thread-safe.
    """

    prefix = "webhook"

    def __init__(
        self, secret: str | None = None, *, max_batch: int = 500, tolerance_seconds: int = TOLERANCE_SECONDS
    ) -> None:
        super().__init__()
        self.secret = secret or new_secret()
        self._key = secret_key(self.secret)
        self.max_batch = max_batch
        self.tolerance_seconds = tolerance_seconds
        self._state: dict[str, dict[str, Any]] = {}
        self._answered: dict[str, bytes] = {}
        self._deliveries: list[Delivery] = []
        self._applied = 0
        self._duplicates = 0
        self._forgotten: set[str] = set()

    # -- inspection ----------------------------------------------------------------

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the audience: key → {"identifiers": ..., "fields": ...}."""
        with self.lock:
            return copy.deepcopy(self._state)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every request answered (or dropped) so far, in the order they finished."""
        with self.lock:
            return list(self._deliveries)

    @property
    def forgotten(self) -> set[str]:
        """Keys the receiver got a ``forget`` event for (a privacy request)."""
        with self.lock:
            return set(self._forgotten)

    @property
    def applied(self) -> int:
        """How many change applications happened (a duplicate delivery adds none)."""
        with self.lock:
            return self._applied

    @property
    def duplicate_deliveries(self) -> int:
        """Requests whose webhook-id was already processed, answered from memory."""
        with self.lock:
            return self._duplicates

    def describe(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "url": base_url + PATH, "secret": self.secret}

    def snapshot(self) -> dict[str, Any]:
        return {"records": self.state}

    def audience_sizes(self) -> dict[str, int]:
        with self.lock:
            return {"records": len(self._state)}

    def record(self, request: Request, status: int | None) -> None:
        super().record(request, status)
        with self.lock:
            self._deliveries.append(
                Delivery(request.number, request.headers.get("webhook-id"), _count_changes(request.body), status)
            )

    # -- requests --------------------------------------------------------------------

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        if request.path != PATH:
            return _problem(404, "not found")
        if request.method != "POST":
            return _problem(405, "method not allowed", "POST signed deliveries to /hooks")
        if "content-length" not in request.headers:
            return _problem(411, "length required")
        if len(request.body) > MAX_BODY_BYTES:
            return _problem(413, "request body too large")
        try:
            self._verify(request.headers, request.body)
            changes = self._parse(request.headers, request.body)
        except _Rejected as rejected:
            return rejected.reply
        return self._apply_delivery(request.headers["webhook-id"], changes, fault)

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        problem = signature_problem(self._key, headers, body, self.tolerance_seconds)
        if problem is not None:
            raise _Rejected(problem)

    def _parse(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        """The changes of a well-formed delivery, or a 4xx for the whole request."""
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise _Rejected(_problem(415, "unsupported media type", "send application/json"))
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            raise _Rejected(_problem(400, "malformed JSON")) from None
        changes = _envelope_changes(payload)
        if len(changes) > self.max_batch:
            raise _Rejected(_problem(413, "batch too large", f"at most {self.max_batch} changes per request"))
        for index, change in enumerate(changes):
            if problem := _change_problem(change):
                raise _Rejected(_problem(400, "malformed payload", f"changes[{index}]: {problem}"))
        return changes

    def _apply_delivery(self, webhook_id: str, changes: list[dict[str, Any]], fault: Fault | None) -> Reply:
        """Apply each change once per webhook-id; remember the answer for re-deliveries.

        A delivery that asked for some records to be retried is not remembered, so the
        retry is processed (records that landed are re-applied, harmlessly).
        """
        with self.lock:
            if webhook_id in self._answered:
                self._duplicates += 1
                return Reply(200, self._answered[webhook_id])
            results = [self._apply_one(change, fault) for change in changes]
            reply = Reply.json(200, {"results": results})
            if not any(r.get("retryable") for r in results):
                self._answered[webhook_id] = reply.body
            return reply

    def _apply_one(self, change: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        """Apply one change (lock held); its result entry."""
        problem = _identifier_problem(change["identifiers"])
        if problem:
            return {"id": change["id"], "status": "error", "error": problem, "retryable": False}
        if fault is not None and fault.kind == "reject" and fault.rejects(change["key"]):
            return {"id": change["id"], "status": "error", "error": fault.error, "retryable": fault.retryable}
        if change["op"] == "upsert":
            self._state[change["key"]] = {
                "identifiers": copy.deepcopy(change["identifiers"]),
                "fields": copy.deepcopy(change["fields"]),
            }
        else:
            self._state.pop(change["key"], None)
            if change["op"] == "forget":  # a privacy request: the receiver erases the person
                self._forgotten.add(change["key"])
        self._applied += 1
        return {"id": change["id"], "status": "ok"}


class WebhookSandbox:
    """The webhook emulator alone on a loopback port of its own (tests, the benchmarks).

    Use as a context manager (or ``start()``/``stop()``); ``url`` and ``secret`` are what
    a connector needs. Faults: ``inject`` (the next requests, one each), ``inject_at``
    (the n-th request), ``clear_faults``.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        max_batch: int = 500,
        host: str = LOOPBACK,
        port: int = 0,
        tolerance_seconds: int = TOLERANCE_SECONDS,
        quiet: bool = True,
    ) -> None:
        self.emulator = WebhookEmulator(secret, max_batch=max_batch, tolerance_seconds=tolerance_seconds)
        self._server = SandboxServer([self.emulator], host=host, port=port, quiet=quiet)

    def start(self) -> WebhookSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> WebhookSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.base_url(self.emulator) + PATH

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: what ``CDP_SANDBOX_URL`` holds for the demo connections."""
        return self._server.origin

    @property
    def secret(self) -> str:
        return self.emulator.secret

    @property
    def max_batch(self) -> int:
        return self.emulator.max_batch

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        return self.emulator.state

    @property
    def requests(self) -> list[Delivery]:
        return self.emulator.deliveries

    @property
    def forgotten(self) -> set[str]:
        return self.emulator.forgotten

    @property
    def applied(self) -> int:
        return self.emulator.applied

    @property
    def duplicate_deliveries(self) -> int:
        return self.emulator.duplicate_deliveries

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self._server.wait_idle(timeout)

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next requests, one per request, in order."""
        self.emulator.faults.inject(*faults)

    def inject_at(self, n: int, fault: Fault) -> None:
        """Apply ``fault`` to the n-th request received (1-based, counting every request)."""
        self.emulator.faults.inject_at(n, fault)

    def clear_faults(self) -> int:
        """Forget every queued and scheduled fault; returns how many were dropped."""
        return self.emulator.faults.clear()


def signature_problem(key: bytes, headers: Mapping[str, str], body: bytes, tolerance_seconds: int) -> Reply | None:
    """Standard Webhooks checks — signature over id.timestamp.body, timestamp freshness — as
    any receiver in the sandbox makes them (the alert receiver too); the 401 to answer, or None."""
    webhook_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not webhook_id or not timestamp or not signatures:
        return _problem(401, "invalid signature", "missing webhook-id, webhook-timestamp or webhook-signature")
    expected = base64.b64encode(hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    if not any(_matches(candidate, expected) for candidate in signatures.split()):
        return _problem(401, "invalid signature")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_seconds:
        return _problem(401, "timestamp outside tolerance", "webhook-timestamp must be within 5 minutes of now")
    return None


def new_secret() -> str:
    """A fresh whsec_<base64> signing secret, as a receiver hands one out."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _matches(candidate: str, expected: bytes) -> bool:
    """Constant-time compare of one ``v1,<sig>`` entry against the expected signature."""
    version, _, signature = candidate.partition(",")
    return version == "v1" and hmac.compare_digest(signature.encode("ascii", "replace"), expected)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _envelope_changes(payload: Any) -> list[dict[str, Any]]:
    """The ``changes`` list of an ``audience.changes`` envelope, or a 400."""
    if not isinstance(payload, dict) or payload.get("type") != "audience.changes":
        raise _Rejected(_problem(400, "malformed payload", 'expected {"type": "audience.changes", ...}'))
    if not isinstance(payload.get("sync"), str):
        raise _Rejected(_problem(400, "malformed payload", "sync must be a string"))
    changes = payload.get("changes")
    if not isinstance(changes, list):
        raise _Rejected(_problem(400, "malformed payload", "changes must be a list"))
    return changes


def _change_problem(change: Any) -> str | None:
    """What is structurally wrong with one change (never quoting its values)."""
    if not isinstance(change, dict):
        return "must be an object"
    for name in ("id", "key"):
        if not isinstance(change.get(name), str) or not change[name]:
            return f"{name} must be a non-empty string"
    if change.get("op") not in ("upsert", "remove", "forget"):
        return "op must be 'upsert', 'remove' or 'forget'"
    for name in ("identifiers", "fields"):
        if not isinstance(change.get(name), dict):
            return f"{name} must be an object"
    return None


def _identifier_problem(identifiers: Mapping[str, Any]) -> str | None:
    """Per-record identifier check; the message never echoes the value."""
    email = identifiers.get("email")
    if email is not None and not (isinstance(email, str) and _EMAIL.fullmatch(email)):
        return "invalid email identifier"
    phone = identifiers.get("phone")
    if phone is not None and not (isinstance(phone, str) and _E164.fullmatch(phone)):
        return "invalid phone identifier"
    return None


def _count_changes(body: bytes) -> int:
    """Changes in a body for the request log (0 when it is not a readable envelope)."""
    try:
        changes = json.loads(body).get("changes")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return 0
    return len(changes) if isinstance(changes, list) else 0


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground until Ctrl-C, printing the URL (and secret) to configure."""
    parser = argparse.ArgumentParser(description="Local Standard Webhooks receiver for the demo.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--secret", help="whsec_<base64> signing secret (random if omitted)")
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    sandbox = WebhookSandbox(args.secret, max_batch=args.max_batch, host=args.host, port=args.port, quiet=args.quiet)
    with sandbox:
        print(f"webhook sandbox listening on {sandbox.url}", flush=True)
        if args.secret is None:
            print(f"signing secret: {sandbox.secret}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"stopping; {len(sandbox.state)} records held, {sandbox.applied} changes applied", flush=True)


if __name__ == "__main__":
    main()
