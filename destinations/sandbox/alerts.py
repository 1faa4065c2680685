"""A generic alert receiver, under ``/alerts``: Standard Webhooks signatures checked the way
the sandbox's webhook receiver checks them, alert payloads kept for tests and the demo.

``POST /alerts/hooks`` with ``{"type": "alert.fired" | "alert.resolved", "alert": {"id",
"rule", "kind", "subject", "summary", "text", "facts", …}}``, signed with the receiver's
``whsec_`` secret. Answers: ``200 {"ok": true}``; ``401`` for a bad or stale signature;
``400`` for a body of the wrong shape; a re-delivered ``webhook-id`` is answered 200 again
and not kept twice (a Standard Webhooks consumer de-duplicates by message id).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from destinations.sandbox.faults import Fault
from destinations.sandbox.server import Emulator, Reply, Request
from destinations.sandbox.webhook import TOLERANCE_SECONDS, new_secret, secret_key, signature_problem

PATH = "/hooks"
ALERT_TYPES = frozenset({"alert.fired", "alert.resolved"})
_REQUIRED_TEXT = ("id", "rule", "kind", "subject", "summary", "text")


class AlertReceiverEmulator(Emulator):
    """Keeps every alert it accepted (:attr:`alerts`). Thread-safe."""

    prefix = "alerts"

    def __init__(self, secret: str | None = None, *, tolerance_seconds: int = TOLERANCE_SECONDS) -> None:
        super().__init__()
        self.secret = secret or new_secret()
        self._key = secret_key(self.secret)
        self.tolerance_seconds = tolerance_seconds
        self._alerts: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._duplicates = 0

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """Every payload accepted, oldest first."""
        with self.lock:
            return copy.deepcopy(self._alerts)

    @property
    def duplicate_deliveries(self) -> int:
        with self.lock:
            return self._duplicates

    def describe(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "url": base_url + PATH, "secret": self.secret}

    def snapshot(self) -> dict[str, Any]:
        return {"alerts": self.alerts}

    def audience_sizes(self) -> dict[str, int]:
        return {}

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        if request.path != PATH:
            return Reply.json(404, {"title": "not found"})
        if request.method != "POST":
            return Reply.json(405, {"title": "method not allowed", "detail": "POST signed alerts to /hooks"})
        problem = signature_problem(self._key, request.headers, request.body, self.tolerance_seconds)
        if problem is not None:
            return problem
        if request.content_type != "application/json":
            return Reply.json(415, {"title": "unsupported media type"})
        try:
            payload = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return Reply.json(400, {"title": "malformed JSON"})
        shape = _payload_problem(payload)
        if shape is not None:
            return Reply.json(400, {"title": "malformed payload", "detail": shape})
        webhook_id = request.headers["webhook-id"]
        with self.lock:
            if webhook_id in self._seen:
                self._duplicates += 1
            else:
                self._seen.add(webhook_id)
                self._alerts.append(payload)
        return Reply.json(200, {"ok": True})


def _payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or payload.get("type") not in ALERT_TYPES:
        return "type must be alert.fired or alert.resolved"
    alert = payload.get("alert")
    if not isinstance(alert, dict):
        return "alert must be an object"
    for name in _REQUIRED_TEXT:
        if not isinstance(alert.get(name), str) or not alert[name]:
            return f"alert.{name} must be a non-empty string"
    if not isinstance(alert.get("facts"), dict):
        return "alert.facts must be an object"
    return None
