"""A Slack-compatible incoming webhook, under ``/slack``, for alert tests and the demo.

It answers as Slack's incoming webhooks do: ``200 ok`` (text/plain) for a message it
accepts; ``404 no_service`` for a hook path it does not know; ``400 invalid_payload`` for
a body that is not a JSON object, ``400 no_text`` for a message with neither text nor
blocks, ``400 invalid_blocks`` for blocks of the wrong shape; ``429 rate_limited`` with
``Retry-After`` when throttled (a fault). Every answer is a short plain-text word.

Hooks live at ``/services/T…/B…/<token>``. One is there from the start at a fixed
path (:data:`DEMO_HOOK`) so the shipped alerts.yml can name it; :meth:`SlackEmulator.add_hook`
makes more. Messages it accepted are kept, per hook, for tests (:meth:`messages`).
"""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

from destinations.sandbox.faults import Fault
from destinations.sandbox.server import Emulator, Reply, Request

#: the hook every sandbox starts with (the demo's alerts.yml points at it)
DEMO_HOOK = "/services/TSANDBOX00/BSANDBOX00/sandboxwebhooktoken000000"
#: Slack's limits on what one message may hold
MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_BLOCK_TEXT_CHARS = 3_000
MAX_CONTEXT_ELEMENTS = 10
_TEXT_TYPES = frozenset({"mrkdwn", "plain_text"})


def _word(status: int, word: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, word.encode("utf-8"), "text/plain; charset=utf-8", dict(headers or {}))


class SlackEmulator(Emulator):
    """Incoming webhooks that keep what they were sent. Thread-safe."""

    prefix = "slack"

    def __init__(self) -> None:
        super().__init__()
        #: hook path -> the channel it posts to
        self._hooks: dict[str, str] = {DEMO_HOOK: "#cdp-alerts"}
        self._messages: list[dict[str, Any]] = []

    def add_hook(self, channel: str = "#alerts") -> str:
        """A new hook posting to ``channel``; its path (append it to the base URL)."""
        path = f"/services/T{secrets.token_hex(5).upper()}/B{secrets.token_hex(5).upper()}/{secrets.token_hex(12)}"
        with self.lock:
            self._hooks[path] = channel
        return path

    def messages(self, hook: str | None = None) -> list[dict[str, Any]]:
        """Every message accepted (``{"hook", "channel", "text", "blocks"}``), oldest first."""
        with self.lock:
            return [copy.deepcopy(m) for m in self._messages if hook is None or m["hook"] == hook]

    def describe(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "url": base_url + DEMO_HOOK}

    def snapshot(self) -> dict[str, Any]:
        return {"messages": self.messages()}

    def audience_sizes(self) -> dict[str, int]:
        return {}

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.kind == "throttle":
            return _word(429, "rate_limited", {"Retry-After": fault.retry_after or "1"})
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return _word(fault.code, fault.title, headers)

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        with self.lock:
            channel = self._hooks.get(request.path)
        if channel is None:
            return _word(404, "no_service")
        if request.method != "POST":
            return _word(405, "invalid_method")
        if request.content_type != "application/json":
            return _word(400, "invalid_payload")
        try:
            message = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return _word(400, "invalid_payload")
        problem = message_problem(message)
        if problem is not None:
            return _word(400, problem)
        with self.lock:
            self._messages.append(
                {
                    "hook": request.path,
                    "channel": channel,
                    "text": message.get("text", ""),
                    "blocks": message.get("blocks", []),
                }
            )
        return _word(200, "ok")


def message_problem(message: Any) -> str | None:
    """Slack's error word for a message of the wrong shape, or None."""
    if not isinstance(message, dict):
        return "invalid_payload"
    text, blocks = message.get("text"), message.get("blocks")
    if text is not None and not isinstance(text, str):
        return "invalid_payload"
    if not text and not blocks:
        return "no_text"
    if text and len(text) > MAX_TEXT_CHARS:
        return "msg_too_long"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    return "invalid_blocks" if any(not _block_ok(block) for block in blocks) else None


def _text_ok(value: Any, *, limit: int = MAX_BLOCK_TEXT_CHARS) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in _TEXT_TYPES
        and isinstance(value.get("text"), str)
        and 0 < len(value["text"]) <= limit
    )


def _block_ok(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "divider":
        return True
    if kind == "header":
        return _text_ok(block.get("text"), limit=150) and block["text"]["type"] == "plain_text"
    if kind == "section":
        fields = block.get("fields")
        if fields is not None:
            return isinstance(fields, list) and 0 < len(fields) <= 10 and all(_text_ok(f, limit=2000) for f in fields)
        return _text_ok(block.get("text"))
    if kind == "context":
        elements = block.get("elements")
        return (
            isinstance(elements, list)
            and 0 < len(elements) <= MAX_CONTEXT_ELEMENTS
            and all(_text_ok(e) for e in elements)
        )
    return False
