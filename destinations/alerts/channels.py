"""Where alerts go: a Slack-compatible incoming webhook, or a generic webhook signed the
Standard Webhooks way (the signing of destinations/webhook.py, not a copy of it).

Each channel type declares its options once as a frozen dataclass (parsed by
destinations/options.py, like a connector's) and sends one :class:`Notice` per call over
the shared HTTP plumbing of destinations/http.py: one session, timeouts on every call,
a bounded retry of 429/5xx (honouring Retry-After). Sending never raises: it answers a
:class:`Delivery` saying whether the notice arrived and, if not, why — a channel that is
down must not fail a sync; its notice stays pending and is sent at the next evaluation.

Every text a channel sends goes through destinations.http.redact on its way out, a second
line of defence behind the rules' own texts (names and counts only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import requests

from destinations.base import DestinationError
from destinations.http import Timeout, build_session, error_from_exception, redact
from destinations.options import Secret, option, secret_option
from destinations.webhook import decode_secret, sign

USER_AGENT = "composable-cdp-alerts/0.1"
#: an alert is small and a person waits for it, but a sync waits for the alert: retry little
MAX_RETRIES = 2
MAX_RETRY_AFTER = 30.0
MAX_TIMEOUT_SECONDS = 60.0
#: longest part of a receiver's answer kept in an error (Slack answers a short word)
MAX_ANSWER_CHARS = 80


class Notice(NamedTuple):
    """One message about one alert: it opened ("fired") or its condition cleared ("resolved")."""

    alert_id: str
    #: fired | resolved
    notice: str
    rule: str
    kind: str
    subject: str
    summary: str
    facts: Mapping[str, Any]
    first_seen_at: datetime
    resolved_at: datetime | None

    @property
    def message_id(self) -> str:
        """Stable across re-sends, so a receiver can drop a duplicate."""
        return f"msg_{self.alert_id}_{self.notice}"

    def headline(self) -> str:
        if self.notice == "resolved":
            return f"Resolved: {self.rule} on {self.subject} (open since {self.first_seen_at:%Y-%m-%d %H:%M} UTC)"
        return f"Alert {self.rule}: {self.summary}"

    def safe_facts(self) -> dict[str, Any]:
        """The facts with every text redacted (numbers and booleans as they are)."""
        return {str(name): redact(value) if isinstance(value, str) else value for name, value in self.facts.items()}


class Delivery(NamedTuple):
    ok: bool
    #: why it did not arrive (status and the receiver's short answer, no URL), or None
    error: str | None = None


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> Delivery: ...

    def close(self) -> None: ...


def _http_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


@dataclass(frozen=True)
class SlackOptions:
    """A Slack (or compatible: Mattermost, Rocket.Chat, Teams workflows) incoming webhook."""

    url: str = option(
        help="the incoming-webhook URL; it is a secret: write ${SOME_ENV_VAR} and export it", check=_http_url
    )
    timeout_seconds: float = option(default=10.0, above=0, maximum=MAX_TIMEOUT_SECONDS, help="seconds to wait")


@dataclass(frozen=True)
class WebhookChannelOptions:
    """A generic HTTP receiver: JSON, signed per Standard Webhooks like the webhook destination."""

    url: str = option(help="where alerts are POSTed (http:// or https://)", check=_http_url)
    secret_env: Secret = secret_option(
        help="environment variable holding the receiver's whsec_<base64> signing secret",
        hint="export it with the receiver's whsec_ signing secret",
    )
    timeout_seconds: float = option(default=10.0, above=0, maximum=MAX_TIMEOUT_SECONDS, help="seconds to wait")


class _HttpChannel:
    """What both channel types share: the session, the POST, and reading the answer."""

    label_kind = "alert channel"

    def __init__(self, name: str, url: str, timeout_seconds: float, *, backoff_factor: float = 0.5) -> None:
        self.name = name
        self._url = url
        self._timeout = Timeout(connect=min(5.0, timeout_seconds), read=timeout_seconds)
        self._session = build_session(
            user_agent=USER_AGENT,
            max_retries=MAX_RETRIES,
            backoff_factor=backoff_factor,
            max_retry_after=MAX_RETRY_AFTER,
        )

    @property
    def label(self) -> str:
        return f"{self.label_kind} {self.name!r}"

    def _post(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        try:
            response = self._session.post(
                self._url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            error: DestinationError = error_from_exception(exc, destination=self.label, max_attempts=MAX_RETRIES + 1)
            return Delivery(False, str(error).replace("The batch will be sent again next run.", "").strip())
        if 200 <= response.status_code < 300:
            return Delivery(True)
        return Delivery(False, f"{self.label} answered HTTP {response.status_code}{_answer(response)}")

    def close(self) -> None:
        self._session.close()


def _answer(response: requests.Response) -> str:
    """The receiver's own short answer ("invalid_payload", a problem title), redacted; never a page."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        text = str(body.get("title") or body.get("error") or "")
    if not text or len(text) > MAX_ANSWER_CHARS or "\n" in text or "<" in text:
        return ""
    return f": {redact(text)}"


