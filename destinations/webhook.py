"""Generic webhook destination, signed the Standard Webhooks way.

One ``send`` is one signed POST of up to ``batch_size`` changes. The receiver answers
with one result per change id, so per-record trouble (a bad identifier, a record it
cannot take right now) is reported per record instead of failing the batch.

The message id is derived from the change ids, so a batch sent again (a urllib3 retry
after a timeout, or the engine re-planning after a crash) carries the same
``webhook-id`` and a Standard Webhooks receiver can drop the duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from destinations.base import Change, DestinationConfigError, Outcome, refuse_oversized_batch
from destinations.http import (
    DEFAULT_TIMEOUT,
    MAX_ERROR_CHARS,
    Timeout,
    build_session,
    check_response,
    error_from_exception,
    error_title,
    redact,
)
from destinations.options import Secret, check_option, option, parse_options, secret_option

USER_AGENT = "composable-cdp-webhook/0.1"
EVENT_TYPE = "audience.changes"
SECRET_PREFIX = "whsec_"
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000
MAX_TIMEOUT_SECONDS = 300.0

NO_RESULT = "destination returned no result for this record"


def delivery_id(changes: Sequence[Change]) -> str:
    """Deterministic ``webhook-id``: the same batch sent again keeps the same id."""
    digest = hashlib.sha256("\n".join(c.change_id for c in changes).encode("utf-8")).hexdigest()
    return f"msg_{digest[:32]}"


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside ``whsec_<base64>``; ValueError if the secret is not of that form."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("secret does not start with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret is not valid base64 after whsec_") from None
    if not key:
        raise ValueError("secret is empty after whsec_")
    return key


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def encode_body(sync_name: str, changes: Sequence[Change]) -> bytes:
    """Compact JSON body; these exact bytes are signed and sent."""
    payload = {
        "type": EVENT_TYPE,
        "sync": sync_name,
        "changes": [
            {"id": c.change_id, "op": c.op, "key": c.key, "identifiers": c.identifiers, "fields": c.fields}
            for c in changes
        ],
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_value).encode(
        "utf-8"
    )


def _json_value(value: Any) -> Any:
    """Warehouse types JSON lacks: dates as ISO 8601, decimals as strings (no float rounding)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a field value of type {type(value).__name__} cannot be sent as JSON")


def _pii_values(change: Change) -> tuple[str, ...]:
    """The change's identifier values, to strip from anything the receiver says about it."""
    return tuple(str(v) for v in change.identifiers.values() if v is not None and len(str(v)) >= 3)


def _label(name: str) -> str:
    return f"webhook destination {name!r}"


def _http_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


@dataclass(frozen=True)
class WebhookOptions:
    """A webhook connection's options in destinations.yml (parsed by destinations.options)."""

    url: str = option(help="where deliveries are POSTed (http:// or https://)", check=_http_url)
    secret_env: Secret = secret_option(
        help="environment variable holding the receiver's whsec_<base64> signing secret",
        hint="export it with the receiver's whsec_ signing secret",
    )
    batch_size: int = option(
        default=DEFAULT_BATCH_SIZE,
        minimum=1,
        maximum=MAX_BATCH_SIZE,
        help="changes per POST, at most the receiver's limit",
    )
    timeout_seconds: float | None = option(
        default=None,
        above=0,
        maximum=MAX_TIMEOUT_SECONDS,
        help="seconds to wait for an answer (connecting never waits longer than 5)",
    )


