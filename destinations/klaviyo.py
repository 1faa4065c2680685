"""Klaviyo (API revision 2026-10-15): a sync's audience kept as the members of one list.

One ``send`` of up to 10,000 changes walks Klaviyo's multi-call flow:

1. **import** — upserts go out as bulk profile import jobs (``POST /profile-bulk-import-jobs``,
   at most 10,000 profiles and 5 MB a job, 100 KB a profile: a batch that would pass 5 MB
   is split into several jobs), each polled until ``complete`` (bounded by
   ``poll_timeout_seconds``); when the job counts failures, its ``import-errors`` are read
   and mapped back to their changes by the error's source pointer (the profile's index in
   the job), or by the identifiers in its original payload;
2. **resolve** — list membership takes Klaviyo profile ids, not emails. A change carries the
   id this connector named when it was first confirmed (``Change.destination_id``, kept by
   the engine); the others are looked up with ``GET /profiles?filter=any(email,[…])``, and
   one the search does not find yet is resolved with ``POST /profiles`` (201 with its id, or
   409 ``duplicate_profile`` naming the existing one);
3. **list add** — ``POST /lists/{id}/relationships/profiles``, 1,000 ids a call. A record is
   confirmed only when it is imported *and* in the list, and its profile id is returned as
   ``Outcome.destination_id``;
4. **clear** — an import job cannot clear a field (Klaviyo ignores nulls there), so a mapped
   field that is null on a profile this sync wrote before (the change carries its id) is
   cleared with ``PATCH /profiles/{id}``: the attribute set to null, a custom property
   unset. A profile the sync has not written keeps what others put there: a sign-up form's
   first name is not erased because the warehouse lacks one.

Removals leave the list (``DELETE /lists/{id}/relationships/profiles``, 1,000 ids a call)
and touch neither the profile nor its consent. Without a cached id the list itself is
asked which of the keys are members; a key Klaviyo does not know is not in the list, which
is what a removal wants: confirmed.

Every step is idempotent (an import is an upsert, list membership a set), so a crash or an
outage at any step is repaired by sending the same batch again next run. The import job
deliberately does not carry the list relationship: a job that lands late (a timed-out
request the platform still processed) would otherwise re-add someone removed since; list
membership changes only through the synchronous, confirmed list calls.

Rate limits: Klaviyo counts requests per account in a 1-second burst and a 1-minute steady
window, by tier. Each call's tier comes from Klaviyo's API reference (``ENDPOINTS``); the
connector paces itself per tier (destinations/ratelimit.py), tightens when the
``RateLimit-*`` headers say the account has less left than it thinks, and honours
``Retry-After`` on a 429 (through the shared session's bounded retry).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

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
    Timeout,
    attempts_made,
    build_session,
    check_response,
    error_from_exception,
    error_title,
    redact,
)
from destinations.options import Secret, check_option, option, parse_options, secret_option
from destinations.ratelimit import RateLimiter, Window

# -- what Klaviyo publishes -----------------------------------------------------------------

#: the API revision every request names (pinned: a new revision may change shapes)
REVISION = "2026-10-15"
DEFAULT_BASE_URL = "https://a.klaviyo.com/api"
JSON_API = "application/vnd.api+json"
USER_AGENT = "composable-cdp-klaviyo/0.1"

#: Bulk Import Profiles: at most 10,000 profiles and 5 MB a job, 100 KB a profile. Klaviyo
#: writes "5MB" and "100KB"; the decimal reading (the stricter one) is used on both sides.
MAX_PROFILES_PER_JOB = 10_000
MAX_JOB_BYTES = 5_000_000
MAX_PROFILE_BYTES = 100_000
#: list relationship calls take at most 1,000 profile ids
MAX_IDS_PER_LIST_CALL = 1_000
#: page[size] maximum, and the values sent in one any() filter
MAX_PAGE_SIZE = 100


class RateTier(NamedTuple):
    """Requests per burst window (1 s) and per steady window (60 s)."""

    burst: int
    steady: int


#: Klaviyo's rate limit tiers ("Rate limits, status codes, and errors"). The per-endpoint
#: reference gives L as 750/m; the guide's 700/m is the stricter reading and is used.
RATE_TIERS: dict[str, RateTier] = {
    "XS": RateTier(1, 15),
    "S": RateTier(3, 60),
    "M": RateTier(10, 150),
    "L": RateTier(75, 700),
    "XL": RateTier(350, 3500),
}
BURST_SECONDS = 1.0
STEADY_SECONDS = 60.0


class Endpoint(NamedTuple):
    method: str
    #: path after the base URL; ``{id}`` is the one path parameter
    path: str
    #: rate limit tier (x-klaviyo-ratelimit in Klaviyo's OpenAPI description)
    tier: str


#: Every endpoint the connector (and the sandbox emulating it) speaks, with its tier.
ENDPOINTS: dict[str, Endpoint] = {
    "bulk_import_profiles": Endpoint("POST", "/profile-bulk-import-jobs", "M"),
    "get_bulk_import_profiles_job": Endpoint("GET", "/profile-bulk-import-jobs/{id}", "M"),
    "get_errors_for_bulk_import_profiles_job": Endpoint("GET", "/profile-bulk-import-jobs/{id}/import-errors", "M"),
    "get_profile_ids_for_bulk_import_profiles_job": Endpoint(
        "GET", "/profile-bulk-import-jobs/{id}/relationships/profiles", "M"
    ),
    "get_profiles": Endpoint("GET", "/profiles", "L"),
    "get_profile": Endpoint("GET", "/profiles/{id}", "L"),
    "create_profile": Endpoint("POST", "/profiles", "L"),
    "update_profile": Endpoint("PATCH", "/profiles/{id}", "L"),
    "get_list": Endpoint("GET", "/lists/{id}", "L"),
    "get_profiles_for_list": Endpoint("GET", "/lists/{id}/profiles", "L"),
    "get_profile_ids_for_list": Endpoint("GET", "/lists/{id}/relationships/profiles", "L"),
    "add_profiles_to_list": Endpoint("POST", "/lists/{id}/relationships/profiles", "M"),
    "remove_profiles_from_list": Endpoint("DELETE", "/lists/{id}/relationships/profiles", "M"),
    "request_profile_deletion": Endpoint("POST", "/data-privacy-deletion-jobs", "S"),
}

#: sync identifier name -> profile attribute
IDENTIFIER_ATTRIBUTES: dict[str, str] = {"email": "email", "phone": "phone_number", "external_id": "external_id"}
#: mapped fields with these names become the profile's own attributes; the rest are custom properties
NAME_ATTRIBUTES: frozenset[str] = frozenset({"first_name", "last_name"})
#: import error codes that say the record is wrong as it is (rejected); any other code is
#: taken as Klaviyo's trouble, retried next run (failed)
PERMANENT_IMPORT_ERRORS: frozenset[str] = frozenset(
    {"invalid", "invalid_email", "invalid_phone_number", "invalid_external_id", "missing_identifier", "too_large"}
)

DEFAULT_POLL_INTERVAL = 0.5
MAX_POLL_INTERVAL = 10.0
DEFAULT_POLL_TIMEOUT = 900.0
MAX_TIMEOUT_SECONDS = 300.0

_INDEX_IN_JOB = re.compile(r"/profiles/data/(\d+)(?:/|$)")
_TIER_SPEC = re.compile(r"\s*(XS|S|M|L|XL)\s*=\s*(\d+)\s*/\s*(\d+)\s*")


# -- options ----------------------------------------------------------------------------------


def _http_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _list_id(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9]{1,64}", value):
        return "must be a Klaviyo list id (letters and digits, as in the list's URL)"
    return None


def parse_rate_tiers(text: str) -> dict[str, RateTier]:
    """``"M=5/75, L=40/350"`` (per second / per minute) as tiers; ValueError if malformed."""
    tiers: dict[str, RateTier] = {}
    for part in text.split(","):
        match = _TIER_SPEC.fullmatch(part)
        if not match or int(match.group(2)) < 1 or int(match.group(3)) < 1:
            raise ValueError(part.strip())
        tiers[match.group(1)] = RateTier(int(match.group(2)), int(match.group(3)))
    return tiers


def _rate_tiers(text: str) -> str | None:
    try:
        tiers = parse_rate_tiers(text)
    except ValueError:
        return "must list tiers as TIER=per_second/per_minute, comma-separated (e.g. 'M=5/75,L=40/350')"
    higher = [
        name
        for name, tier in tiers.items()
        if tier.burst > RATE_TIERS[name].burst or tier.steady > RATE_TIERS[name].steady
    ]
    if higher:
        return f"may only lower Klaviyo's published limits; {', '.join(higher)} asks for more"
    return None


@dataclass(frozen=True)
class KlaviyoOptions:
    """A Klaviyo connection's options in destinations.yml (parsed by destinations.options)."""

    list_id: str = option(help="id of the Klaviyo list that holds the sync's audience", check=_list_id)
    api_key_env: Secret = secret_option(
        help="environment variable holding a private API key (pk_…) with profiles:write and lists:write",
        hint="export it with a Klaviyo private API key",
    )
    base_url: str = option(
        default=DEFAULT_BASE_URL, help="Klaviyo's API base URL (only a sandbox changes it)", check=_http_url
    )
    batch_size: int = option(
        default=MAX_PROFILES_PER_JOB,
        minimum=1,
        maximum=MAX_PROFILES_PER_JOB,
        help="changes per send: profiles per import job, at most Klaviyo's 10,000",
    )
    rate_tiers: str | None = option(
        default=None,
        check=_rate_tiers,
        help="lower limits than Klaviyo's tiers, e.g. 'M=5/75' (per second/per minute), for a shared account",
    )
    poll_interval_seconds: float = option(
        default=DEFAULT_POLL_INTERVAL, above=0, maximum=60, help="first wait before polling an import job"
    )
    poll_timeout_seconds: float = option(
        default=DEFAULT_POLL_TIMEOUT, above=0, maximum=3600, help="how long an import job may take before giving up"
    )
    timeout_seconds: float | None = option(
        default=None, above=0, maximum=MAX_TIMEOUT_SECONDS, help="seconds to wait for one answer"
    )


