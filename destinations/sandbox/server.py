"""One local process serving an emulator of each platform, each under its own path prefix.

``SandboxServer([MailchimpEmulator(), KlaviyoEmulator(), …])`` listens on loopback and
routes ``/<prefix>/…`` to the emulator with that prefix; a connector (or an official SDK)
is pointed at ``base_url(emulator)`` and nothing else changes. No prefix contains the word
"server": the official Mailchimp SDK rewrites that word anywhere in its URL.

The server does the HTTP mechanics and the faults every platform shares (a status
answered without looking at the request, a slow answer, a dropped connection); an
:class:`Emulator` decides what each request means, in its platform's own shapes, and acts
out the faults that need that knowledge (its throttle signal, per-record rejections).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from destinations.sandbox.faults import Fault, FaultPlan

MAX_BODY_BYTES = 64 * 1024 * 1024
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    """One request as an emulator sees it: the path after the emulator's prefix."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    number: int

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body as a flat mapping (last value wins)."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {name: values[-1] for name, values in parsed.items()}

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, content_type, dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, b"", "", dict(headers or {}))


@dataclass(frozen=True)
class Logged:
    """One request as the emulator answered it (``status`` None: dropped without an answer)."""

    number: int
    method: str
    path: str
    status: int | None
    #: what the request carried: its query string and body, exactly as received (tests look in
    #: them for a value that must never reach a platform)
    query: str = ""
    body: bytes = b""


class Emulator:
    """Base of every platform emulator: its prefix, fault plan, request log and lock.

    Subclasses implement :meth:`handle` (and usually :meth:`fault_reply`, :meth:`describe`
    and :meth:`snapshot`). ``handle`` receives the fault picked for the request when it is
    one the emulator acts out itself (``reject``), else None.
    """

    #: URL path segment this emulator answers under, e.g. "mailchimp"
    prefix: str = ""

    def __init__(self) -> None:
        self.faults = FaultPlan()
        self.lock = threading.RLock()
        self._count = 0
        self._log: list[Logged] = []

    # -- what subclasses provide -------------------------------------------------

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        raise NotImplementedError

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        """The platform's own answer for an injected ``status`` or ``throttle`` fault."""
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        status = 429 if fault.kind == "throttle" else fault.code
        return Reply.json(status, {"title": fault.title}, headers=headers)

    def describe(self, base_url: str) -> dict[str, Any]:
        """What a client needs to talk to this emulator (for ``cdp sandbox --ready-file``)."""
        return {"base_url": base_url}

    def snapshot(self) -> dict[str, Any]:
        """The emulator's state (members, lists, audiences — as hashes where the platform hashes)."""
        return {}

    def audience_sizes(self) -> dict[str, int]:
        """How many records each list or audience holds now (what the demo prints)."""
        return {}

    def admit(self, request: Request) -> Reply | None:
        """Called before handling: a Reply refuses the request (a connection or rate limit)."""
        return None

    def release(self, request: Request) -> None:
        """Called when the request is done, whatever happened (pairs with :meth:`admit`)."""

    # -- shared --------------------------------------------------------------------

    def next_number(self) -> int:
        with self.lock:
            self._count += 1
            return self._count

    def record(self, request: Request, status: int | None) -> None:
        """Log the request as answered (``status`` None: dropped without an answer)."""
        with self.lock:
            query = "&".join(f"{name}={value}" for name, values in request.query.items() for value in values)
            self._log.append(Logged(request.number, request.method, request.path, status, query, request.body))

    @property
    def requests(self) -> list[Logged]:
        """Every request answered (or dropped) so far, in the order they finished."""
        with self.lock:
            return list(self._log)

    def requests_to(self, method: str, fragment: str) -> list[Logged]:
        return [r for r in self.requests if r.method == method and fragment in r.path]


class SandboxServer:
    """Serves every emulator on one loopback port, each under ``/<prefix>``."""

    def __init__(self, emulators: Iterable[Emulator], *, host: str = LOOPBACK, port: int = 0, quiet: bool = True):
        self.emulators: dict[str, Emulator] = {}
        for emulator in emulators:
            if not emulator.prefix or "/" in emulator.prefix or "server" in emulator.prefix.lower():
                raise ValueError(f"emulator prefix {emulator.prefix!r} must be one path segment without 'server'")
            if emulator.prefix in self.emulators:
                raise ValueError(f"two emulators want the prefix {emulator.prefix!r}")
            self.emulators[emulator.prefix] = emulator
        self.host = host
        self.port = port
        self.quiet = quiet
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._active = 0
        self._idle = threading.Condition()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.sandbox = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests sleeping in a timeout fault end at once."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}"

    def base_url(self, emulator: Emulator | str) -> str:
        prefix = emulator if isinstance(emulator, str) else emulator.prefix
        return f"{self.origin}/{prefix}"

    def ready_document(self) -> dict[str, Any]:
        """Each platform's base URL, the sandbox credentials and what it starts with."""
        return {
            "origin": self.origin,
            "platforms": {
                prefix: emulator.describe(self.base_url(emulator)) for prefix, emulator in self.emulators.items()
            },
        }

    # -- used by the handler ---------------------------------------------------------

    def wait(self, seconds: float) -> bool:
        """Sleep unless the server stops meanwhile; True if still running."""
        return not self._stopping.wait(seconds)

    def enter(self) -> None:
        with self._idle:
            self._active += 1

    def leave(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (one the client gave up on may still be
        sleeping in a timeout fault and land late); True if idle in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)


class _Handler(BaseHTTPRequestHandler):
    """HTTP mechanics and the shared faults; meaning is the emulator's."""

    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without this each answer waits ~40 ms for
    # the client's delayed ACK (Nagle), and the sandbox would be the bottleneck
    disable_nagle_algorithm = True
    timeout = 60
    server_version = "cdp-sandbox/1"

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.sandbox.enter()
        try:
            self._serve()
        finally:
            self.sandbox.leave()

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        emulator = self.sandbox.emulators.get(prefix)
        if emulator is None:
            self._send(Reply.json(404, {"title": "not found", "detail": f"no emulator under /{prefix}"}))
            return
        request = Request(
            method=self.command,
            path="/" + rest,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            number=emulator.next_number(),
        )
        refused = emulator.admit(request)
        try:
            reply = refused if refused is not None else self._answer(emulator, request)
        finally:
            emulator.release(request)
        emulator.record(request, None if reply is None else reply.status)
        if reply is None:
            self.close_connection = True  # end the connection with no response at all
        else:
            self._send(reply)

    def _answer(self, emulator: Emulator, request: Request) -> Reply | None:
        """Act out the request's fault around the emulator's answer; None drops the connection."""
        fault = emulator.faults.pick(request.number, request.method, request.path, request.body)
        if fault is not None and fault.kind in ("status", "throttle"):
            return emulator.fault_reply(fault, request)
        if fault is not None and fault.kind in ("drop", "timeout") and not fault.apply_first:
            if fault.kind == "drop" or not self.sandbox.wait(fault.seconds):
                return None
        reply = emulator.handle(request, fault if fault is not None and fault.kind == "reject" else None)
        if fault is not None and fault.kind == "drop":
            return None
        if fault is not None and fault.kind == "timeout" and fault.apply_first and not self.sandbox.wait(fault.seconds):
            return None
        return reply

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("POST", "PUT", "PATCH") and self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self._send(Reply.json(411, {"title": "length required"}))
                return None
            return b""
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(Reply.json(413, {"title": "request body too large"}))
            return None
        return self.rfile.read(int(length))

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.body:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.sandbox.quiet:
            super().log_message(format, *args)