class WebhookDestination:
    """Delivers audience changes to an HTTP receiver that follows Standard Webhooks."""

    supported_modes: frozenset[str] = frozenset({"mirror", "upsert", "add_only"})
    identifier_names: frozenset[str] = frozenset({"email", "phone", "profile_id", "external_id"})
    key_names: frozenset[str] = identifier_names
    accepts_fields: bool = True
    options_type: type = WebhookOptions

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        sync_name: str = "",
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_after: float = 60.0,
        secret_env: str | None = None,
    ) -> None:
        """``secret_env`` only names where the secret came from, for error messages."""
        self.name = name
        self.url = url
        self.sync_name = sync_name
        self.batch_size = check_option(WebhookOptions, "batch_size", batch_size, label=_label(name))
        self.timeout = timeout if isinstance(timeout, Timeout) else _timeout_from_seconds(float(timeout))
        self.max_retries = max_retries
        self._secret_hint = f"check the secret in ${secret_env}" if secret_env else "check the webhook secret"
        try:
            self._key = decode_secret(secret)
        except ValueError:
            where = f"the secret in ${secret_env}" if secret_env else "the secret"
            raise DestinationConfigError(f"{_label(name)}: {where} is not of the form whsec_<base64>") from None
        self._session = build_session(
            user_agent=USER_AGENT,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
        )

    @classmethod
    def from_config(
        cls, name: str, options: Mapping[str, Any], env: Mapping[str, str], *, sync_name: str = ""
    ) -> WebhookDestination:
        """Build from a named connection's options (:class:`WebhookOptions`); the secret is
        read from ``env``. Every problem is a DestinationConfigError naming the destination
        and the option or environment variable at fault, never the secret's value."""
        parsed = parse_options(WebhookOptions, options, env, label=_label(name), connector_type="webhook")
        timeout = DEFAULT_TIMEOUT if parsed.timeout_seconds is None else _timeout_from_seconds(parsed.timeout_seconds)
        return cls(
            name,
            parsed.url,
            parsed.secret_env.value,
            sync_name=sync_name,
            batch_size=parsed.batch_size,
            timeout=timeout,
            secret_env=parsed.secret_env.env_var,
        )

    def send(self, changes: list[Change]) -> list[Outcome]:
        """POST one signed batch; return one outcome per change, in order."""
        refuse_oversized_batch(_label(self.name), changes, self.batch_size)
        if not changes:
            return []
        response = self._post(changes)
        return self._outcomes(changes, response)

    def forget(self, changes: list[Change]) -> list[Outcome]:
        """A privacy request: the receiver gets a ``forget`` change per person (not a plain
        ``remove``), so it can erase what it derived from them too; one outcome per change."""
        refuse_oversized_batch(_label(self.name), changes, self.batch_size)
        if not changes:
            return []
        forgets = [replace(change, op="forget", fields={}) for change in changes]
        outcomes = self._outcomes(forgets, self._post(forgets))
        return [
            replace(outcome, answer="receiver ok") if outcome.status == "confirmed" else outcome for outcome in outcomes
        ]

    def report(self) -> dict[str, int]:
        """A receiver answers per record and gives no figures of its own."""
        return {}

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def _post(self, changes: Sequence[Change]) -> requests.Response:
        """One signed POST; urllib3 retries it with the same id, timestamp and signature."""
        webhook_id = delivery_id(changes)
        timestamp = int(time.time())
        body = encode_body(self.sync_name, changes)
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, webhook_id, timestamp, body),
            "Content-Type": "application/json",
        }
        try:
            return self._session.post(self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise error_from_exception(exc, destination=_label(self.name), max_attempts=self.max_retries + 1) from None

    def _outcomes(self, changes: Sequence[Change], response: requests.Response) -> list[Outcome]:
        """Map the final response to outcomes, or raise when it speaks for the whole batch."""
        status = response.status_code
        if 200 <= status < 300:
            return _per_record_outcomes(changes, response)
        every_value = tuple(v for c in changes for v in _pii_values(c))
        if status == 413:
            raise DestinationConfigError(
                f"{_label(self.name)} refused a batch of {len(changes)} changes as too large "
                f"(HTTP 413{_colon(error_title(response, *every_value))}): set batch_size (now {self.batch_size}) "
                "to at most the receiver's limit"
            )
        check_response(
            response,
            destination=_label(self.name),
            credentials_hint=self._secret_hint,
            refused="signature/credentials",
            redact_values=every_value,
        )
        reason = f"webhook receiver refused the batch (HTTP {status}{_colon(error_title(response, *every_value))})"
        return [Outcome(c.change_id, "rejected", reason) for c in changes]


def _colon(title: str) -> str:
    return f": {title}" if title else ""


def _per_record_outcomes(changes: Sequence[Change], response: requests.Response) -> list[Outcome]:
    """Read ``{"results": [{id, status, error, retryable}]}``; a missing result means failed."""
    results = _results_by_id(response)
    return [_outcome(change, results.get(change.change_id)) for change in changes]


def _results_by_id(response: requests.Response) -> dict[str, Mapping[str, Any]]:
    """Results keyed by change id; an unreadable body yields none (every record then fails)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return {}
    return {r["id"]: r for r in results if isinstance(r, dict) and isinstance(r.get("id"), str)}


def _outcome(change: Change, result: Mapping[str, Any] | None) -> Outcome:
    """ok → confirmed; error → failed if retryable else rejected; unknown → failed (safe to retry)."""
    if result is None:
        return Outcome(change.change_id, "failed", NO_RESULT)
    status = result.get("status")
    if status == "ok":
        return Outcome(change.change_id, "confirmed")
    if status != "error":
        return Outcome(change.change_id, "failed", "destination returned an unknown status for this record")
    message = result.get("error")
    text = message if isinstance(message, str) and message else "destination reported an error without a message"
    error = redact(text, *_pii_values(change))[:MAX_ERROR_CHARS]
    return Outcome(change.change_id, "rejected" if result.get("retryable") is False else "failed", error)


def _timeout_from_seconds(seconds: float) -> Timeout:
    """A single number is the read timeout; connecting never waits longer than the default."""
    return Timeout(connect=min(DEFAULT_TIMEOUT.connect, seconds), read=seconds)