# -- what one send is made of ----------------------------------------------------------------


@dataclass
class _Record:
    """One change on its way through the flow, with its Klaviyo profile id once known."""

    change: Change
    #: the import profile object, serialised (upserts)
    profile: bytes = b""
    #: field names whose value is null (cleared on a profile the sync wrote before)
    nulls: tuple[str, ...] = ()
    profile_id: str | None = None


@dataclass
class _Figures:
    """What the platform said about this connector's work so far (report())."""

    import_jobs: int = 0
    import_total_count: int = 0
    import_completed_count: int = 0
    import_failed_count: int = 0
    list_adds: int = 0
    list_removes: int = 0
    deletion_jobs: int = 0
    fields_cleared: int = 0
    requests: int = 0


def _label(name: str) -> str:
    return f"klaviyo destination {name!r}"


def _timeout_from_seconds(seconds: float) -> Timeout:
    return Timeout(connect=min(DEFAULT_TIMEOUT.connect, seconds), read=seconds)


def _json_value(value: Any) -> Any:
    """Warehouse types JSON lacks: dates as ISO 8601, decimals as numbers."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"a field value of type {type(value).__name__} cannot be sent to Klaviyo")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_value).encode()


def _pii(change: Change) -> tuple[str, ...]:
    """The change's identifier values, removed from anything Klaviyo says about it."""
    return tuple(str(v) for v in change.identifiers.values() if v is not None and len(str(v)) >= 3)


