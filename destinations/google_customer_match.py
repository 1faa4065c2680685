"""Google Customer Match through the Data Manager API (the default), with the Google Ads API
job flow as a legacy mode for allowlisted accounts (destinations/google_ads_legacy.py).

Since April 2026 Google takes new Customer Match uploads through the Data Manager API:
``POST /v1/audienceMembers:ingest`` and ``:remove`` with up to 10,000 members, each a set
of hashed user identifiers (destinations.identifiers.google_user_identifiers), answered
with a ``requestId`` whose processing is read with ``GET /v1/requestStatus:retrieve``.

**Fast fail.** Data Manager rejects the WHOLE request (HTTP 400 ``INVALID_ARGUMENT``) when
any member is invalid, and processes nothing. So that one bad record cannot hold back ten
thousand good ones, the connector

1. validates before sending: a member without a usable identifier (no valid email, no
   phone that parses to E.164, no complete name + country + postal code) is set aside as
   ``rejected`` without a request; every hash is built here, so none is malformed;
2. on a 400 that names members (``audience_members.audience_members[i]…`` in the
   ``google.rpc.BadRequest`` detail), sets exactly those aside and re-sends the rest;
3. on a 400 that names none, bisects: each half is sent on its own, halves that are
   refused are split again, down to single members.

Accepted groups are never re-sent, so no member accepted in a send goes twice. Requests
per send are bounded: with Google naming the bad members, at most k + 1 for k bad ones;
bisecting, at most 1 + 2·k·⌈log₂ n⌉ for a batch of n; and never more than
``max_isolation_requests`` (default 60) in any case — members still unresolved then are
``failed`` and tried again next run (the engine rejects a record after five failed runs).

**Consent.** Every request says ``adUserData`` and ``adPersonalization`` are
``CONSENT_GRANTED`` and that the Customer Match terms are accepted. That is true because
the connector declares ``required_consent_purpose = "ads_personalization"``: a sync to it
must set ``consent_purpose: ads_personalization`` (destinations/definitions.py refuses
the sync otherwise), and the plan only sends profiles whose
``has_ads_personalization_consent`` is true; a revocation becomes a removal.

**Removal and updates.** A removal must name the identifiers Google holds for the person,
not only the sync key: the confirmed upsert's identifiers (hashes, region, postal code —
never a raw value) are kept as its ``destination_id`` and handed back on the record's next
change. A removal sends all of them; an update also removes the identifiers the person no
longer has (an old phone), so the audience stays exactly the segment.

**Throttling and status.** Requests are paced client-side to the project quota
(``requests_per_minute``, default 300); a 429 ``RESOURCE_EXHAUSTED`` is retried with
back-off (urllib3, honouring ``Retry-After``) and then raises DestinationUnavailable. Each
accepted request is polled (first at once, then ``status_poll_seconds`` doubling, for at
most ``status_wait_seconds``): ``FAILED`` makes its members ``failed`` (retried next run);
``SUCCESS`` / ``PARTIAL_SUCCESS`` / still ``PROCESSING`` confirm them — Google has accepted
them and processes them — and ``report()`` carries the per-destination status, record and
identifier counts and the match-rate range Google returns.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from destinations.base import (
    Change,
    DestinationConfigError,
    DestinationError,
    DestinationUnavailable,
    Outcome,
    refuse_oversized_batch,
)
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
from destinations.identifiers import (
    GOOGLE_IDENTIFIERS,
    google_user_identifiers,
    hex_to_base64,
    is_sha256_hex,
)
from destinations.options import Secret, check_option, option, parse_options, secret_option
from destinations.ratelimit import REQUESTS, one_window

DATA_MANAGER_URL = "https://datamanager.googleapis.com/v1"
GOOGLE_ADS_URL = "https://googleads.googleapis.com/v26"
USER_AGENT = "composable-cdp-google-customer-match/0.1"
#: Data Manager's limit of audience members per request (and ours per send)
MAX_MEMBERS = 10_000
MAX_IDENTIFIERS_PER_MEMBER = 10
#: Data Manager's quota per Google Cloud project
REQUESTS_PER_MINUTE = 300
MAX_ISOLATION_REQUESTS = 60
MAX_POLL_INTERVAL = 10.0
MAX_TIMEOUT_SECONDS = 300.0

AccountType = Literal["GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER", "DISPLAY_VIDEO_PARTNER", "DATA_PARTNER"]

#: field violation reasons that say "not now" rather than "not this member"
TRANSIENT_REASONS = frozenset({"INTERNAL_ERROR", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})
#: enum numbers Data Manager may answer with (the official client asks for numbers)
REQUEST_STATUS_NAMES = {0: "REQUEST_STATUS_UNKNOWN", 1: "SUCCESS", 2: "PROCESSING", 3: "FAILED", 4: "PARTIAL_SUCCESS"}
MATCH_RATE_NAMES = {
    0: "MATCH_RATE_RANGE_UNKNOWN",
    1: "MATCH_RATE_RANGE_NOT_ELIGIBLE",
    2: "MATCH_RATE_RANGE_LESS_THAN_20",
    3: "MATCH_RATE_RANGE_20_TO_30",
    4: "MATCH_RATE_RANGE_31_TO_40",
    5: "MATCH_RATE_RANGE_41_TO_50",
    6: "MATCH_RATE_RANGE_51_TO_60",
    7: "MATCH_RATE_RANGE_61_TO_70",
    8: "MATCH_RATE_RANGE_71_TO_80",
    9: "MATCH_RATE_RANGE_81_TO_90",
    10: "MATCH_RATE_RANGE_91_TO_100",
}

PROCESSING_ERROR_NAMES = {
    4: "PROCESSING_ERROR_REASON_DENIED_CONSENT",
    5: "PROCESSING_ERROR_REASON_NO_CONSENT",
    13: "PROCESSING_ERROR_REASON_INTERNAL_ERROR",
}

NO_IDENTIFIER = (
    "no usable identifier for Customer Match: needs a valid email, a phone number that reads as E.164 "
    "(with the country code, or a country to read it with), or first name, last name, country and postal code"
)
_MEMBER_FIELD = re.compile(r"^(?:audience_members\.)?audience_members\[(\d+)\]")

#: options that belong to one mode only
DATA_MANAGER_ONLY = ("operating_account_id", "account_type", "login_account_id", "audience_id", "encoding")
LEGACY_ONLY = ("customer_id", "login_customer_id", "user_list_id")
ID_OPTIONS = frozenset({"operating_account_id", "login_account_id", "audience_id", *LEGACY_ONLY})


def _label(name: str) -> str:
    return f"google_customer_match destination {name!r}"


def _http_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _account_id(value: str) -> str | None:
    if value.replace("-", "").isdigit() and "-" in value:
        return f"must be digits only (write {value} as {value.replace('-', '')})"
    return None if value.isdigit() else "must be digits only"


@dataclass(frozen=True)
class GoogleCustomerMatchOptions:
    """A google_customer_match connection's options in destinations.yml."""

    access_token_env: Secret = secret_option(
        help="environment variable holding an OAuth 2 access token (scope datamanager; adwords for the legacy mode)",
        hint="export a current OAuth 2 access token for the Google account that manages the audience",
    )
    mode: Literal["data_manager", "google_ads_legacy"] = option(
        default="data_manager",
        help="data_manager (the Data Manager API) or google_ads_legacy (OfflineUserDataJob; allowlisted accounts)",
    )
    base_url: str | None = option(
        default=None, help="API base URL (default: the real Data Manager or Google Ads v26 URL)", check=_http_url
    )
    operating_account_id: str | None = option(
        default=None, help="data_manager: the account that owns the audience (digits)", check=_account_id
    )
    account_type: AccountType = option(default="GOOGLE_ADS", help="data_manager: the operating account's type")
    login_account_id: str | None = option(
        default=None, help="data_manager: the manager account whose access the token uses (digits)", check=_account_id
    )
    audience_id: str | None = option(default=None, help="data_manager: the Customer Match list (productDestinationId)")
    encoding: Literal["HEX", "BASE64"] = option(default="HEX", help="data_manager: how hashes are encoded")
    customer_id: str | None = option(
        default=None, help="google_ads_legacy: the customer that owns the user list (digits)", check=_account_id
    )
    login_customer_id: str | None = option(
        default=None, help="google_ads_legacy: the manager account (login-customer-id header)", check=_account_id
    )
    user_list_id: str | None = option(default=None, help="google_ads_legacy: the Customer Match user list id")
    batch_size: int = option(
        default=MAX_MEMBERS, minimum=1, maximum=MAX_MEMBERS, help="members per request (Data Manager's limit: 10,000)"
    )
    requests_per_minute: int = option(
        default=REQUESTS_PER_MINUTE, minimum=1, help="client-side pacing to the project's quota (Google: 300)"
    )
    status_poll_seconds: float = option(
        default=0.5, above=0, maximum=60, help="first wait between request-status polls (doubling, up to 10 s)"
    )
    status_wait_seconds: float = option(
        default=30.0, minimum=0, maximum=3600, help="how long one send waits for its requests to finish processing"
    )
    timeout_seconds: float | None = option(
        default=None, above=0, maximum=MAX_TIMEOUT_SECONDS, help="seconds to wait for an answer"
    )


