"""Meta Custom Audiences (Marketing API v27.0; v26.0 accepted): people in, people out.

One ``send`` turns its changes into rows of a multi-key schema (EMAIL, PHONE, FN, LN, CT,
ST, ZIP, COUNTRY, EXTERN_ID — every value normalised and hashed by
destinations/identifiers.py, EXTERN_ID in the clear, ``""`` for an unknown value) and
delivers them the way the official ``facebook-business`` SDK does:

- removals first: ``DELETE /v27.0/{audience_id}/users`` with every param in the query
  string (so a long removal list is split over several requests of one *session*, each URL
  at most ``max_url_chars``); then adds: ``POST /v27.0/{audience_id}/users`` with
  form-encoded params whose values are JSON text (sorted keys, compact separators), at most
  10,000 rows a request;
- ``access_token`` (and ``appsecret_proof`` = HMAC-SHA256(app secret, token) when an app
  secret is configured) in the query string of every request, POST included.

Sessions. Each group of requests a send makes for one operation is one session
(``batch_seq`` 1.., ``last_batch_flag`` on the last, ``estimated_num_total`` its rows); the
session id is random (63 bits), as Meta's own uploader chose it. A retry of a request
re-sends it unchanged (same session, same ``batch_seq``: the same batch again); a send
repeated after a crash opens a new session. Nothing can clash with a finished session, and
audiences are sets, so adding or removing someone twice changes nothing.

Answers. Meta answers 200 with ``num_received`` / ``num_invalid_entries`` and a few
``invalid_entry_samples`` (the invalid value → why). A row holding a sampled value gets
that row's outcome: ``rejected`` (Meta will not take that value as it is), or ``failed``
when Meta's reason says the trouble is temporary. When Meta counts more invalid rows than
its samples name, the rows it did not name are sent again in halves (a new session each;
harmless, audiences being sets) until every invalid row is found, so a valid row is never
blamed and an invalid one never recorded as delivered. Before sending, a row whose key
identifier (or every identifier) normalises to nothing is rejected here: Meta could not
use it, and a person added without their key could never be removed again.

Errors are read from ``error.code``, never from the HTTP status (Meta throttles with HTTP
400): the throttle codes 4, 17, 613, 80003, 80004 are waited out for the minutes
``X-Business-Use-Case-Usage`` names (``estimated_time_to_regain_access``), within
``max_retry_after`` seconds in all, then DestinationUnavailable; ``is_transient`` errors
are retried; 190 (bad token), an unknown audience (100/33), a flagged audience (100/1713230),
a bad appsecret_proof and a retired API version are configuration errors naming the
setting; "audience size too low" on removal rejects those removals. 5xx, timeouts and
dropped connections are retried by the shared urllib3 policy (destinations/http.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from destinations.base import (
    Change,
    DestinationConfigError,
    DestinationUnavailable,
    Outcome,
    refuse_oversized_batch,
)
from destinations.http import (
    DEFAULT_TIMEOUT,
    MAX_ERROR_CHARS,
    UNAVAILABLE_STATUSES,
    Timeout,
    attempts_made,
    build_session,
    check_response,
    error_from_exception,
    hide_query_secrets,
    redact,
    unavailable_from_response,
)
from destinations.identifiers import META_IDENTIFIERS, META_KEYS, meta_row
from destinations.options import Secret, check_option, option, parse_options, secret_option

GRAPH_URL = "https://graph.facebook.com"
API_VERSIONS = ("v27.0", "v26.0")
DEFAULT_API_VERSION = API_VERSIONS[0]
USER_AGENT = "composable-cdp-meta/0.1"
#: rows per request, Meta's limit (and so the most changes one send takes)
MAX_ROWS = 10_000
MAX_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_RETRY_AFTER = 300.0
#: a DELETE carries its rows in the URL: keep each URL at most this long (requests split)
DEFAULT_MAX_URL_CHARS = 30_000

#: error codes that mean "slow down": 4 app, 17 user, 613 call rate, 80003 custom audiences,
#: 80004 ad account
THROTTLE_CODES = frozenset({4, 17, 613, 80003, 80004})
TOKEN_CODES = frozenset({102, 104, 190})
UNKNOWN_OBJECT_SUBCODE = 33
FLAGGED_AUDIENCE_SUBCODE = 1713230
DEPRECATED_VERSION_CODE = 2635
AUDIENCE_UPDATE_FAILED = 2650
#: an invalid entry whose reason says this is worth sending again next run
_TEMPORARY = re.compile(r"temporar|try again|transient", re.IGNORECASE)
_SIZE_TOO_LOW = re.compile(r"(size|audience) (is )?too (low|small)", re.IGNORECASE)
UNSAMPLED_INVALID = "Meta counted this row as an invalid entry (num_invalid_entries) without naming its value"
SIZE_TOO_LOW_ERROR = (
    "Meta refused to remove people from this audience: audience size too low (it keeps very small audiences "
    "from shrinking)"
)

Method = Literal["POST", "DELETE"]
_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def _label(name: str) -> str:
    return f"Meta custom audience destination {name!r}"


def _numeric_id(value: str) -> str | None:
    return None if value.isdigit() else "must be the audience's numeric id (Ads Manager → Audiences)"


def _http_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _schema_check(value: str) -> str | None:
    keys = [key.strip().upper() for key in value.split(",") if key.strip()]
    unknown = [key for key in keys if key not in META_KEYS]
    if unknown or not keys:
        return f"must list Meta schema keys separated by commas, from {', '.join(META_KEYS)}"
    if len(set(keys)) != len(keys):
        return "names a schema key twice"
    return None


@dataclass(frozen=True)
class MetaOptions:
    """A Meta custom audience connection's options in destinations.yml."""

    audience_id: str = option(help="the custom audience's numeric id", check=_numeric_id)
    access_token_env: Secret = secret_option(
        help="environment variable holding a system user access token with ads_management",
        hint="export it with a system user token from Business Settings → System users",
    )
    app_secret_env: Secret | None = secret_option(
        help="environment variable holding the app secret, when the app requires appsecret_proof",
        hint="export it with the app secret from the app's Settings → Basic",
        required=False,
    )
    base_url: str = option(default=GRAPH_URL, help="the Graph API's address", check=_http_url)
    api_version: Literal["v27.0", "v26.0"] = option(default=DEFAULT_API_VERSION, help="Marketing API version")
    schema: str | None = option(
        default=None,
        help="the Meta keys every row carries, comma-separated (default: the identifiers the sync maps)",
        check=_schema_check,
    )
    batch_size: int = option(
        default=MAX_ROWS, minimum=1, maximum=MAX_ROWS, help="changes per send, at most Meta's 10,000 rows"
    )
    max_retry_after: float = option(
        default=DEFAULT_MAX_RETRY_AFTER,
        minimum=0,
        maximum=3600,
        help="seconds a send may wait in all for Meta's throttling before giving up until the next run",
    )
    timeout_seconds: float | None = option(
        default=None,
        above=0,
        maximum=MAX_TIMEOUT_SECONDS,
        help="seconds to wait for an answer (connecting never waits longer than 5)",
    )