def _lookup(change: Change) -> tuple[str, str] | None:
    """(profile attribute, value) that finds the change's profile: email, else phone, else
    external id — in that order, as every identifier addresses one profile at Klaviyo."""
    for name, attribute in IDENTIFIER_ATTRIBUTES.items():
        value = change.identifiers.get(name)
        if value is not None and str(value).strip():
            return attribute, str(value).strip()
    return None


def _matchable(attribute: str, value: str) -> str:
    """Emails compare case-insensitively at Klaviyo; other identifiers as they are."""
    return value.lower() if attribute == "email" else value


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def _any_filter(attribute: str, values: Iterable[str]) -> str:
    """Klaviyo's filter syntax: ``any(email,["a@x.com","b@x.com"])``."""
    return f"any({attribute},{json.dumps(list(values), ensure_ascii=False, separators=(',', ':'))})"


_JOB_PREFIX = b'{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":['
_JOB_SUFFIX = b"]}}}}"


def job_body(profiles: Sequence[bytes]) -> bytes:
    """A Bulk Import Profiles request body from already-serialised profile objects."""
    return _JOB_PREFIX + b",".join(profiles) + _JOB_SUFFIX


def job_size(profile_sizes: Iterable[int]) -> int:
    """The byte size :func:`job_body` would have for profiles of these sizes."""
    sizes = list(profile_sizes)
    return len(_JOB_PREFIX) + sum(sizes) + max(0, len(sizes) - 1) + len(_JOB_SUFFIX)


def split_into_jobs(sizes: Sequence[int]) -> list[range]:
    """Consecutive index ranges of profiles, each within MAX_PROFILES_PER_JOB and MAX_JOB_BYTES."""
    jobs: list[range] = []
    start, total = 0, len(_JOB_PREFIX) + len(_JOB_SUFFIX)
    for index, size in enumerate(sizes):
        extra = size + (1 if index > start else 0)
        if index > start and (total + extra > MAX_JOB_BYTES or index - start >= MAX_PROFILES_PER_JOB):
            jobs.append(range(start, index))
            start, total, extra = index, len(_JOB_PREFIX) + len(_JOB_SUFFIX), size
        total += extra
    if start < len(sizes):
        jobs.append(range(start, len(sizes)))
    return jobs


# -- the connector ------------------------------------------------------------------------------


