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
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

PATH = "/hooks"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 20 * 1024 * 1024

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

FaultKind = Literal["status", "timeout", "drop", "reject"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by one request. Build with the classmethods."""

    kind: FaultKind
    code: int = 0
    title: str = ""
    retry_after: str | None = None
    seconds: float = 0.0
    apply_first: bool = False
    keys: frozenset[str] = frozenset()
    fraction: float = 0.0
    retryable: bool = True
    error: str = ""

    @classmethod
    def status(cls, code: int, *, title: str | None = None, retry_after: float | str | None = None) -> Fault:
        """Answer ``code`` with ``{"title": ...}`` without looking at the request."""
        header = None if retry_after is None else _retry_after_header(retry_after)
        return cls("status", code=code, title=title or f"injected HTTP {code}", retry_after=header)

    @classmethod
    def throttle(cls, retry_after: float | str = 1) -> Fault:
        """429 with a Retry-After header (seconds, or an HTTP date string)."""
        return cls.status(429, title="too many requests", retry_after=retry_after)

    @classmethod
    def timeout(cls, seconds: float, *, apply_first: bool = False) -> Fault:
        """Sleep ``seconds`` before answering; with ``apply_first`` the batch lands first
        (the "did it land?" case), otherwise it is processed after the sleep."""
        return cls("timeout", seconds=seconds, apply_first=apply_first)

    @classmethod
    def drop(cls, *, apply_first: bool = False) -> Fault:
        """Close the connection without any response; with ``apply_first`` after applying."""
        return cls("drop", apply_first=apply_first)

    @classmethod
    def reject(
        cls,
        *,
        keys: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        fraction: float = 0.0,
        retryable: bool = False,
        error: str | None = None,
    ) -> Fault:
        """Answer 200 but refuse the records with these keys, plus a deterministic
        ``fraction`` of the others (chosen by a hash of the key), without applying them."""
        message = error or ("temporarily unable to store this record" if retryable else "record refused")
        return cls("reject", keys=frozenset(keys), fraction=fraction, retryable=retryable, error=message)

    def rejects(self, key: str) -> bool:
        """Whether this reject fault refuses the record with ``key`` (stable across runs)."""
        if key in self.keys:
            return True
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
        return bucket < self.fraction


def _retry_after_header(value: float | str) -> str:
    return value if isinstance(value, str) else str(int(value))


@dataclass(frozen=True)
class Delivery:
    """One request as the sandbox saw it. ``status`` is None when it answered nothing."""

    number: int
    webhook_id: str | None
    changes: int
    status: int | None


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(status: int, payload: Mapping[str, Any], headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return _Reply(status, body, headers or {})


def _problem(status: int, title: str, detail: str | None = None) -> _Reply:
    payload = {"title": title} if detail is None else {"title": title, "detail": detail}
    return _json_reply(status, payload)


class _Rejected(Exception):
    """The request as a whole is refused with this reply."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _secret_key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("sandbox secret must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except binascii.Error:
        raise ValueError("sandbox secret must look like whsec_<base64>") from None
    if not key:
        raise ValueError("sandbox secret must not be empty")
    return key


class WebhookSandbox:
    """A local Standard Webhooks consumer holding an in-memory audience.

    Use as a context manager (or ``start()``/``stop()``); ``url`` and ``secret`` are what
    a connector needs. All inspection and fault scheduling is thread-safe.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        max_batch: int = 500,
        host: str = "127.0.0.1",
        port: int = 0,
        tolerance_seconds: int = TOLERANCE_SECONDS,
        quiet: bool = True,
    ) -> None:
        self._secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        self._key = _secret_key(self._secret)
        self.max_batch = max_batch
        self.tolerance_seconds = tolerance_seconds
        self.quiet = quiet
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = {}
        self._answered: dict[str, bytes] = {}
        self._faults: deque[Fault] = deque()
        self._scheduled: dict[int, Fault] = {}
        self._received = 0
        self._deliveries: list[Delivery] = []
        self._applied = 0
        self._duplicates = 0
        self._stopping = threading.Event()
        self._active = 0
        self._idle = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> WebhookSandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer((self._host, self._port), _Handler)
        server.daemon_threads = True
        server.sandbox = self  # type: ignore[attr-defined]
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes requests sleeping in a timeout fault so they end at once."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> WebhookSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: use it as a context manager or call start()")
        return f"http://{self._host}:{self._port}{PATH}"

    @property
    def secret(self) -> str:
        return self._secret

    # -- inspection --------------------------------------------------------------

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the audience: key → {"identifiers": ..., "fields": ...}."""
        with self._lock:
            return copy.deepcopy(self._state)

    @property
    def requests(self) -> list[Delivery]:
        """Every request answered (or dropped) so far, in the order they finished."""
        with self._lock:
            return list(self._deliveries)

    @property
    def applied(self) -> int:
        """How many change applications happened (a duplicate delivery adds none)."""
        with self._lock:
            return self._applied

    @property
    def duplicate_deliveries(self) -> int:
        """Requests whose webhook-id was already processed, answered from memory."""
        with self._lock:
            return self._duplicates

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (a delivery the client gave up on may
        still be sleeping in a timeout fault and land late); True if idle in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _enter(self) -> None:
        with self._lock:
            self._active += 1

    def _leave(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    # -- fault scheduling ---------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next requests, one per request, in order."""
        with self._lock:
            self._faults.extend(faults)

    def inject_at(self, n: int, fault: Fault) -> None:
        """Apply ``fault`` to the n-th request received (1-based, counting every request).
        A request with a scheduled fault does not consume the queue."""
        with self._lock:
            self._scheduled[n] = fault

    def clear_faults(self) -> int:
        """Forget every queued and scheduled fault (so one test phase's leftovers do not
        leak into the next); returns how many were dropped."""
        with self._lock:
            dropped = len(self._faults) + len(self._scheduled)
            self._faults.clear()
            self._scheduled.clear()
            return dropped

    # -- request handling (called from handler threads) ---------------------------

    def _next_request(self) -> tuple[int, Fault | None]:
        """Count the request and pick its fault: scheduled for this number, else queued."""
        with self._lock:
            self._received += 1
            number = self._received
            fault = self._scheduled.pop(number, None)
            if fault is None and self._faults:
                fault = self._faults.popleft()
            return number, fault

    def _record(self, number: int, webhook_id: str | None, changes: int, status: int | None) -> None:
        with self._lock:
            self._deliveries.append(Delivery(number, webhook_id, changes, status))

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the sandbox stops meanwhile; True if still running."""
        return not self._stopping.wait(seconds)

    def _process(self, headers: Mapping[str, str], body: bytes, fault: Fault | None = None) -> _Reply:
        """Verify, validate and apply one delivery; the reply to send."""
        try:
            self._verify(headers, body)
            changes = self._parse(headers, body)
        except _Rejected as rejected:
            return rejected.reply
        return self._apply_delivery(headers["webhook-id"], changes, fault)

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Standard Webhooks checks: signature over id.timestamp.body, timestamp freshness."""
        webhook_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not webhook_id or not timestamp or not signatures:
            raise _Rejected(
                _problem(401, "invalid signature", "missing webhook-id, webhook-timestamp or webhook-signature")
            )
        expected = base64.b64encode(
            hmac.new(self._key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        )
        if not any(_matches(candidate, expected) for candidate in signatures.split()):
            raise _Rejected(_problem(401, "invalid signature"))
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance_seconds:
            raise _Rejected(
                _problem(401, "timestamp outside tolerance", "webhook-timestamp must be within 5 minutes of now")
            )

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

    def _apply_delivery(self, webhook_id: str, changes: list[dict[str, Any]], fault: Fault | None) -> _Reply:
        """Apply each change once per webhook-id; remember the answer for re-deliveries.

        A delivery that asked for some records to be retried is not remembered, so the
        retry is processed (records that landed are re-applied, harmlessly).
        """
        with self._lock:
            if webhook_id in self._answered:
                self._duplicates += 1
                return _Reply(200, self._answered[webhook_id])
            results = [self._apply_one(change, fault) for change in changes]
            reply = _json_reply(200, {"results": results})
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
        self._applied += 1
        return {"id": change["id"], "status": "ok"}


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
    if change.get("op") not in ("upsert", "remove"):
        return "op must be 'upsert' or 'remove'"
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


class _Handler(BaseHTTPRequestHandler):
    """HTTP mechanics only; what to answer is decided by the WebhookSandbox."""

    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without this, each answer waits ~40 ms
    # for the client's delayed ACK (Nagle), which would make the sandbox the bottleneck
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections are closed after this
    server_version = "webhook-sandbox/1"

    @property
    def sandbox(self) -> WebhookSandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.sandbox._enter()
        try:
            self._handle_post()
        finally:
            self.sandbox._leave()

    def _handle_post(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.path.split("?")[0] != PATH:
            self._send(_problem(404, "not found"))
            return
        number, fault = self.sandbox._next_request()
        reply = self._serve(body, fault)
        # Recorded before answering, so a client that has its answer sees it in .requests.
        self.sandbox._record(
            number, self.headers.get("webhook-id"), _count_changes(body), None if reply is None else reply.status
        )
        if reply is None:
            self.close_connection = True  # end the connection with no response at all
        else:
            self._send(reply)

    def do_GET(self) -> None:
        self._send(_problem(405, "method not allowed", "POST signed deliveries to /hooks"))

    def _serve(self, body: bytes, fault: Fault | None) -> _Reply | None:
        """Act out ``fault`` around processing the delivery; the reply, or None to drop."""
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return _json_reply(fault.code, {"title": fault.title}, headers)
        if fault is not None and fault.kind == "drop" and not fault.apply_first:
            return None
        if fault is not None and fault.kind == "timeout" and not fault.apply_first:
            if not self.sandbox._wait(fault.seconds):
                return None
        reply = self.sandbox._process(_lower_headers(self.headers), body, fault)
        if fault is not None and fault.kind == "drop":
            return None
        if fault is not None and fault.kind == "timeout" and fault.apply_first:
            if not self.sandbox._wait(fault.seconds):
                return None
        return reply

    def _read_body(self) -> bytes | None:
        """The request body, or None after refusing it (the unread rest ends the connection)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            too_big = length is not None and length.isdigit()
            self._send(_problem(413, "request body too large") if too_big else _problem(411, "length required"))
            return None
        return self.rfile.read(int(length))

    def _send(self, reply: _Reply) -> None:
        """Write the reply; the client may have given up already (timeout faults)."""
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.sandbox.quiet:
            super().log_message(format, *args)


def _lower_headers(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


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