@dataclass
class _Answer:
    """What one /users request achieved."""

    num_received: int
    num_invalid: int
    #: the invalid value -> Meta's reason
    samples: dict[str, str]


class MetaCustomAudienceDestination:
    """Adds people to, and removes them from, one Meta customer-file custom audience."""

    supported_modes: frozenset[str] = frozenset({"mirror", "upsert", "add_only"})
    identifier_names: frozenset[str] = frozenset(META_IDENTIFIERS)
    key_names: frozenset[str] = frozenset({"email", "phone", "external_id"})
    #: an ad audience holds people, not attributes
    accepts_fields: bool = False
    options_type: type = MetaOptions

    def __init__(
        self,
        name: str,
        *,
        audience_id: str,
        access_token: str,
        app_secret: str | None = None,
        base_url: str = GRAPH_URL,
        api_version: str = DEFAULT_API_VERSION,
        schema: Sequence[str] | None = None,
        sync_name: str = "",
        batch_size: int = MAX_ROWS,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        minute_seconds: float = 60.0,
        max_url_chars: int = DEFAULT_MAX_URL_CHARS,
        access_token_env: str | None = None,
        app_secret_env: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``minute_seconds`` is how long a minute of Meta's ``estimated_time_to_regain_access``
        lasts (60; tests shrink it). ``*_env`` only name where secrets came from, for errors."""
        label = _label(name)
        self.name = name
        self.label = label
        self.audience_id = check_option(MetaOptions, "audience_id", audience_id, label=label)
        self.api_version = check_option(MetaOptions, "api_version", api_version, label=label)
        self.batch_size = check_option(MetaOptions, "batch_size", batch_size, label=label)
        self.schema = list(schema) if schema else None
        self.sync_name = sync_name
        self.timeout = timeout if isinstance(timeout, Timeout) else _timeout_from_seconds(float(timeout))
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.max_retry_after = max_retry_after
        self.minute_seconds = minute_seconds
        self.max_url_chars = max_url_chars
        self._sleep = sleep
        self._url = f"{base_url.rstrip('/')}/{self.api_version}/{self.audience_id}/users"
        self._auth = {"access_token": access_token}
        if app_secret:
            proof = hmac.new(app_secret.encode("utf-8"), access_token.encode("utf-8"), hashlib.sha256).hexdigest()
            self._auth["appsecret_proof"] = proof
        self._token_hint = f"check the token in ${access_token_env}" if access_token_env else "check the access token"
        if app_secret_env:
            self._token_hint += f" and the app secret in ${app_secret_env}"
        self._secret_hint = f"check the app secret in ${app_secret_env}" if app_secret_env else "check the app secret"
        hide_query_secrets(*self._auth)
        self._session = build_session(
            user_agent=USER_AGENT,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
        )
        self._report = {"num_received": 0, "num_invalid_entries": 0, "sessions": 0, "requests": 0}

    @classmethod
    def from_config(
        cls, name: str, options: Mapping[str, Any], env: Mapping[str, str], *, sync_name: str = ""
    ) -> MetaCustomAudienceDestination:
        """Build from a named connection's options (:class:`MetaOptions`); secrets from ``env``."""
        parsed = parse_options(MetaOptions, options, env, label=_label(name), connector_type="meta_custom_audience")
        timeout = DEFAULT_TIMEOUT if parsed.timeout_seconds is None else _timeout_from_seconds(parsed.timeout_seconds)
        schema = [key.strip().upper() for key in parsed.schema.split(",") if key.strip()] if parsed.schema else None
        return cls(
            name,
            audience_id=parsed.audience_id,
            access_token=parsed.access_token_env.value,
            app_secret=parsed.app_secret_env.value if parsed.app_secret_env else None,
            base_url=parsed.base_url,
            api_version=parsed.api_version,
            schema=schema,
            sync_name=sync_name,
            batch_size=parsed.batch_size,
            timeout=timeout,
            max_retry_after=parsed.max_retry_after,
            access_token_env=parsed.access_token_env.env_var,
            app_secret_env=parsed.app_secret_env.env_var if parsed.app_secret_env else None,
        )

    # -- the interface ---------------------------------------------------------------------

    def send(self, changes: list[Change]) -> list[Outcome]:
        """Removals, then adds; one outcome per change, in order."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        outcomes: dict[str, Outcome] = {}
        budget = _Budget(self.max_retry_after)
        for method, op in (("DELETE", "remove"), ("POST", "upsert")):
            mine = [change for change in changes if change.op == op]
            if mine:
                outcomes.update(self._deliver(method, mine, budget))
        return [outcomes[change.change_id] for change in changes]

    def report(self) -> dict[str, int]:
        """Meta's own figures for what this connector sent: rows received and counted invalid
        (first answers only, not the re-sends that found invalid rows), sessions, requests."""
        return dict(self._report)

    def close(self) -> None:
        self._session.close()

    # -- one operation ---------------------------------------------------------------------

    def _deliver(self, method: Method, changes: list[Change], budget: _Budget) -> dict[str, Outcome]:
        schema = self._schema_for(changes)
        outcomes: dict[str, Outcome] = {}
        rows: list[list[str]] = []
        sent: list[Change] = []
        for change in changes:
            row = meta_row(change.identifiers, schema)
            problem = _unusable(change, row, schema)
            if problem:
                outcomes[change.change_id] = Outcome(
                    change.change_id, "rejected", f"rejected before sending: {problem}"
                )
            else:
                rows.append(row)
                sent.append(change)
        if not rows:
            return outcomes
        invalid: dict[int, tuple[str, str]] = {}
        refused: set[int] = set()
        self._send_rows(method, schema, rows, list(range(len(rows))), budget, invalid, refused, primary=True)
        for index, change in enumerate(sent):
            if index in invalid:
                value, reason = invalid[index]
                error = redact(reason, *_personal_values(change), value)[:MAX_ERROR_CHARS]
                status = "failed" if _TEMPORARY.search(reason) else "rejected"
                outcomes[change.change_id] = Outcome(change.change_id, status, error)
            elif index in refused:
                outcomes[change.change_id] = Outcome(change.change_id, "rejected", SIZE_TOO_LOW_ERROR)
            else:
                outcomes[change.change_id] = Outcome(change.change_id, "confirmed")
        return outcomes

    def _schema_for(self, changes: Sequence[Change]) -> list[str]:
        """The configured schema, or the Meta keys of the identifiers these changes carry."""
        names = {name for change in changes for name in change.identifiers if name in META_IDENTIFIERS}
        carried = [key for key in META_KEYS if key in {META_IDENTIFIERS[name] for name in names}]
        if self.schema is None:
            if not carried:
                raise DestinationConfigError(
                    f"{self.label}: the sync maps none of the identifiers Meta matches on "
                    f"({', '.join(sorted(META_IDENTIFIERS))})"
                )
            return carried
        missing = [key for key in carried if key not in self.schema]
        if missing:
            raise DestinationConfigError(
                f"{self.label}: option schema ({','.join(self.schema)}) lacks {', '.join(missing)}, which the sync "
                "maps: add it to schema, or unmap that identifier"
            )
        return self.schema

    def _send_rows(
        self,
        method: Method,
        schema: list[str],
        rows: list[list[str]],
        indexes: list[int],
        budget: _Budget,
        invalid: dict[int, tuple[str, str]],
        refused: set[int],
        *,
        primary: bool,
    ) -> None:
        """Send rows ``indexes`` in one session; note the rows Meta counted invalid in
        ``invalid`` (index → (value, why)) and those a whole request refused in ``refused``.

        When Meta counts more invalid rows than its samples name, the unnamed rows are sent
        again in halves (``primary`` False) until each invalid one is found: re-adding or
        re-removing the valid ones changes nothing."""
        session_id = secrets.randbits(63) or 1
        self._report["sessions"] += 1
        chunks = self._chunks(method, schema, rows, indexes)
        for seq, chunk in enumerate(chunks, start=1):
            session = {
                "session_id": session_id,
                "batch_seq": seq,
                "last_batch_flag": seq == len(chunks),
                "estimated_num_total": len(indexes),
            }
            payload = {"schema": schema, "data": [rows[i] for i in chunk], "is_raw": True}
            answer = self._request(method, payload, session, budget)
            if answer is None:  # removals refused: the audience is too small to remove from
                refused.update(chunk)
                continue
            if primary:
                self._report["num_received"] += answer.num_received
                self._report["num_invalid_entries"] += answer.num_invalid
            named = _named_rows(rows, chunk, answer.samples)
            invalid.update(named)
            unnamed = answer.num_invalid - len(named)
            if unnamed <= 0:
                continue
            candidates = [i for i in chunk if i not in named]
            if unnamed >= len(candidates):
                invalid.update(dict.fromkeys(candidates, ("", UNSAMPLED_INVALID)))
                continue
            middle = len(candidates) // 2
            for half in (candidates[:middle], candidates[middle:]):
                self._send_rows(method, schema, rows, half, budget, invalid, refused, primary=False)

    def _chunks(self, method: Method, schema: list[str], rows: list[list[str]], indexes: list[int]) -> list[list[int]]:
        """POST: one request (≤ 10,000 rows). DELETE: as many as keep each URL within
        ``max_url_chars`` (every param travels in the query string)."""
        if method == "POST":
            return [indexes[first : first + MAX_ROWS] for first in range(0, len(indexes), MAX_ROWS)]
        skeleton = {**self._auth, "payload": _json_text({"schema": schema, "data": [], "is_raw": True})}
        overhead = len(self._url) + len(_form_body(skeleton)) + 300  # + the session param
        chunks: list[list[int]] = []
        current: list[int] = []
        size = overhead
        for i in indexes:
            cost = len(_json_text(rows[i]).translate(_FORM_ENCODE)) + 3  # + an encoded comma
            if current and (size + cost > self.max_url_chars or len(current) >= MAX_ROWS):
                chunks.append(current)
                current, size = [], overhead
            current.append(i)
            size += cost
        if current:
            chunks.append(current)
        return chunks

    # -- one request -----------------------------------------------------------------------

    def _request(self, method: Method, payload: dict, session: dict, budget: _Budget) -> _Answer | None:
        """One request, re-sent unchanged while Meta throttles (within the budget) or calls its
        error transient. None: Meta refused removals because the audience is too small."""
        params = {"payload": _json_text(payload), "session": _json_text(session)}
        attempts = 0
        while True:
            response = self._http(method, params)
            attempts += attempts_made(response)
            self._report["requests"] += attempts_made(response)
            body = _json_body(response)
            error = body.get("error") if isinstance(body, dict) else None
            if error is None and 200 <= response.status_code < 300 and isinstance(body, dict):
                return _answer(body)
            if not isinstance(error, dict):
                check_response(response, destination=self.label, credentials_hint=self._token_hint, refused="token")
                raise DestinationUnavailable(
                    f"{self.label} answered HTTP {response.status_code} without a Graph API error. "
                    "The batch will be sent again next run."
                )
            if response.status_code in UNAVAILABLE_STATUSES:  # urllib3 has already retried these
                raise unavailable_from_response(response, destination=self.label, title=self._words(error))
            code = _int(error.get("code"))
            if code in THROTTLE_CODES or error.get("is_transient") is True:
                self._wait(response, error, code, attempts, budget)
                continue
            if method == "DELETE" and code == AUDIENCE_UPDATE_FAILED and _SIZE_TOO_LOW.search(self._words(error)):
                return None
            raise self._config_error(response, error, code)

    def _http(self, method: Method, params: dict[str, str]) -> requests.Response:
        """POST: params form-encoded, auth in the query; DELETE: everything in the query."""
        try:
            if method == "POST":
                return self._session.post(
                    self._url,
                    params=self._auth,
                    data=_form_body(params),
                    headers=_FORM_HEADERS,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            return self._session.delete(
                self._url, params={**self._auth, **params}, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise error_from_exception(exc, destination=self.label, max_attempts=self.max_retries + 1) from None

    def _wait(self, response: requests.Response, error: dict, code: int | None, attempts: int, budget: _Budget) -> None:
        """Wait out a throttle (the minutes Meta names) or a transient error (back-off), or give up."""
        minutes = _regain_access_minutes(response)
        wait = minutes * self.minute_seconds if minutes else self.backoff_factor * 2 ** (attempts - 1)
        what = f"Graph API error {code}" + (f"/{error['error_subcode']}" if error.get("error_subcode") else "")
        words = self._words(error)
        tries = f"{attempts} attempt" + ("" if attempts == 1 else "s")
        if minutes and wait > budget.left:
            raise DestinationUnavailable(
                f"{self.label} is throttling us ({what}, HTTP {response.status_code}: {words}) and asked us to wait "
                f"{wait:.0f}s (estimated_time_to_regain_access {minutes} min), longer than "
                f"max_retry_after={self.max_retry_after:.0f}s allows; gave up after {tries}. "
                "The batch will be sent again next run."
            )
        if attempts > self.max_retries or wait > budget.left:
            kind = "throttling us" if code in THROTTLE_CODES else "failing with a transient error"
            raise DestinationUnavailable(
                f"{self.label} kept {kind} ({what}, HTTP {response.status_code}: {words}); gave up after {tries}. "
                "The batch will be sent again next run."
            )
        budget.spend(wait)
        self._sleep(wait)

    def _config_error(self, response: requests.Response, error: dict, code: int | None) -> DestinationConfigError:
        """What a non-retryable Graph error means for the user, naming the setting to fix."""
        subcode = _int(error.get("error_subcode"))
        words = self._words(error)
        where = f"Graph API error {code}" + (f"/{subcode}" if subcode else "") + f", HTTP {response.status_code}"
        if code in TOKEN_CODES:
            return DestinationConfigError(
                f"{self.label} refused our access token ({where}: {words}): {self._token_hint}"
            )
        if "appsecret_proof" in words:
            return DestinationConfigError(
                f"{self.label} refused our appsecret_proof ({where}: {words}): {self._secret_hint}"
            )
        if code == 100 and subcode == UNKNOWN_OBJECT_SUBCODE:
            return DestinationConfigError(
                f"{self.label}: audience {self.audience_id} does not exist or this token cannot reach it "
                f"({where}): check option audience_id"
            )
        if code == 100 and subcode == FLAGGED_AUDIENCE_SUBCODE:
            return DestinationConfigError(
                f"{self.label}: audience {self.audience_id} is flagged (operation_status 471) and refuses membership "
                f"changes ({where}: {words}): resolve its restrictions in Audience Manager, or set option audience_id "
                "to a new audience"
            )
        if code == DEPRECATED_VERSION_CODE or (code == 2500 and self.api_version in words):
            return DestinationConfigError(
                f"{self.label} does not serve API version {self.api_version} ({where}: {words}): set option "
                f"api_version to one of {', '.join(API_VERSIONS)}"
            )
        return DestinationConfigError(f"{self.label} refused the request ({where}: {words})")

    def _words(self, error: Mapping[str, Any]) -> str:
        """Meta's own message (its user-facing one when given), without personal data."""
        text = error.get("error_user_msg") or error.get("message") or ""
        return redact(str(text))[:MAX_ERROR_CHARS]


# -- helpers ------------------------------------------------------------------------------


class _Budget:
    """Seconds a send may still spend waiting for Meta's throttling."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def spend(self, seconds: float) -> None:
        self.left -= seconds


def _unusable(change: Change, row: list[str], schema: list[str]) -> str | None:
    """Why this row must not be sent (in words without its values), or None."""
    by_key = dict(zip(schema, row, strict=True))
    key_name = _key_identifier(change)
    if key_name is not None and not by_key.get(META_IDENTIFIERS[key_name]):
        return f"its key identifier '{key_name}' does not normalise to a value Meta accepts"
    if not any(row):
        names = ", ".join(sorted(name for name in change.identifiers if name in META_IDENTIFIERS)) or "none"
        return f"no identifier normalises to a value Meta can match on (mapped: {names})"
    return None


def _key_identifier(change: Change) -> str | None:
    """Which identifier carries the record's key (the sync's ``key``), when the change shows it."""
    for name in ("email", "phone", "external_id"):
        value = change.identifiers.get(name)
        if value is not None and str(value).strip() == change.key:
            return name
    return None


def _personal_values(change: Change) -> tuple[str, ...]:
    return tuple(str(v) for v in change.identifiers.values() if v is not None and len(str(v)) >= 3)


def _named_rows(rows: list[list[str]], chunk: list[int], samples: Mapping[str, str]) -> dict[int, tuple[str, str]]:
    """The rows of ``chunk`` holding a value Meta sampled as invalid."""
    if not samples:
        return {}
    named: dict[int, tuple[str, str]] = {}
    for i in chunk:
        for value in rows[i]:
            if value and value in samples:
                named[i] = (value, str(samples[value]))
                break
    return named


def _answer(body: Mapping[str, Any]) -> _Answer:
    samples = body.get("invalid_entry_samples")
    return _Answer(
        num_received=_int(body.get("num_received")) or 0,
        num_invalid=_int(body.get("num_invalid_entries")) or 0,
        samples={str(k): str(v) for k, v in samples.items()} if isinstance(samples, dict) else {},
    )


def _regain_access_minutes(response: requests.Response) -> int:
    """The longest ``estimated_time_to_regain_access`` (minutes) in X-Business-Use-Case-Usage."""
    header = response.headers.get("X-Business-Use-Case-Usage")
    if not header:
        return 0
    try:
        usage = json.loads(header)
    except ValueError:
        return 0
    minutes = [
        _int(entry.get("estimated_time_to_regain_access")) or 0
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    return max(minutes, default=0)


def _json_text(value: Any) -> str:
    """A param value as the SDK encodes it: JSON (ASCII, non-ASCII as \\u escapes), sorted
    keys, compact separators."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


#: application/x-www-form-urlencoded for ASCII text, as urllib's quote_plus writes it, done
#: by str.translate (urllib quotes byte by byte in Python: a second per 10,000-row payload)
_FORM_ENCODE = str.maketrans(
    {chr(c): f"%{c:02X}" for c in range(128) if not (chr(c).isalnum() or chr(c) in "_.-~")} | {" ": "+"}
)


def _form_body(params: Mapping[str, str]) -> str:
    """The form-encoded body of ``params`` (ASCII values: our JSON text always is)."""
    return "&".join(f"{name}={value.translate(_FORM_ENCODE)}" for name, value in params.items())


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _timeout_from_seconds(seconds: float) -> Timeout:
    return Timeout(connect=min(DEFAULT_TIMEOUT.connect, seconds), read=seconds)