class KlaviyoDestination:
    """Keeps a sync's audience as the members of one Klaviyo list, with the mapped fields on
    each member's profile."""

    supported_modes: frozenset[str] = frozenset({"mirror", "upsert", "add_only"})
    identifier_names: frozenset[str] = frozenset(IDENTIFIER_ATTRIBUTES)
    key_names: frozenset[str] = identifier_names
    #: Klaviyo keeps email, phone number and external id unique per account: a profile imported
    #: with a phone number another profile holds updates that profile (its email included)
    unique_identifiers: frozenset[str] = identifier_names
    accepts_fields: bool = True
    options_type: type = KlaviyoOptions

    def __init__(
        self,
        name: str,
        *,
        api_key: str,
        list_id: str,
        base_url: str = DEFAULT_BASE_URL,
        sync_name: str = "",
        batch_size: int = MAX_PROFILES_PER_JOB,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_after: float = 60.0,
        rate_tiers: Mapping[str, RateTier] | None = None,
        window_seconds: tuple[float, float] = (BURST_SECONDS, STEADY_SECONDS),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        poll_timeout: float = DEFAULT_POLL_TIMEOUT,
        api_key_env: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``rate_tiers`` lowers tiers (tests also shorten ``window_seconds``, the burst and
        steady windows); ``api_key_env`` only names where the key came from, for errors."""
        self.name = name
        self.label = _label(name)
        self.list_id = check_option(KlaviyoOptions, "list_id", list_id, label=self.label)
        self.base_url = base_url.rstrip("/")
        self.sync_name = sync_name
        self.batch_size = check_option(KlaviyoOptions, "batch_size", batch_size, label=self.label)
        self.timeout = timeout if isinstance(timeout, Timeout) else _timeout_from_seconds(float(timeout))
        self.max_retries = max_retries
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self._sleep = sleep
        self._key_hint = (
            f"check the private API key in ${api_key_env} (it needs the profiles:write and lists:write scopes)"
            if api_key_env
            else "check the private API key (it needs the profiles:write and lists:write scopes)"
        )
        tiers = {**RATE_TIERS, **dict(rate_tiers or {})}
        burst_seconds, steady_seconds = window_seconds
        self._limiter = RateLimiter(
            {
                tier: (Window(limits.burst, burst_seconds), Window(limits.steady, steady_seconds))
                for tier, limits in tiers.items()
            },
            sleep=sleep,
        )
        self._session = build_session(
            user_agent=USER_AGENT,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
        )
        self._session.headers.update(
            {"Authorization": f"Klaviyo-API-Key {api_key}", "revision": REVISION, "Accept": JSON_API}
        )
        self._figures = _Figures()

    @classmethod
    def from_config(
        cls, name: str, options: Mapping[str, Any], env: Mapping[str, str], *, sync_name: str = ""
    ) -> KlaviyoDestination:
        """Build from a named connection's options (:class:`KlaviyoOptions`); the API key is
        read from ``env``. Problems raise DestinationConfigError naming the destination and
        the option, never the key."""
        parsed = parse_options(KlaviyoOptions, options, env, label=_label(name), connector_type="klaviyo")
        timeout = DEFAULT_TIMEOUT if parsed.timeout_seconds is None else _timeout_from_seconds(parsed.timeout_seconds)
        return cls(
            name,
            api_key=parsed.api_key_env.value,
            list_id=parsed.list_id,
            base_url=parsed.base_url,
            sync_name=sync_name,
            batch_size=parsed.batch_size,
            timeout=timeout,
            rate_tiers=parse_rate_tiers(parsed.rate_tiers) if parsed.rate_tiers else None,
            poll_interval=parsed.poll_interval_seconds,
            poll_timeout=parsed.poll_timeout_seconds,
            api_key_env=parsed.api_key_env.env_var,
        )

    # -- the interface ---------------------------------------------------------------------

    def send(self, changes: list[Change]) -> list[Outcome]:
        """Removals leave the list; upserts are imported, resolved to profile ids and added
        to it. One outcome per change, in order."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        if not changes:
            return []
        outcomes: dict[str, Outcome] = {}
        removals = [change for change in changes if change.op == "remove"]
        upserts = [change for change in changes if change.op == "upsert"]
        if removals:
            self._remove(removals, outcomes)
        if upserts:
            self._upsert(upserts, outcomes)
        return [outcomes[change.change_id] for change in changes]

    def forget(self, changes: list[Change]) -> list[Outcome]:
        """A privacy request: one data privacy deletion job per record (``POST
        /data-privacy-deletion-jobs``, 202), by the Klaviyo profile id when it is known, else by
        email or phone. Klaviyo then deletes every profile matching it, wherever it is listed."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        return [self._request_deletion(change) for change in changes]

    def _request_deletion(self, change: Change) -> Outcome:
        lookups: list[tuple[str, str]] = []
        if change.destination_id:
            lookups.append(("id", change.destination_id))
        lookup = _lookup(change)
        if lookup is not None and lookup[0] in ("email", "phone_number"):
            lookups.append(lookup)
        if not lookups:
            return Outcome(change.change_id, "rejected", "the record has no email, phone or Klaviyo id to delete by")
        response = None
        for attribute, value in lookups:
            profile: dict[str, Any] = {"type": "profile"}
            if attribute == "id":
                profile["id"] = value
            else:
                profile["attributes"] = {attribute: value}
            body = _dumps({"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": profile}}}})
            response = self._call("request_profile_deletion", body=body, redact_values=_pii(change))
            if response.status_code == 202:
                self._figures.deletion_jobs += 1
                return Outcome(change.change_id, "confirmed", answer=f"HTTP 202 deletion job by {attribute}")
            if response.status_code != 404:  # an id Klaviyo no longer knows: try the identifier
                break
        assert response is not None
        return Outcome(
            change.change_id,
            "rejected",
            f"Klaviyo refused the deletion job (HTTP {response.status_code}"
            f"{_colon(error_title(response, *_pii(change)))})",
        )

    def report(self) -> dict[str, int | float]:
        """Klaviyo's own counts from the import jobs, and the list calls made."""
        figures = self._figures
        report: dict[str, int | float] = {
            "import_jobs": figures.import_jobs,
            "import_total_count": figures.import_total_count,
            "import_completed_count": figures.import_completed_count,
            "import_failed_count": figures.import_failed_count,
            "list_adds": figures.list_adds,
            "list_removes": figures.list_removes,
            "deletion_jobs": figures.deletion_jobs,
            "fields_cleared": figures.fields_cleared,
            "requests": figures.requests,
        }
        waited = sum(self._limiter.waited.values())
        if waited:
            report["rate_limit_wait_seconds"] = round(waited, 1)
        return report

    def close(self) -> None:
        self._session.close()

    # -- upserts ---------------------------------------------------------------------------

    def _upsert(self, changes: Sequence[Change], outcomes: dict[str, Outcome]) -> None:
        ready: list[_Record] = []
        for change in changes:
            upsert, problem = self._prepare(change)
            if upsert is None:
                outcomes[change.change_id] = Outcome(change.change_id, "rejected", problem)
            else:
                ready.append(upsert)
        imported: list[_Record] = []
        for indexes in split_into_jobs([len(upsert.profile) for upsert in ready]):
            job = [ready[i] for i in indexes]
            imported += self._import(job, outcomes)
        self._resolve_imported(imported, outcomes)
        in_list = self._add_to_list([u for u in imported if u.change.change_id not in outcomes], outcomes)
        self._clear_nulls(in_list, outcomes)
        for upsert in in_list:
            if upsert.change.change_id not in outcomes:
                outcomes[upsert.change.change_id] = Outcome(
                    upsert.change.change_id, "confirmed", destination_id=upsert.profile_id
                )

    def _prepare(self, change: Change) -> tuple[_Record | None, str]:
        """The change as an import profile object, or why Klaviyo could not take it."""
        attributes: dict[str, Any] = {
            attribute: str(change.identifiers[name]).strip()
            for name, attribute in IDENTIFIER_ATTRIBUTES.items()
            if change.identifiers.get(name) is not None and str(change.identifiers[name]).strip()
        }
        if not attributes:
            return None, "the record has no email, phone number or external id to identify a Klaviyo profile"
        properties: dict[str, Any] = {}
        nulls: list[str] = []
        for name, value in change.fields.items():
            if value is None:
                nulls.append(name)
            elif name in NAME_ATTRIBUTES:
                attributes[name] = value
            else:
                properties[name] = value
        if properties:
            attributes["properties"] = properties
        try:
            profile = _dumps({"type": "profile", "attributes": attributes})
        except (TypeError, ValueError) as error:
            return None, f"a field cannot be sent to Klaviyo: {error}"
        if len(profile) > MAX_PROFILE_BYTES:
            return None, (
                f"the profile is {len(profile):,} bytes, above Klaviyo's limit of {MAX_PROFILE_BYTES:,} bytes per profile"
            )
        return _Record(change, profile, tuple(nulls), change.destination_id), ""

    def _import(self, job: list[_Record], outcomes: dict[str, Outcome]) -> list[_Record]:
        """One import job, polled to completion; the upserts it imported (the others get
        their outcome here)."""
        every_value = tuple(v for upsert in job for v in _pii(upsert.change))
        response = self._call(
            "bulk_import_profiles", body=job_body([u.profile for u in job]), redact_values=every_value
        )
        if response.status_code != 202:
            reason = f"Klaviyo refused the import job (HTTP {response.status_code}{_colon(error_title(response, *every_value))})"
            for upsert in job:
                outcomes[upsert.change.change_id] = Outcome(upsert.change.change_id, "rejected", reason)
            return []
        job_id = _data(response).get("id")
        if not isinstance(job_id, str) or not job_id:
            raise DestinationUnavailable(f"{self.label}: Klaviyo accepted an import job without naming it (no data.id)")
        attributes = self._wait_for_job(job_id)
        figures = self._figures
        figures.import_jobs += 1
        figures.import_total_count += _count(attributes, "total_count")
        figures.import_completed_count += _count(attributes, "completed_count")
        figures.import_failed_count += _count(attributes, "failed_count")
        if attributes.get("status") == "cancelled":
            reason = f"Klaviyo cancelled import job {job_id}; the record is sent again next run"
            for upsert in job:
                outcomes[upsert.change.change_id] = Outcome(upsert.change.change_id, "failed", reason)
            return []
        errored: set[int] = set()
        if _count(attributes, "failed_count"):
            for index, error in self._import_errors(job_id, job):
                if index in errored:
                    continue
                errored.add(index)
                change = job[index].change
                outcomes[change.change_id] = _import_error_outcome(change, error)
        return [upsert for index, upsert in enumerate(job) if index not in errored]

    def _wait_for_job(self, job_id: str) -> Mapping[str, Any]:
        """Poll the job until it is complete or cancelled, waiting longer between polls;
        DestinationUnavailable past ``poll_timeout``."""
        started = time.monotonic()
        interval = self.poll_interval
        while True:
            self._sleep(interval)
            response = self._call("get_bulk_import_profiles_job", job_id)
            if response.status_code != 200:
                raise DestinationUnavailable(
                    f"{self.label}: Klaviyo could not report import job {job_id} "
                    f"(HTTP {response.status_code}{_colon(error_title(response))}). The batch will be sent again next run."
                )
            attributes = _data(response).get("attributes") or {}
            status = attributes.get("status")
            if status in ("complete", "cancelled"):
                return attributes
            waited = time.monotonic() - started
            if waited + interval > self.poll_timeout:
                raise DestinationUnavailable(
                    f"{self.label}: import job {job_id} is still {status or 'unfinished'} after {waited:.0f}s "
                    f"(poll_timeout_seconds={self.poll_timeout:g}). The batch will be sent again next run."
                )
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)

    def _import_errors(self, job_id: str, job: Sequence[_Record]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        """The job's import errors, each with the index of the profile it is about."""
        by_identifier: dict[tuple[str, str], int] = {}
        for index, upsert in enumerate(job):
            for name, attribute in IDENTIFIER_ATTRIBUTES.items():
                value = upsert.change.identifiers.get(name)
                if value is not None:
                    by_identifier.setdefault((attribute, _matchable(attribute, str(value).strip())), index)
        every_value = tuple(v for upsert in job for v in _pii(upsert.change))
        for error in self._pages(
            "get_errors_for_bulk_import_profiles_job", job_id, params={}, redact_values=every_value
        ):
            attributes = error.get("attributes") or {}
            index = _index_from_pointer(attributes, len(job))
            if index is None:
                index = _index_from_payload(attributes.get("original_payload"), by_identifier)
            if index is not None:
                yield index, attributes

    def _resolve_imported(self, imported: Sequence[_Record], outcomes: dict[str, Outcome]) -> None:
        """Give every imported upsert its profile id: the cached one, else found by identifier,
        else created (or named by the 409 duplicate) with POST /profiles."""
        unresolved = [upsert for upsert in imported if upsert.profile_id is None]
        found = self._find_profiles([upsert.change for upsert in unresolved])
        for upsert in unresolved:
            upsert.profile_id = found.get(upsert.change.change_id)
            if upsert.profile_id is None:
                upsert.profile_id = self._create_or_name(upsert.change, outcomes)

    def _create_or_name(self, change: Change, outcomes: dict[str, Outcome]) -> str | None:
        """``POST /profiles`` with the change's identifiers: 201 names a new profile, 409
        ``duplicate_profile`` the existing one (the search index may lag an import)."""
        attributes = {
            attribute: str(change.identifiers[name]).strip()
            for name, attribute in IDENTIFIER_ATTRIBUTES.items()
            if change.identifiers.get(name) is not None
        }
        body = _dumps({"data": {"type": "profile", "attributes": attributes}})
        response = self._call("create_profile", body=body, redact_values=_pii(change))
        if response.status_code == 201:
            profile_id = _data(response).get("id")
        elif response.status_code == 409:
            profile_id = _duplicate_profile_id(response)
        else:
            profile_id = None
        if isinstance(profile_id, str) and profile_id:
            return profile_id
        reason = (
            f"imported, but Klaviyo did not name its profile (HTTP {response.status_code}"
            f"{_colon(error_title(response, *_pii(change)))}); the record is sent again next run"
        )
        outcomes[change.change_id] = Outcome(change.change_id, "failed", reason)
        return None

    def _add_to_list(self, upserts: Sequence[_Record], outcomes: dict[str, Outcome]) -> list[_Record]:
        """Put every upsert's profile in the list; the upserts that are now members."""
        members: list[_Record] = []
        for chunk in _chunks(upserts, MAX_IDS_PER_LIST_CALL):
            members += self._list_call("add_profiles_to_list", list(chunk), outcomes)
        self._figures.list_adds += len(members)
        return members

    def _clear_nulls(self, upserts: Sequence[_Record], outcomes: dict[str, Outcome]) -> None:
        """PATCH away the fields that are now null on profiles this sync wrote before."""
        for upsert in upserts:
            if not upsert.nulls or upsert.change.destination_id is None:
                continue
            nulls = [name for name in upsert.nulls if name in NAME_ATTRIBUTES]
            unset = [name for name in upsert.nulls if name not in NAME_ATTRIBUTES]
            data: dict[str, Any] = {
                "type": "profile",
                "id": upsert.profile_id,
                "attributes": dict.fromkeys(nulls),
            }
            if unset:
                data["meta"] = {"patch_properties": {"unset": unset}}
            change = upsert.change
            response = self._call(
                "update_profile", upsert.profile_id, body=_dumps({"data": data}), redact_values=_pii(change)
            )
            if response.status_code == 200:
                self._figures.fields_cleared += len(upsert.nulls)
            else:
                reason = (
                    f"Klaviyo did not clear the fields that are now empty (HTTP {response.status_code}"
                    f"{_colon(error_title(response, *_pii(change)))}); the record is sent again next run"
                )
                outcomes[change.change_id] = Outcome(change.change_id, "failed", reason)

    # -- removals ----------------------------------------------------------------------------

    def _remove(self, changes: Sequence[Change], outcomes: dict[str, Outcome]) -> None:
        """Take each record's profile out of the list; consent and the profile are untouched."""
        unresolved = [change for change in changes if change.destination_id is None]
        members = self._find_members(unresolved)
        leaving: list[_Record] = []
        for change in changes:
            profile_id = change.destination_id or members.get(change.change_id)
            if profile_id is None:
                # Klaviyo does not know this key, or its profile is not in the list
                outcomes[change.change_id] = Outcome(change.change_id, "confirmed")
            else:
                leaving.append(_Record(change, profile_id=profile_id))
        removed = 0
        for chunk in _chunks(leaving, MAX_IDS_PER_LIST_CALL):
            for gone in self._list_call("remove_profiles_from_list", list(chunk), outcomes):
                outcomes[gone.change.change_id] = Outcome(gone.change.change_id, "confirmed")
                removed += 1
        self._figures.list_removes += removed

    # -- list calls and look-ups ---------------------------------------------------------------

    def _list_call(self, endpoint: str, chunk: list[_Record], outcomes: dict[str, Outcome]) -> list[_Record]:
        """One add or remove call for ``chunk`` (≤ 1,000 profiles); the records it settled.

        A 400 means an id Klaviyo no longer knows (a profile deleted since its id was
        cached): the chunk's ids are looked up again by identifier and the call is made
        once more. A record whose profile is gone is not in the list (a removal is then
        done; an add fails and is retried next run)."""
        for attempt in (1, 2):
            ids = list(dict.fromkeys(upsert.profile_id for upsert in chunk))
            body = _dumps({"data": [{"type": "profile", "id": profile_id} for profile_id in ids]})
            response = self._call(endpoint, self.list_id, body=body)
            if response.status_code == 204:
                return chunk
            if response.status_code == 404:
                raise self._unknown_list(response)
            if response.status_code != 400 or attempt == 2:
                break
            chunk = self._refresh_ids(chunk, endpoint, outcomes)
            if not chunk:
                return []
        what = "add the profile to" if endpoint == "add_profiles_to_list" else "remove the profile from"
        reason = (
            f"Klaviyo did not {what} list {self.list_id} (HTTP {response.status_code}{_colon(error_title(response))}); "
            "the record is sent again next run"
        )
        for upsert in chunk:
            outcomes[upsert.change.change_id] = Outcome(upsert.change.change_id, "failed", reason)
        return []

    def _refresh_ids(self, chunk: list[_Record], endpoint: str, outcomes: dict[str, Outcome]) -> list[_Record]:
        """The chunk with every profile id looked up again by identifier."""
        found = self._find_profiles([upsert.change for upsert in chunk])
        kept: list[_Record] = []
        for upsert in chunk:
            upsert.profile_id = found.get(upsert.change.change_id)
            change = upsert.change
            if upsert.profile_id is not None:
                kept.append(upsert)
            elif endpoint == "remove_profiles_from_list":
                outcomes[change.change_id] = Outcome(change.change_id, "confirmed")
            else:
                reason = "Klaviyo no longer knows the record's profile; the record is sent again next run"
                outcomes[change.change_id] = Outcome(change.change_id, "failed", reason)
        return kept

    def _find_profiles(self, changes: Sequence[Change]) -> dict[str, str]:
        """change id -> Klaviyo profile id, for the changes whose profile exists."""
        return self._search("get_profiles", None, changes, frozenset(IDENTIFIER_ATTRIBUTES.values()))

    def _find_members(self, changes: Sequence[Change]) -> dict[str, str]:
        """change id -> profile id, for the changes whose profile is in the list. The list
        filters on email and phone number; an external id is found among all profiles (a
        profile outside the list then leaves it harmlessly)."""
        by_list, elsewhere = [], []
        for change in changes:
            (by_list if (_lookup(change) or ("", ""))[0] in ("email", "phone_number") else elsewhere).append(change)
        found = self._search("get_profiles_for_list", self.list_id, by_list, frozenset({"email", "phone_number"}))
        found.update(self._find_profiles(elsewhere))
        return found

    def _search(
        self, endpoint: str, path_id: str | None, changes: Sequence[Change], attributes: frozenset[str]
    ) -> dict[str, str]:
        """Look changes up 100 identifier values a call with ``filter=any(attribute,[…])``."""
        wanted: dict[str, dict[str, list[Change]]] = {}
        for change in changes:
            lookup = _lookup(change)
            if lookup is not None and lookup[0] in attributes:
                attribute, value = lookup
                wanted.setdefault(attribute, {}).setdefault(_matchable(attribute, value), []).append(change)
        found: dict[str, str] = {}
        for attribute, by_value in wanted.items():
            values = list(by_value)
            for chunk in _chunks(values, MAX_PAGE_SIZE):
                params = {
                    "filter": _any_filter(attribute, chunk),
                    "fields[profile]": attribute,
                    "page[size]": str(MAX_PAGE_SIZE),
                }
                for profile in self._pages(endpoint, path_id, params=params, redact_values=tuple(chunk)):
                    value = (profile.get("attributes") or {}).get(attribute)
                    profile_id = profile.get("id")
                    if isinstance(value, str) and isinstance(profile_id, str):
                        for change in by_value.get(_matchable(attribute, value), []):
                            found.setdefault(change.change_id, profile_id)
        return found

    def _pages(
        self, endpoint: str, path_id: str | None, *, params: dict[str, str], redact_values: tuple[str, ...]
    ) -> Iterator[Mapping[str, Any]]:
        """Every resource of a paginated GET, following ``links.next`` by its cursor (never
        to another host)."""
        params = {"page[size]": str(MAX_PAGE_SIZE), **params}
        while True:
            response = self._call(endpoint, path_id, params=params, redact_values=redact_values)
            if response.status_code == 404 and endpoint.endswith("_for_list"):
                raise self._unknown_list(response)
            if response.status_code != 200:
                raise DestinationUnavailable(
                    f"{self.label}: Klaviyo refused a look-up (HTTP {response.status_code}"
                    f"{_colon(error_title(response, *redact_values))}). The batch will be sent again next run."
                )
            body = response.json()
            yield from body.get("data") or []
            cursor = _next_cursor(body)
            if cursor is None:
                return
            params = {**params, "page[cursor]": cursor}

    # -- HTTP ----------------------------------------------------------------------------------

    def _call(
        self,
        endpoint: str,
        path_id: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        redact_values: tuple[str, ...] = (),
    ) -> requests.Response:
        """One paced request to a named endpoint. Auth refusals, redirects and a final
        429/5xx raise (check_response); every other answer is the caller's to read."""
        method, path, tier = ENDPOINTS[endpoint]
        if path_id is not None:
            path = path.replace("{id}", quote(path_id, safe=""))
        headers = {"Content-Type": JSON_API} if body is not None else None
        ticket = self._limiter.acquire(tier)
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self._figures.requests += self.max_retries + 1
            raise error_from_exception(exc, destination=self.label, max_attempts=self.max_retries + 1) from None
        self._limiter.settle(ticket)
        attempts = attempts_made(response)
        self._figures.requests += attempts
        if attempts > 1:
            self._limiter.record(tier, attempts - 1)
        self._limiter.observe(
            tier,
            limit=_int_header(response, "RateLimit-Limit"),
            remaining=_int_header(response, "RateLimit-Remaining"),
            reset_seconds=_int_header(response, "RateLimit-Reset"),
        )
        check_response(
            response,
            destination=self.label,
            credentials_hint=self._key_hint,
            refused="API key",
            redact_values=redact_values,
        )
        return response

    def _unknown_list(self, response: requests.Response) -> DestinationConfigError:
        return DestinationConfigError(
            f"{self.label}: Klaviyo has no list {self.list_id!r} (HTTP 404{_colon(error_title(response))}): "
            "check option list_id (the id in the list's URL in Klaviyo)"
        )


# -- reading Klaviyo's answers ------------------------------------------------------------------


def _colon(title: str) -> str:
    return f": {title}" if title else ""


def _data(response: requests.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _count(attributes: Mapping[str, Any], name: str) -> int:
    value = attributes.get(name)
    return value if isinstance(value, int) else 0


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    links = body.get("links") if isinstance(body, dict) else None
    following = links.get("next") if isinstance(links, dict) else None
    if not isinstance(following, str) or not following:
        return None
    cursor = parse_qs(urlsplit(following).query).get("page[cursor]")
    return cursor[0] if cursor else None


def _duplicate_profile_id(response: requests.Response) -> str | None:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return None
    for error in errors:
        if isinstance(error, dict) and error.get("code") == "duplicate_profile":
            profile_id = (error.get("meta") or {}).get("duplicate_profile_id")
            if isinstance(profile_id, str):
                return profile_id
    return None


def _index_from_pointer(attributes: Mapping[str, Any], size: int) -> int | None:
    pointer = (attributes.get("source") or {}).get("pointer")
    match = _INDEX_IN_JOB.search(pointer) if isinstance(pointer, str) else None
    if match and int(match.group(1)) < size:
        return int(match.group(1))
    return None


def _index_from_payload(payload: Any, by_identifier: Mapping[tuple[str, str], int]) -> int | None:
    """The profile an error's ``original_payload`` is about, by any identifier it carries."""
    if not isinstance(payload, dict):
        return None
    attributes = payload.get("attributes") if isinstance(payload.get("attributes"), dict) else payload
    for attribute in IDENTIFIER_ATTRIBUTES.values():
        value = attributes.get(attribute)
        if isinstance(value, str):
            index = by_identifier.get((attribute, _matchable(attribute, value.strip())))
            if index is not None:
                return index
    return None


def _import_error_outcome(change: Change, error: Mapping[str, Any]) -> Outcome:
    """A record's import error: a validation code rejects it; anything else is Klaviyo's
    trouble and the record is sent again next run."""
    code = error.get("code") if isinstance(error.get("code"), str) else ""
    text = error.get("detail") or error.get("title") or f"import error {code or 'without a code'}"
    message = redact(str(text), *_pii(change))[:MAX_ERROR_CHARS]
    return Outcome(change.change_id, "rejected" if code in PERMANENT_IMPORT_ERRORS else "failed", message)