@dataclass
class Member:
    """One change as a Customer Match member (identifiers in Data Manager's form, hex)."""

    position: int
    change: Change
    identifiers: list[dict[str, Any]]
    #: what was sent before (an update's previous identifiers), to remove what is gone
    previous: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Delivery:
    """What happened to the members of one ingest or remove."""

    accepted: dict[str, list[int]] = field(default_factory=dict)  # request id -> member positions
    refused: dict[int, Outcome] = field(default_factory=dict)


@dataclass
class _RequestStatus:
    status: str
    records: int = 0
    identifiers: int = 0
    match_rate: str = ""
    errors: dict[str, int] = field(default_factory=dict)


class GoogleCustomerMatchDestination:
    """Keeps a Customer Match audience equal to a segment, through the Data Manager API."""

    supported_modes: frozenset[str] = frozenset({"mirror", "upsert", "add_only"})
    identifier_names: frozenset[str] = GOOGLE_IDENTIFIERS
    key_names: frozenset[str] = frozenset({"email", "phone"})
    accepts_fields: bool = False
    options_type: type = GoogleCustomerMatchOptions
    #: the consent a sync must filter by: every request tells Google the members consented
    required_consent_purpose: str = "ads_personalization"

    def __init__(
        self,
        name: str,
        *,
        access_token: str,
        operating_account_id: str,
        audience_id: str,
        account_type: str = "GOOGLE_ADS",
        login_account_id: str | None = None,
        encoding: str = "HEX",
        base_url: str = DATA_MANAGER_URL,
        sync_name: str = "",
        batch_size: int = MAX_MEMBERS,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_after: float = 60.0,
        requests_per_minute: int | None = REQUESTS_PER_MINUTE,
        pacing_window_seconds: float = 60.0,
        status_poll_seconds: float = 0.5,
        status_wait_seconds: float = 30.0,
        max_isolation_requests: int = MAX_ISOLATION_REQUESTS,
        token_env: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``token_env`` only names where the token came from, for error messages."""
        self.name = name
        self.label = _label(name)
        self.sync_name = sync_name
        self.base_url = base_url.rstrip("/")
        self.operating_account_id = operating_account_id
        self.account_type = account_type
        self.login_account_id = login_account_id
        self.audience_id = audience_id
        self.encoding = encoding
        self.batch_size = check_option(GoogleCustomerMatchOptions, "batch_size", batch_size, label=self.label)
        self.timeout = timeout if isinstance(timeout, Timeout) else _timeout_from_seconds(float(timeout))
        self.max_retries = max_retries
        self.status_poll_seconds = status_poll_seconds
        self.status_wait_seconds = status_wait_seconds
        self.max_isolation_requests = max(1, max_isolation_requests)
        self._token_hint = f"check the access token in ${token_env}" if token_env else "check the access token"
        self._pacer = one_window(requests_per_minute, pacing_window_seconds)
        self._sleep = sleep
        self._session = build_session(
            user_agent=USER_AGENT,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
        )
        self._session.headers["Authorization"] = f"Bearer {access_token}"
        self._figures: Counter[str] = Counter()
        self._processing_errors: Counter[str] = Counter()
        self._match_rate = ""
        self._last_status = ""
        self._unfinished: set[str] = set()

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], env: Mapping[str, str], *, sync_name: str = "") -> Any:
        """The connector for a named connection: Data Manager, or the legacy Google Ads job flow
        when ``mode: google_ads_legacy``. Problems name the destination and the option."""
        label = _label(name)
        # account and list ids are digits: an unquoted YAML number means the same id
        options = {
            key: str(value) if key in ID_OPTIONS and isinstance(value, int) and not isinstance(value, bool) else value
            for key, value in options.items()
        }
        parsed = parse_options(
            GoogleCustomerMatchOptions, options, env, label=label, connector_type="google_customer_match"
        )
        timeout = DEFAULT_TIMEOUT if parsed.timeout_seconds is None else _timeout_from_seconds(parsed.timeout_seconds)
        if parsed.mode == "google_ads_legacy":
            from destinations.google_ads_legacy import GoogleAdsLegacyDestination

            _only_for_mode(options, DATA_MANAGER_ONLY, "data_manager", label)
            _require(parsed, ("customer_id", "user_list_id"), "google_ads_legacy", label)
            return GoogleAdsLegacyDestination(
                name,
                access_token=parsed.access_token_env.value,
                customer_id=parsed.customer_id,
                user_list_id=parsed.user_list_id,
                login_customer_id=parsed.login_customer_id,
                base_url=parsed.base_url or GOOGLE_ADS_URL,
                sync_name=sync_name,
                batch_size=parsed.batch_size,
                timeout=timeout,
                status_poll_seconds=parsed.status_poll_seconds,
                status_wait_seconds=parsed.status_wait_seconds,
                requests_per_minute=parsed.requests_per_minute,
                token_env=parsed.access_token_env.env_var,
            )
        _only_for_mode(options, LEGACY_ONLY, "google_ads_legacy", label)
        _require(parsed, ("operating_account_id", "audience_id"), "data_manager", label)
        return cls(
            name,
            access_token=parsed.access_token_env.value,
            operating_account_id=parsed.operating_account_id,
            audience_id=parsed.audience_id,
            account_type=parsed.account_type,
            login_account_id=parsed.login_account_id,
            encoding=parsed.encoding,
            base_url=parsed.base_url or DATA_MANAGER_URL,
            sync_name=sync_name,
            batch_size=parsed.batch_size,
            timeout=timeout,
            requests_per_minute=parsed.requests_per_minute,
            status_poll_seconds=parsed.status_poll_seconds,
            status_wait_seconds=parsed.status_wait_seconds,
            token_env=parsed.access_token_env.env_var,
        )

    # -- the interface -----------------------------------------------------------------------

    def send(self, changes: list[Change]) -> list[Outcome]:
        """Ingest the upserts, remove what they no longer carry, remove the removals; one
        outcome per change, in order."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        if not changes:
            return []
        outcomes, upserts, removals = members_of(changes)
        self._figures["members_set_aside"] += sum(1 for o in outcomes.values() if o.status == "rejected")

        pending: dict[str, list[int]] = {}
        ingested = self._deliver("ingest", upserts)
        outcomes.update(ingested.refused)
        pending.update(ingested.accepted)
        accepted = {p for positions in ingested.accepted.values() for p in positions}
        stale = stale_members([m for m in upserts if m.position in accepted])
        if stale:
            dropped = self._deliver("remove", stale)
            for position, refused in dropped.refused.items():
                change = changes[position]
                outcomes[position] = Outcome(
                    change.change_id, refused.status, f"removing its old identifiers: {refused.error}"
                )
            pending.update({f"{rid}#stale": positions for rid, positions in dropped.accepted.items()})
        removed = self._deliver("remove", removals)
        outcomes.update(removed.refused)
        pending.update(removed.accepted)

        statuses = self._await([request_id.split("#")[0] for request_id in pending])
        sent_ids = {m.position: sent_record(m.identifiers) for m in upserts}
        for request_id, positions in pending.items():
            status = statuses.get(request_id.split("#")[0])
            failed = status is not None and status.status == "FAILED"
            for position in positions:
                change = changes[position]
                if failed:
                    # an update whose old identifiers could not be removed is sent again too
                    outcomes[position] = Outcome(change.change_id, "failed", _processing_failure(status))
                elif position not in outcomes:
                    outcomes[position] = Outcome(change.change_id, "confirmed", destination_id=sent_ids.get(position))
        return [
            outcomes.get(i) or Outcome(c.change_id, "failed", "no answer for this member")
            for i, c in enumerate(changes)
        ]

    def report(self) -> dict[str, int | str]:
        """Data Manager's own figures for this connector's requests (re-reading any request
        still processing once, without waiting)."""
        if self._unfinished:
            # the figures so far still stand if this read fails; the run's outcome does not depend on it
            with contextlib.suppress(DestinationError):
                self._poll_once(sorted(self._unfinished), {})
        report: dict[str, int | str] = {key: value for key, value in sorted(self._figures.items()) if value}
        if self._last_status:
            report["request_status"] = self._last_status
        if self._match_rate:
            report["match_rate_range"] = self._match_rate
        if self._processing_errors:
            report["processing_errors"] = ", ".join(f"{k}: {v}" for k, v in sorted(self._processing_errors.items()))
        if self._unfinished:
            report["requests_processing"] = len(self._unfinished)
        return report

    def close(self) -> None:
        self._session.close()

    # -- delivering, with the invalid members isolated ----------------------------------------

    def _deliver(self, kind: str, members: Sequence[Member]) -> _Delivery:
        """Send ``members`` in one request; when Data Manager refuses it for some members,
        set those aside (named, or found by bisection) and send the others again."""
        delivery = _Delivery()
        if not members:
            return delivery
        # breadth first: under a request budget both halves of a split get their chance
        groups: deque[list[Member]] = deque([list(members)])
        budget = self.max_isolation_requests
        first = True
        while groups:
            group = groups.popleft()
            if budget == 0:
                for member in group:
                    delivery.refused[member.position] = Outcome(
                        member.change.change_id,
                        "failed",
                        f"Data Manager refused requests holding this member, and finding the invalid ones "
                        f"took more than {self.max_isolation_requests} requests; it is sent again next run",
                    )
                continue
            budget -= 1
            if not first:
                self._figures["isolation_requests"] += 1
            first = False
            response = self._post(kind, group)
            if 200 <= response.status_code < 300:
                request_id = _request_id(response)
                if not request_id:
                    raise DestinationUnavailable(
                        f"{self.label}: Data Manager accepted a request but returned no requestId; "
                        "the batch will be sent again next run"
                    )
                self._figures[f"{kind}_requests"] += 1
                self._figures["members_ingested" if kind == "ingest" else "members_removed"] += len(group)
                delivery.accepted[request_id] = [member.position for member in group]
                continue
            named, unnamed = self._refusal(response, kind, group)
            for index, (reason, description) in named.items():
                member = group[index]
                status = "failed" if reason in TRANSIENT_REASONS else "rejected"
                self._figures["members_rejected_by_google" if status == "rejected" else "members_failed"] += 1
                text = redact(description or "invalid audience member", *raw_values(member.change))
                delivery.refused[member.position] = Outcome(
                    member.change.change_id,
                    status,
                    f"{text} ({reason or 'INVALID_ARGUMENT'}): Data Manager refused the whole request for this "
                    "member; the other members were sent without it"[:MAX_ERROR_CHARS],
                )
            rest = [member for index, member in enumerate(group) if index not in named]
            if named:
                if rest:
                    groups.append(rest)
            elif len(rest) == 1:
                reason, description = unnamed
                self._figures["members_rejected_by_google"] += 1
                text = redact(description or "invalid audience member", *raw_values(rest[0].change))
                delivery.refused[rest[0].position] = Outcome(
                    rest[0].change.change_id,
                    "failed" if reason in TRANSIENT_REASONS else "rejected",
                    f"{text} ({reason or 'INVALID_ARGUMENT'}): found by splitting the refused request"[
                        :MAX_ERROR_CHARS
                    ],
                )
            else:
                middle = len(rest) // 2
                groups += [rest[:middle], rest[middle:]]
        return delivery

    def _refusal(
        self, response: requests.Response, kind: str, group: Sequence[Member]
    ) -> tuple[dict[int, tuple[str, str]], tuple[str, str]]:
        """For a refused request: the members it names (index -> (reason, description)) and,
        when it blames members without naming them, the first (reason, description).
        Anything that is not about members raises the destination error it means."""
        status = response.status_code
        every_value = tuple(v for m in group for v in raw_values(m.change))
        if status == 403:
            title = error_title(response, *every_value)
            login = f" through login account {self.login_account_id}" if self.login_account_id else ""
            raise DestinationConfigError(
                f"{self.label}: Data Manager refused access to operating account {self.operating_account_id}{login} "
                f"(HTTP 403: {title or 'PERMISSION_DENIED'}): check operating_account_id, account_type and "
                f"login_account_id, and that the token's Google account can manage that account ({self._token_hint})"
            )
        check_response(response, destination=self.label, credentials_hint=self._token_hint, redact_values=every_value)
        title = error_title(response, *every_value)
        if status == 404:
            raise DestinationConfigError(
                f"{self.label}: Data Manager has no audience {self.audience_id!r} under operating account "
                f"{self.operating_account_id} (HTTP 404: {title or 'NOT_FOUND'}): check audience_id"
            )
        violations = _violations(response)
        named: dict[int, tuple[str, str]] = {}
        unnamed: tuple[str, str] | None = None
        for path, reason, description in violations:
            match = _MEMBER_FIELD.match(path)
            if match and int(match.group(1)) < len(group):
                named.setdefault(int(match.group(1)), (reason, description))
            elif path == "audience_members" and reason not in ("TOO_MANY_AUDIENCE_MEMBERS", "REQUIRED_FIELD_MISSING"):
                unnamed = unnamed or (reason, description)
            else:
                raise self._request_error(status, path, reason, description or title)
        if status == 400 and (named or unnamed):
            return named, unnamed or ("", "")
        raise DestinationConfigError(
            f"{self.label}: Data Manager refused the {kind} request (HTTP {status}"
            f"{': ' + title if title else ''}); nothing was applied"
        )

    def _request_error(self, status: int, path: str, reason: str, description: str) -> DestinationConfigError:
        """A request-level refusal, named by the setting that causes it."""
        if "product_destination_id" in path or reason in ("INVALID_USER_LIST_ID", "INVALID_USER_LIST_TYPE"):
            fix = "check audience_id (a Customer Match list of the operating account)"
        elif "operating_account" in path:
            fix = "check operating_account_id and account_type"
        elif "login_account" in path:
            fix = "check login_account_id"
        elif reason == "TERMS_AND_CONDITIONS_NOT_SIGNED":
            fix = "accept the Customer Match terms of service in the Google Ads account"
        elif reason == "TOO_MANY_AUDIENCE_MEMBERS":
            fix = f"set batch_size (now {self.batch_size}) to at most {MAX_MEMBERS:,}"
        else:
            fix = "nothing was applied"
        where = f" at {path}" if path else ""
        return DestinationConfigError(
            f"{self.label}: Data Manager refused the request (HTTP {status}: {reason or 'INVALID_ARGUMENT'}{where}: "
            f"{description}): {fix}"[: MAX_ERROR_CHARS * 2]
        )

    def _post(self, kind: str, members: Sequence[Member]) -> requests.Response:
        body: dict[str, Any] = {
            "destinations": [self._destination()],
            "audienceMembers": [
                {"userData": {"userIdentifiers": [self._encoded(entry) for entry in member.identifiers]}}
                for member in members
            ],
            "encoding": self.encoding,
        }
        if kind == "ingest":
            body["consent"] = {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}
            body["termsOfService"] = {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return self._request("POST", f"/audienceMembers:{kind}", data=data)

    def _destination(self) -> dict[str, Any]:
        destination: dict[str, Any] = {
            "operatingAccount": {"accountType": self.account_type, "accountId": self.operating_account_id},
            "productDestinationId": self.audience_id,
        }
        if self.login_account_id:
            destination["loginAccount"] = {"accountType": self.account_type, "accountId": self.login_account_id}
        return destination

    def _encoded(self, entry: dict[str, Any]) -> dict[str, Any]:
        """An identifier (kept in hex) in the connection's encoding."""
        if self.encoding == "HEX":
            return entry
        if "address" in entry:
            address = entry["address"]
            return {
                "address": {
                    **address,
                    "givenName": hex_to_base64(address["givenName"]),
                    "familyName": hex_to_base64(address["familyName"]),
                }
            }
        ((kind, digest),) = entry.items()
        return {kind: hex_to_base64(digest)}

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Content-Type": "application/json"} if "data" in kwargs else {}
        with self._pacer.slot(REQUESTS):
            try:
                return self._session.request(
                    method, self.base_url + path, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs
                )
            except requests.RequestException as exc:
                raise error_from_exception(exc, destination=self.label, max_attempts=self.max_retries + 1) from None

    # -- request status -----------------------------------------------------------------------

    def _await(self, request_ids: Sequence[str]) -> dict[str, _RequestStatus]:
        """Poll each request until it is no longer PROCESSING or ``status_wait_seconds`` pass."""
        done: dict[str, _RequestStatus] = {}
        pending = list(dict.fromkeys(request_ids))
        deadline = time.monotonic() + self.status_wait_seconds
        delay = self.status_poll_seconds
        while pending:
            pending = self._poll_once(pending, done)
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_INTERVAL)
        self._unfinished.update(pending)
        return done

    def _poll_once(self, request_ids: Sequence[str], done: dict[str, _RequestStatus]) -> list[str]:
        """Read each request's status once; the ids still processing (or unreadable)."""
        still = []
        for request_id in request_ids:
            status = self._retrieve(request_id)
            if status is None or status.status == "PROCESSING":
                still.append(request_id)
                if status is None:
                    self._figures["status_reads_failed"] += 1
                continue
            done[request_id] = status
            self._unfinished.discard(request_id)
            self._record(status)
        return still

    def _retrieve(self, request_id: str) -> _RequestStatus | None:
        """One ``requestStatus:retrieve``; None when the status cannot be read right now (the
        request was accepted all the same)."""
        try:
            response = self._request("GET", "/requestStatus:retrieve", params={"requestId": request_id})
        except DestinationUnavailable:
            return None
        if response.status_code in (401, 403):
            check_response(response, destination=self.label, credentials_hint=self._token_hint)
        if not 200 <= response.status_code < 300:
            return None
        try:
            per_destination = response.json().get("requestStatusPerDestination") or []
        except (ValueError, AttributeError):
            return None
        return _summary(per_destination)

    def _record(self, status: _RequestStatus) -> None:
        name = {"SUCCESS": "requests_succeeded", "PARTIAL_SUCCESS": "requests_partial_success"}.get(
            status.status, "requests_failed"
        )
        self._figures[name] += 1
        self._last_status = status.status
        if status.match_rate and status.match_rate != "MATCH_RATE_RANGE_UNKNOWN":
            self._match_rate = status.match_rate
        self._figures["records_processed"] += status.records
        self._figures["user_identifiers_processed"] += status.identifiers
        self._processing_errors.update(status.errors)


# -- helpers ---------------------------------------------------------------------------------


def _only_for_mode(options: Mapping[str, Any], names: Sequence[str], mode: str, label: str) -> None:
    for name in names:
        if options.get(name) not in (None, ""):
            raise DestinationConfigError(f"{label}: option {name} applies only to mode {mode}")


def _require(parsed: GoogleCustomerMatchOptions, names: Sequence[str], mode: str, label: str) -> None:
    for name in names:
        if getattr(parsed, name) is None:
            raise DestinationConfigError(f"{label}: option {name} is required in mode {mode}")


def member_problem(identifiers: list[dict[str, Any]]) -> str | None:
    """Why Data Manager would refuse this member (and with it the whole request), or None."""
    if not identifiers:
        return NO_IDENTIFIER
    if len(identifiers) > MAX_IDENTIFIERS_PER_MEMBER:
        return f"more than {MAX_IDENTIFIERS_PER_MEMBER} identifiers"
    for entry in identifiers:
        hashes = (
            [entry["address"]["givenName"], entry["address"]["familyName"]] if "address" in entry else [*entry.values()]
        )
        if not all(is_sha256_hex(value) for value in hashes):
            return "an identifier is not a SHA-256 hash"
    return None


def members_of(changes: Sequence[Change]) -> tuple[dict[int, Outcome], list[Member], list[Member]]:
    """The batch as Customer Match members: (outcomes already decided by position, upserts,
    removals). An upsert without a usable identifier is rejected here, before any request (it
    would make Data Manager refuse the whole request); a removal of someone Google could not
    hold is confirmed (there is nothing to remove). A removal names what its confirmed upsert
    sent (``destination_id``), else what its key gives."""
    outcomes: dict[int, Outcome] = {}
    upserts: list[Member] = []
    removals: list[Member] = []
    for position, change in enumerate(changes):
        if change.op == "upsert":
            identifiers = google_user_identifiers(change.identifiers)
            problem = member_problem(identifiers)
            if problem:
                outcomes[position] = Outcome(change.change_id, "rejected", problem)
            else:
                upserts.append(Member(position, change, identifiers, sent_identifiers(change.destination_id)))
            continue
        identifiers = sent_identifiers(change.destination_id) or google_user_identifiers(change.identifiers)
        if identifiers:
            removals.append(Member(position, change, identifiers))
        else:
            outcomes[position] = Outcome(change.change_id, "confirmed")
    return outcomes, upserts, removals


def stale_members(members: Sequence[Member]) -> list[Member]:
    """For updates: the identifiers each person had before and no longer has, as removals
    (leaving out any that someone in this batch still carries)."""
    current = {json.dumps(entry, sort_keys=True) for member in members for entry in member.identifiers}
    stale = []
    for member in members:
        gone = [entry for entry in member.previous if json.dumps(entry, sort_keys=True) not in current]
        if gone:
            stale.append(Member(member.position, member.change, gone))
    return stale


def sent_identifiers(destination_id: str | None) -> list[dict[str, Any]]:
    """The identifiers a confirmed upsert sent (its ``destination_id``), or [] if unknown."""
    if not destination_id:
        return []
    try:
        identifiers = json.loads(destination_id)
    except ValueError:
        return []
    return identifiers if isinstance(identifiers, list) and member_problem(identifiers) is None else []


def sent_record(identifiers: list[dict[str, Any]]) -> str:
    """What Google holds for the person: their identifiers as sent (hashes; region and postal
    code in the clear, as Customer Match takes them)."""
    return json.dumps(identifiers, separators=(",", ":"), sort_keys=True)


def raw_values(change: Change) -> tuple[str, ...]:
    return tuple(str(v) for v in change.identifiers.values() if v is not None and len(str(v)) >= 3)


def _request_id(response: requests.Response) -> str | None:
    try:
        value = response.json().get("requestId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def _violations(response: requests.Response) -> list[tuple[str, str, str]]:
    """(field, reason, description) of every field violation in a Google error body."""
    try:
        details = response.json()["error"].get("details") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    found = []
    for detail in details:
        if not isinstance(detail, dict):
            continue
        for violation in detail.get("fieldViolations") or []:
            if isinstance(violation, dict):
                found.append(
                    (
                        str(violation.get("field") or ""),
                        str(violation.get("reason") or ""),
                        str(violation.get("description") or ""),
                    )
                )
    return found


def _name(value: Any, names: Mapping[int, str]) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return names.get(value, str(value))
    return str(value or "")


def _summary(per_destination: list[Any]) -> _RequestStatus:
    """One request's status over its destinations (this connector names one)."""
    statuses, records, identifiers, rate, errors = [], 0, 0, "", Counter()
    for entry in per_destination:
        if not isinstance(entry, dict):
            continue
        statuses.append(_name(entry.get("requestStatus"), REQUEST_STATUS_NAMES))
        counts = (
            (entry.get("audienceMembersIngestionStatus") or {}).get("userDataIngestionStatus")
            or (entry.get("audienceMembersRemovalStatus") or {}).get("userDataRemovalStatus")
            or {}
        )
        records += _int(counts.get("recordCount"))
        identifiers += _int(counts.get("userIdentifierCount"))
        rate = _name(counts.get("uploadMatchRateRange"), MATCH_RATE_NAMES) or rate
        for count in (entry.get("errorInfo") or {}).get("errorCounts") or []:
            errors[_name(count.get("reason"), PROCESSING_ERROR_NAMES)] += _int(count.get("recordCount"))
    if not statuses or "PROCESSING" in statuses:
        overall = "PROCESSING"
    elif all(status == "FAILED" for status in statuses):
        overall = "FAILED"
    elif all(status == "SUCCESS" for status in statuses):
        overall = "SUCCESS"
    else:
        overall = "PARTIAL_SUCCESS"
    return _RequestStatus(overall, records, identifiers, rate, dict(errors))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _processing_failure(status: _RequestStatus) -> str:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(status.errors.items())) or "no reason given"
    return f"Data Manager accepted the request but processing FAILED ({reasons}); sent again next run"


def _timeout_from_seconds(seconds: float) -> Timeout:
    return Timeout(connect=min(DEFAULT_TIMEOUT.connect, seconds), read=seconds)