class SlackChannel(_HttpChannel):
    """POSTs ``{"text": …, "blocks": […]}`` to an incoming webhook; Slack answers 200 "ok"."""

    label_kind = "slack channel"

    def __init__(self, name: str, options: SlackOptions, *, backoff_factor: float = 0.5) -> None:
        super().__init__(name, options.url, options.timeout_seconds, backoff_factor=backoff_factor)

    def send(self, notice: Notice) -> Delivery:
        return self._post(json.dumps(slack_message(notice)).encode("utf-8"), {})


def slack_message(notice: Notice) -> dict[str, Any]:
    """The message: a plain-text fallback, a section with the headline, a context line of facts."""
    headline = redact(notice.headline())
    facts = ", ".join(f"{name}: {value}" for name, value in notice.safe_facts().items())
    icon = ":white_check_mark:" if notice.notice == "resolved" else ":rotating_light:"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {_slack_escape(headline)}"[:3000]}},
    ]
    if facts:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(facts)[:3000]}]})
    return {"text": headline[:3000], "blocks": blocks}


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup; escape them as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookChannel(_HttpChannel):
    """POSTs ``{"type": "alert.fired"|"alert.resolved", "alert": {…}}`` signed per Standard Webhooks."""

    label_kind = "webhook channel"

    def __init__(self, name: str, options: WebhookChannelOptions, *, backoff_factor: float = 0.5) -> None:
        super().__init__(name, options.url, options.timeout_seconds, backoff_factor=backoff_factor)
        try:
            self._key = decode_secret(options.secret_env.value)
        except ValueError:
            raise ValueError(
                f"{self.label}: the secret in ${options.secret_env.env_var} is not of the form whsec_<base64>"
            ) from None

    def send(self, notice: Notice) -> Delivery:
        body = json.dumps(webhook_payload(notice), separators=(",", ":"), sort_keys=True).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "webhook-id": notice.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, notice.message_id, timestamp, body),
        }
        return self._post(body, headers)


def webhook_payload(notice: Notice) -> dict[str, Any]:
    return {
        "type": f"alert.{notice.notice}",
        "alert": {
            "id": notice.alert_id,
            "rule": notice.rule,
            "kind": notice.kind,
            "subject": redact(notice.subject),
            "summary": redact(notice.summary),
            "text": redact(notice.headline()),
            "facts": notice.safe_facts(),
            "first_seen_at": notice.first_seen_at.isoformat() + "Z",
            "resolved_at": notice.resolved_at.isoformat() + "Z" if notice.resolved_at else None,
        },
    }


#: channel type -> (options record, channel class)
CHANNEL_TYPES: dict[str, tuple[type, type]] = {
    "slack": (SlackOptions, SlackChannel),
    "webhook": (WebhookChannelOptions, WebhookChannel),
}
