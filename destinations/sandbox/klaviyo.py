"""A Klaviyo emulator (API revision 2026-10-15) for tests, benchmarks and the demo.

It answers under ``/klaviyo/api/…`` what ``https://a.klaviyo.com/api/…`` answers, in
Klaviyo's JSON:API shapes, and enforces what a connector must get right:

- auth: ``Authorization: Klaviyo-API-Key <key>``; anything else is a 401 with Klaviyo's
  error body (``errors[].id/code/title/detail`` strings, ``status`` a number);
- the ``revision`` header (400 when missing or not a published revision) and the JSON:API
  content type on bodies (415);
- limits, exactly at N: 10,000 profiles and 5,000,000 bytes per import job, 100,000 bytes
  per profile, 1,000 profile ids per list call, 100 per page and per ``any()`` filter —
  one more is a 400;
- rate limits per account and tier (Klaviyo's API reference gives each endpoint's tier),
  a burst and a steady window counted per request: over either, a 429 with ``Retry-After``
  in whole seconds; every other answer carries ``RateLimit-Limit/Remaining/Reset``. Each
  429 is counted in :attr:`KlaviyoEmulator.rate_violations`, so a test can assert that a
  connector never exceeded a limit. Window lengths are configurable (tests shrink them);
- bulk import jobs that are ``queued`` when created, ``processing`` at the first poll and
  ``complete`` only at poll ``polls_to_complete`` (≥ 2); jobs complete in creation order
  (an older job still queued completes first). Per-record failures (an invalid email or
  phone, no identifier, or an injected ``reject`` fault) appear only in the job's
  ``failed_count`` and its ``import-errors``, in JSON:API shape with a source pointer;
- an import never clears a field with a null (only ``PATCH /profiles/{id}`` does), and
  never adds to a list unless the job names one;
- list membership as a set with ``joined_group_at``; a removal leaves the profile and its
  consent alone; an unknown list or job is a 404; an unknown profile id in a list call a
  400; ``POST /profiles`` for an existing identifier a 409 ``duplicate_profile`` naming it;
- ``search_lag_seconds``: a profile an import created is found by ``GET /profiles`` only
  after this long (Klaviyo's search index lags its writes).

Faults come from the shared :class:`~destinations.sandbox.faults.FaultPlan`: ``status`` and
``throttle`` answer with Klaviyo's own error body (a throttle is a 429 with Retry-After);
``reject`` on an import job fails the listed records inside the completed job (code
``invalid`` when not retryable, ``internal_error`` when it is).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from destinations.klaviyo import (
    ENDPOINTS,
    JSON_API,
    MAX_IDS_PER_LIST_CALL,
    MAX_JOB_BYTES,
    MAX_PAGE_SIZE,
    MAX_PROFILE_BYTES,
    MAX_PROFILES_PER_JOB,
    RATE_TIERS,
    REVISION,
)
from destinations.sandbox.faults import Fault, RateWindow
from destinations.sandbox.server import Emulator, Reply, Request

SANDBOX_API_KEY = "pk_sandbox_3f9a1c7e5b2d48e6a0c4f1b9d7e2a5c8"
DEFAULT_LIST_ID = "SbxL1s"
DEFAULT_LIST_NAME = "CDP sandbox audience"
#: Klaviyo's published revisions (quarterly GA releases) up to the one the connector pins
PUBLISHED_REVISIONS = frozenset(
    revision
    for revision in (
        [f"{year}-{month}-15" for year in (2024, 2025, 2026) for month in ("01", "04", "07", "10")]
        + ["2024-02-15", "2024-05-15", "2024-06-15"]
    )
    if revision <= REVISION
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_FILTER = re.compile(r"\s*(any|equals)\(\s*([a-z_]+)\s*,\s*(.*)\)\s*", re.DOTALL)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PROFILE_ATTRIBUTES = frozenset(
    {
        "email",
        "phone_number",
        "external_id",
        "_kx",
        "first_name",
        "last_name",
        "organization",
        "locale",
        "title",
        "image",
        "location",
        "properties",
    }
)
_IDENTIFIERS = ("email", "phone_number", "external_id")
_IMPORT_ERROR_TITLES = {"invalid": "Invalid input.", "conflict": "Conflict.", "internal_error": "Internal error."}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _routes() -> list[tuple[str, re.Pattern[str], str, str]]:
    """(method, path pattern under /api, endpoint name, tier) for every endpoint served."""
    routes = []
    for name, endpoint in ENDPOINTS.items():
        pattern = re.escape(endpoint.path).replace(re.escape("{id}"), "(?P<id>[^/]+)")
        routes.append((endpoint.method, re.compile(f"/api{pattern}/?"), name, endpoint.tier))
    return routes


_ROUTES = _routes()


@dataclass
class _Job:
    id: str
    created_at: datetime
    profiles: list[dict[str, Any]]
    list_id: str | None
    reject: Fault | None
    polls: int = 0
    status: str = "queued"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    completed_count: int = 0
    failed_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)
    total_count: int = 0


class KlaviyoEmulator(Emulator):
    """Klaviyo's profiles, lists and bulk import jobs, in memory, under ``/klaviyo``."""

    prefix = "klaviyo"

    def __init__(
        self,
        *,
        api_key: str = SANDBOX_API_KEY,
        lists: Mapping[str, str] | None = None,
        polls_to_complete: int = 2,
        tiers: Mapping[str, tuple[int, int]] | None = None,
        burst_seconds: float = 1.0,
        steady_seconds: float = 60.0,
        search_lag_seconds: float = 0.0,
        seed: str = "sandbox",
    ) -> None:
        """``lists`` maps list id -> name (default: one list, :data:`DEFAULT_LIST_ID`);
        ``tiers`` overrides (burst, steady) limits per tier; ``burst_seconds`` and
        ``steady_seconds`` are the window lengths (1 s and 60 s at Klaviyo)."""
        super().__init__()
        if polls_to_complete < 2:
            raise ValueError("polls_to_complete must be at least 2: a job is never complete at the first poll")
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.search_lag_seconds = search_lag_seconds
        self._seed = seed
        self._ids = itertools.count(1)
        limits = {name: (tier.burst, tier.steady) for name, tier in RATE_TIERS.items()} | dict(tiers or {})
        self.windows: dict[str, tuple[RateWindow, RateWindow]] = {
            name: (RateWindow(burst, burst_seconds), RateWindow(steady, steady_seconds))
            for name, (burst, steady) in limits.items()
        }
        #: requests answered 429 because a rate window was full, per tier
        self.violations: dict[str, int] = dict.fromkeys(limits, 0)
        self._rate_headers: dict[int, dict[str, str]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self._index: dict[str, dict[str, str]] = {name: {} for name in _IDENTIFIERS}
        self._keys: dict[str, dict[str, str]] = {}
        self._created: dict[str, float] = {}
        self.lists: dict[str, dict[str, Any]] = {
            list_id: {"name": name, "created": _now(), "members": {}}
            for list_id, name in (lists or {DEFAULT_LIST_ID: DEFAULT_LIST_NAME}).items()
        }
        self.jobs: dict[str, _Job] = {}
        #: profiles a data privacy deletion job deleted
        self.deleted_profiles = 0

    # -- what tests read -------------------------------------------------------------------

    @property
    def rate_violations(self) -> int:
        """Requests refused because a rate window was full (a pacing connector makes none)."""
        with self.lock:
            return sum(self.violations.values())

    def members(self, list_id: str = DEFAULT_LIST_ID) -> dict[str, dict[str, Any]]:
        """The list's members: profile id -> the profile (with ``joined_group_at``)."""
        with self.lock:
            return {
                profile_id: {**self.profiles[profile_id], "joined_group_at": joined}
                for profile_id, joined in self.lists[list_id]["members"].items()
            }

    def audience_sizes(self) -> dict[str, int]:
        """Members per list, named "<id> (<name>)"."""
        with self.lock:
            return {f"{list_id} ({entry['name']})": len(entry["members"]) for list_id, entry in self.lists.items()}

    def snapshot(self) -> dict[str, Any]:
        """Profiles, lists with their members, and each job's counts."""
        with self.lock:
            return {
                "profiles": {pid: json.loads(json.dumps(p, default=str)) for pid, p in self.profiles.items()},
                "lists": {
                    list_id: {"name": entry["name"], "members": {pid: _iso(at) for pid, at in entry["members"].items()}}
                    for list_id, entry in self.lists.items()
                },
                "jobs": {
                    job.id: {
                        "status": job.status,
                        "total_count": job.total_count,
                        "completed_count": job.completed_count,
                        "failed_count": job.failed_count,
                    }
                    for job in self.jobs.values()
                },
            }

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": f"{base_url}/api",
            "sdk_test_host": base_url,
            "api_key": self.api_key,
            "authorization": f"Klaviyo-API-Key {self.api_key}",
            "revision": REVISION,
            "lists": [{"id": list_id, "name": entry["name"]} for list_id, entry in self.lists.items()],
        }

    def seed_profile(self, *, consent: str = "SUBSCRIBED", **attributes: Any) -> str:
        """A profile that exists before any sync (e.g. someone who subscribed on a form)."""
        with self.lock:
            profile_id = self._upsert_profile(attributes, created_by_import=False)
            self.profiles[profile_id]["subscriptions"]["email"]["marketing"]["consent"] = consent
            return profile_id

    # -- the server's hooks --------------------------------------------------------------------

    def admit(self, request: Request) -> Reply | None:
        """Auth first (an unknown caller has no account to count against), then the tier's
        burst and steady windows."""
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            if not request.headers.get("authorization"):
                return _error(
                    401, "not_authenticated", "Authentication credentials were not provided.", "Missing API key."
                )
            return _error(
                401,
                "authentication_failed",
                "Incorrect authentication credentials.",
                "Incorrect authentication credentials.",
            )
        route = _route(request)
        if route is None:
            return None
        tier = route[2]
        burst, steady = self.windows[tier]
        allowed, wait = burst.admit()
        if allowed:
            allowed, wait = steady.admit()
        if not allowed:
            with self.lock:
                self.violations[tier] += 1
            seconds = max(1, math.ceil(wait))
            return _error(
                429,
                "throttled",
                "Request was throttled.",
                f"Request was throttled. Expected available in {seconds} second{'s' if seconds > 1 else ''}.",
                headers={"Retry-After": str(seconds)},
            )
        reset = math.ceil(steady.reset())
        with self.lock:
            self._rate_headers[request.number] = {
                "RateLimit-Limit": str(steady.limit),
                "RateLimit-Remaining": str(steady.remaining()),
                "RateLimit-Reset": str(reset),
            }
        return None

    def release(self, request: Request) -> None:
        with self.lock:
            self._rate_headers.pop(request.number, None)

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        """Klaviyo's own body for an injected status, and its 429 with Retry-After."""
        if fault.kind == "throttle":
            seconds = fault.retry_after_seconds
            return _error(
                429,
                "throttled",
                "Request was throttled.",
                f"Request was throttled. Expected available in {seconds} seconds.",
                headers={"Retry-After": str(seconds)},
            )
        headers = {"Retry-After": str(fault.retry_after_seconds)} if fault.retry_after is not None else {}
        codes = {500: "error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}
        return _error(fault.code, codes.get(fault.code, "error"), fault.title, fault.title, headers=headers)

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        reply = self._handle(request, fault)
        with self.lock:
            reply.headers.update(self._rate_headers.get(request.number, {}))
        return reply

    # -- routing ----------------------------------------------------------------------------

    def _handle(self, request: Request, fault: Fault | None) -> Reply:
        revision = request.headers.get("revision")
        if not revision:
            return _error(400, "invalid", "Invalid input.", "The revision header is required.", parameter="revision")
        if revision not in PUBLISHED_REVISIONS:
            return _error(400, "invalid", "Invalid input.", f"Unknown revision {revision!r}.", parameter="revision")
        if request.method in ("POST", "PATCH", "DELETE") and request.content_type != JSON_API:
            return _error(415, "unsupported_media_type", "Unsupported media type.", f"Content-Type must be {JSON_API}.")
        route = _route(request)
        if route is None:
            return _error(404, "not_found", "Not found.", "No such endpoint.")
        name, path_id, _ = route
        base = f"http://{request.headers.get('host', '127.0.0.1')}/{self.prefix}/api"
        with self.lock:
            return getattr(self, f"_{name}")(request, path_id, base, fault)

    # -- bulk import jobs ---------------------------------------------------------------------

    def _bulk_import_profiles(self, request: Request, _: str | None, base: str, fault: Fault | None) -> Reply:
        if len(request.body) > MAX_JOB_BYTES:
            return _error(
                400,
                "invalid",
                "Invalid input.",
                f"The payload is {len(request.body)} bytes; at most {MAX_JOB_BYTES} are allowed.",
                pointer="/data",
            )
        body, problem = _json_body(request)
        if problem:
            return problem
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile-bulk-import-job":
            return _invalid("data.type must be 'profile-bulk-import-job'.", "/data/type")
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        if not isinstance(profiles, list) or not profiles:
            return _invalid(
                "data.attributes.profiles.data must be a non-empty array.", "/data/attributes/profiles/data"
            )
        if len(profiles) > MAX_PROFILES_PER_JOB:
            return _invalid(
                f"{len(profiles)} profiles; at most {MAX_PROFILES_PER_JOB} are allowed per job.",
                "/data/attributes/profiles/data",
            )
        for index, profile in enumerate(profiles):
            pointer = f"/data/attributes/profiles/data/{index}"
            if not isinstance(profile, dict) or profile.get("type") != "profile":
                return _invalid("Each profile must have type 'profile'.", f"{pointer}/type")
            attributes = profile.get("attributes")
            if not isinstance(attributes, dict):
                return _invalid("Each profile needs attributes.", f"{pointer}/attributes")
            unknown = sorted(set(attributes) - _PROFILE_ATTRIBUTES)
            if unknown:
                return _invalid(
                    f"'{unknown[0]}' is not a valid profile attribute.", f"{pointer}/attributes/{unknown[0]}"
                )
            size = len(json.dumps(profile, separators=(",", ":"), ensure_ascii=False).encode())
            if size > MAX_PROFILE_BYTES:
                return _invalid(f"The profile is {size} bytes; at most {MAX_PROFILE_BYTES} are allowed.", pointer)
        list_id = None
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data")
        if lists:
            list_id = lists[0].get("id") if isinstance(lists[0], dict) else None
            if list_id not in self.lists:
                return _error(404, "not_found", "Not found.", f"A list with id {list_id} does not exist.")
        job = _Job(
            id=self._new_id(),
            created_at=_now(),
            profiles=profiles,
            list_id=list_id,
            reject=fault,
            total_count=len(profiles),
        )
        self.jobs[job.id] = job
        return Reply.json(
            202,
            {"data": self._job_resource(job, base), "links": {"self": f"{base}/profile-bulk-import-jobs"}},
            content_type=JSON_API,
        )

    def _get_bulk_import_profiles_job(self, request: Request, job_id: str, base: str, _: Fault | None) -> Reply:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "not_found", "Not found.", f"No import job with id {job_id}.")
        job.polls += 1
        if job.status == "queued" and job.polls < self.polls_to_complete:
            job.status = "processing"
            job.started_at = _now()
        if job.polls >= self.polls_to_complete and job.status != "complete":
            for earlier in list(self.jobs.values()):  # Klaviyo works through an account's jobs in order
                if earlier.status != "complete":
                    self._complete(earlier)
                if earlier is job:
                    break
        return Reply.json(
            200,
            {"data": self._job_resource(job, base), "links": {"self": f"{base}/profile-bulk-import-jobs/{job.id}"}},
            content_type=JSON_API,
        )

    def _get_errors_for_bulk_import_profiles_job(
        self, request: Request, job_id: str, base: str, _: Fault | None
    ) -> Reply:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "not_found", "Not found.", f"No import job with id {job_id}.")
        return self._page(request, job.errors, f"{base}/profile-bulk-import-jobs/{job_id}/import-errors")

    def _get_profile_ids_for_bulk_import_profiles_job(
        self, request: Request, job_id: str, base: str, _: Fault | None
    ) -> Reply:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "not_found", "Not found.", f"No import job with id {job_id}.")
        ids = [{"type": "profile", "id": pid} for pid in job.profile_ids]
        return self._page(request, ids, f"{base}/profile-bulk-import-jobs/{job_id}/relationships/profiles")

    def _complete(self, job: _Job) -> None:
        """Apply the job's profiles: each valid one upserted (and added to the job's list),
        each invalid or rejected one an import error."""
        job.started_at = job.started_at or _now()
        for index, profile in enumerate(job.profiles):
            attributes = profile["attributes"]
            problem = _record_problem(attributes) or self._conflict(attributes)
            if problem is None and job.reject is not None and job.reject.kind == "reject":
                if any(job.reject.rejects(str(attributes[k])) for k in _IDENTIFIERS if attributes.get(k)):
                    code = "internal_error" if job.reject.retryable else "invalid"
                    problem = (code, job.reject.error, "")
            if problem is not None:
                code, detail, attribute = problem
                job.errors.append(
                    {
                        "type": "import-error",
                        "id": str(uuid.uuid4()),
                        "attributes": {
                            "code": code,
                            "title": _IMPORT_ERROR_TITLES.get(code, "Internal error."),
                            "detail": detail,
                            "source": {"pointer": f"/data/attributes/profiles/data/{index}/attributes{attribute}"},
                            "original_payload": attributes,
                        },
                    }
                )
                job.failed_count += 1
                continue
            profile_id = self._upsert_profile(attributes, created_by_import=True)
            job.profile_ids.append(profile_id)
            if job.list_id is not None:
                self.lists[job.list_id]["members"].setdefault(profile_id, _now())
            job.completed_count += 1
        job.profiles = []  # applied: keep the counts, errors and ids, not the payload
        job.status = "complete"
        job.completed_at = _now()

    def _job_resource(self, job: _Job, base: str) -> dict[str, Any]:
        url = f"{base}/profile-bulk-import-jobs/{job.id}"
        relationships: dict[str, Any] = {
            "profiles": {"links": {"self": f"{url}/relationships/profiles", "related": f"{url}/profiles"}},
            "import-errors": {"links": {"related": f"{url}/import-errors"}},
        }
        if job.list_id is not None:
            relationships["lists"] = {
                "data": [{"type": "list", "id": job.list_id}],
                "links": {"self": f"{url}/relationships/lists", "related": f"{url}/lists"},
            }
        return {
            "type": "profile-bulk-import-job",
            "id": job.id,
            "attributes": {
                "status": job.status,
                "created_at": _iso(job.created_at),
                "total_count": job.total_count,
                "completed_count": job.completed_count,
                "failed_count": job.failed_count,
                "completed_at": _iso(job.completed_at),
                "expires_at": _iso(job.created_at + timedelta(days=7)),
                "started_at": _iso(job.started_at),
            },
            "relationships": relationships,
            "links": {"self": url},
        }

    # -- profiles ----------------------------------------------------------------------------

    def _get_profiles(self, request: Request, _: str | None, base: str, __: Fault | None) -> Reply:
        wanted, problem = _filter(request.param("filter"), {"id", "email", "phone_number", "external_id"})
        if problem:
            return problem
        visible_after = time.monotonic() - self.search_lag_seconds
        found = [
            self._profile_resource(pid, base, request)
            for pid in self._filtered(wanted, self.profiles)
            if self._created.get(pid, 0.0) <= visible_after
        ]
        return self._page(request, found, f"{base}/profiles")

    def _get_profile(self, request: Request, profile_id: str, base: str, _: Fault | None) -> Reply:
        if profile_id not in self.profiles:
            return _error(404, "not_found", "Not found.", f"A profile with id {profile_id} does not exist.")
        resource = self._profile_resource(profile_id, base, request)
        return Reply.json(200, {"data": resource, "links": {"self": resource["links"]["self"]}}, content_type=JSON_API)

    def _create_profile(self, request: Request, _: str | None, base: str, __: Fault | None) -> Reply:
        body, problem = _json_body(request)
        if problem:
            return problem
        data = body.get("data") if isinstance(body, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) and data.get("type") == "profile" else None
        if not isinstance(attributes, dict):
            return _invalid("data must be a profile with attributes.", "/data")
        unknown = sorted(set(attributes) - _PROFILE_ATTRIBUTES)
        if unknown:
            return _invalid(f"'{unknown[0]}' is not a valid profile attribute.", f"/data/attributes/{unknown[0]}")
        record_problem = _record_problem(attributes)
        if record_problem is not None:
            return _invalid(record_problem[1], f"/data/attributes{record_problem[2]}")
        existing = self._find(attributes)
        if existing is not None:
            return _error(
                409,
                "duplicate_profile",
                "Conflict.",
                "A profile already exists with one of these identifiers.",
                pointer="/data/attributes",
                meta={"duplicate_profile_id": existing},
            )
        profile_id = self._upsert_profile(attributes, created_by_import=False)
        resource = self._profile_resource(profile_id, base, request)
        return Reply.json(201, {"data": resource, "links": {"self": resource["links"]["self"]}}, content_type=JSON_API)

    def _update_profile(self, request: Request, profile_id: str, base: str, _: Fault | None) -> Reply:
        body, problem = _json_body(request)
        if problem:
            return problem
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "profile" or data.get("id") != profile_id:
            return _invalid("data must be the profile named in the path (type and id).", "/data")
        if profile_id not in self.profiles:
            return _error(404, "not_found", "Not found.", f"A profile with id {profile_id} does not exist.")
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return _invalid("data.attributes is required.", "/data/attributes")
        unknown = sorted(set(attributes) - _PROFILE_ATTRIBUTES)
        if unknown:
            return _invalid(f"'{unknown[0]}' is not a valid profile attribute.", f"/data/attributes/{unknown[0]}")
        profile = self.profiles[profile_id]
        for name, value in attributes.items():
            if name == "properties":
                for key, item in (value or {}).items():
                    if item is None:
                        profile["properties"].pop(key, None)
                    else:
                        profile["properties"][key] = item
            else:
                profile[name] = value  # a null clears the field here (unlike an import)
        unset = (((data.get("meta") or {}).get("patch_properties") or {}).get("unset")) or []
        for key in [unset] if isinstance(unset, str) else unset:
            profile["properties"].pop(key, None)
        profile["updated"] = _now()
        self._reindex(profile_id)
        resource = self._profile_resource(profile_id, base, request)
        return Reply.json(200, {"data": resource, "links": {"self": resource["links"]["self"]}}, content_type=JSON_API)

    def _upsert_profile(self, attributes: Mapping[str, Any], *, created_by_import: bool) -> str:
        """Create or update the profile these identifiers name; nulls change nothing."""
        profile_id = self._find(attributes)
        if profile_id is None:
            profile_id = self._new_id()
            self.profiles[profile_id] = {
                "email": None,
                "phone_number": None,
                "external_id": None,
                "first_name": None,
                "last_name": None,
                "properties": {},
                "subscriptions": {"email": {"marketing": {"consent": "NEVER_SUBSCRIBED"}}},
                "created": _now(),
                "updated": _now(),
            }
            self._created[profile_id] = time.monotonic() if created_by_import else 0.0
        profile = self.profiles[profile_id]
        for name, value in attributes.items():
            if value is None:
                continue
            if name == "properties":
                profile["properties"].update({k: v for k, v in value.items() if v is not None})
            else:
                profile[name] = value
        profile["updated"] = _now()
        self._reindex(profile_id)
        return profile_id

    def _filtered(self, wanted: tuple[str, list[str]] | None, candidates: Mapping[str, Any]) -> list[str]:
        """The profile ids among ``candidates`` (profiles, or a list's members) a filter keeps,
        found through the identifier indexes (identifiers are unique per account)."""
        if wanted is None:
            return list(candidates)
        name, keys = wanted
        ids = (key if name == "id" else self._index[name].get(key) for key in keys)
        return [pid for pid in dict.fromkeys(ids) if pid is not None and pid in candidates]

    def _conflict(self, attributes: Mapping[str, Any]) -> tuple[str, str, str] | None:
        """An identifier that already names another profile than the others do (Klaviyo
        keeps email, phone number and external id unique per account)."""
        owners = {
            name: self._index[name].get(_key(name, str(attributes[name])))
            for name in _IDENTIFIERS
            if attributes.get(name)
        }
        known = {owner for owner in owners.values() if owner is not None}
        if len(known) > 1:
            name = next(name for name, owner in reversed(owners.items()) if owner is not None)
            return "conflict", f"The {name} {attributes[name]} belongs to another profile.", f"/{name}"
        return None

    def _find(self, attributes: Mapping[str, Any]) -> str | None:
        for name in _IDENTIFIERS:
            value = attributes.get(name)
            if value:
                found = self._index[name].get(_key(name, str(value)))
                if found is not None:
                    return found
        return None

    def _reindex(self, profile_id: str) -> None:
        """Keep the identifier indexes in step with the profile (an identifier may change)."""
        profile = self.profiles[profile_id]
        old = self._keys.get(profile_id, {})
        new = {name: _key(name, str(profile[name])) for name in _IDENTIFIERS if profile.get(name)}
        for name, key in old.items():
            if new.get(name) != key and self._index[name].get(key) == profile_id:
                del self._index[name][key]
        for name, key in new.items():
            self._index[name].setdefault(key, profile_id)
        self._keys[profile_id] = new

    def _profile_resource(self, profile_id: str, base: str, request: Request) -> dict[str, Any]:
        profile = self.profiles[profile_id]
        attributes = {
            "email": profile["email"],
            "phone_number": profile["phone_number"],
            "external_id": profile["external_id"],
            "first_name": profile["first_name"],
            "last_name": profile["last_name"],
            "organization": profile.get("organization"),
            "locale": profile.get("locale"),
            "title": profile.get("title"),
            "image": profile.get("image"),
            "created": _iso(profile["created"]),
            "updated": _iso(profile["updated"]),
            "last_event_date": None,
            "location": profile.get("location"),
            "properties": dict(profile["properties"]),
        }
        sparse = request.param("fields[profile]")
        if sparse:
            wanted = {name.strip() for name in sparse.split(",")}
            attributes = {name: value for name, value in attributes.items() if name in wanted}
        return {
            "type": "profile",
            "id": profile_id,
            "attributes": attributes,
            "links": {"self": f"{base}/profiles/{profile_id}"},
        }

    # -- lists ------------------------------------------------------------------------------------

    def _get_list(self, request: Request, list_id: str, base: str, _: Fault | None) -> Reply:
        entry = self.lists.get(list_id)
        if entry is None:
            return _unknown_list(list_id)
        resource = {
            "type": "list",
            "id": list_id,
            "attributes": {
                "name": entry["name"],
                "created": _iso(entry["created"]),
                "updated": _iso(entry["created"]),
                "opt_in_process": "single_opt_in",
            },
            "links": {"self": f"{base}/lists/{list_id}"},
        }
        return Reply.json(200, {"data": resource, "links": {"self": f"{base}/lists/{list_id}"}}, content_type=JSON_API)

    def _get_profiles_for_list(self, request: Request, list_id: str, base: str, _: Fault | None) -> Reply:
        entry = self.lists.get(list_id)
        if entry is None:
            return _unknown_list(list_id)
        wanted, problem = _filter(request.param("filter"), {"email", "phone_number"})
        if problem:
            return problem
        members = []
        sparse = request.param("fields[profile]")
        for profile_id in self._filtered(wanted, entry["members"]):
            resource = self._profile_resource(profile_id, base, request)
            if not sparse or "joined_group_at" in sparse:
                resource["attributes"]["joined_group_at"] = _iso(entry["members"][profile_id])
            members.append(resource)
        return self._page(request, members, f"{base}/lists/{list_id}/profiles")

    def _get_profile_ids_for_list(self, request: Request, list_id: str, base: str, _: Fault | None) -> Reply:
        entry = self.lists.get(list_id)
        if entry is None:
            return _unknown_list(list_id)
        wanted, problem = _filter(request.param("filter"), {"email", "phone_number"})
        if problem:
            return problem
        ids = [{"type": "profile", "id": pid} for pid in self._filtered(wanted, entry["members"])]
        return self._page(request, ids, f"{base}/lists/{list_id}/relationships/profiles")

    def _add_profiles_to_list(self, request: Request, list_id: str, base: str, _: Fault | None) -> Reply:
        ids, problem = self._relationship_ids(request, list_id)
        if problem:
            return problem
        members = self.lists[list_id]["members"]
        for profile_id in ids:
            members.setdefault(profile_id, _now())
        return Reply.empty(204)

    def _remove_profiles_from_list(self, request: Request, list_id: str, base: str, _: Fault | None) -> Reply:
        ids, problem = self._relationship_ids(request, list_id)
        if problem:
            return problem
        members = self.lists[list_id]["members"]
        for profile_id in ids:
            members.pop(profile_id, None)  # the profile and its consent stay as they are
        return Reply.empty(204)

    def _relationship_ids(self, request: Request, list_id: str) -> tuple[list[str], Reply | None]:
        if list_id not in self.lists:
            return [], _unknown_list(list_id)
        body, problem = _json_body(request)
        if problem:
            return [], problem
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            return [], _invalid("data must be a non-empty array of profiles.", "/data")
        if len(data) > MAX_IDS_PER_LIST_CALL:
            return [], _invalid(f"{len(data)} profiles; at most {MAX_IDS_PER_LIST_CALL} are allowed per call.", "/data")
        ids = []
        for index, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type") != "profile" or not isinstance(item.get("id"), str):
                return [], _invalid("Each item must be {type: 'profile', id}.", f"/data/{index}")
            if item["id"] not in self.profiles:
                return [], _invalid(f"A profile with id {item['id']} does not exist.", f"/data/{index}/id")
            ids.append(item["id"])
        return ids, None

    # -- data privacy ----------------------------------------------------------------------------

    def _request_profile_deletion(self, request: Request, _: str | None, base: str, __: Fault | None) -> Reply:
        """``POST /data-privacy-deletion-jobs``: exactly one of the profile's id, email or phone
        number; every matching profile is deleted (Klaviyo runs the job later; here at once) —
        from the account and every list. 202 with no body; an unknown id is a 404."""
        body, problem = _json_body(request)
        if problem:
            return problem
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != "data-privacy-deletion-job":
            return _invalid("data.type must be 'data-privacy-deletion-job'.", "/data/type")
        profile = ((data.get("attributes") or {}).get("profile") or {}).get("data")
        if not isinstance(profile, dict) or profile.get("type") != "profile":
            return _invalid("attributes.profile.data must be {type: 'profile', ...}.", "/data/attributes/profile/data")
        attributes = profile.get("attributes") or {}
        if not isinstance(attributes, dict) or set(attributes) - {"email", "phone_number"}:
            return _invalid("A profile is named by email or phone_number only.", "/data/attributes/profile/data")
        given = [("id", profile["id"])] if profile.get("id") is not None else []
        given += [(name, value) for name, value in attributes.items() if value is not None]
        if len(given) != 1 or not isinstance(given[0][1], str) or not given[0][1].strip():
            return _invalid("Exactly one of id, email or phone_number must be given.", "/data/attributes/profile/data")
        name, value = given[0]
        if name == "id":
            if value not in self.profiles:
                return _error(404, "not_found", "Not found.", f"A profile with id {value} does not exist.")
            doomed = [value]
        else:
            doomed = [pid for pid in [self._index[name].get(_key(name, value))] if pid is not None]
        for profile_id in doomed:
            self._delete_profile(profile_id)
        return Reply.empty(202)

    def _delete_profile(self, profile_id: str) -> None:
        """Gone from the account, its indexes and every list (the deletion is not reversible)."""
        self.profiles.pop(profile_id, None)
        for name, key in self._keys.pop(profile_id, {}).items():
            if self._index[name].get(key) == profile_id:
                del self._index[name][key]
        self._created.pop(profile_id, None)
        for entry in self.lists.values():
            entry["members"].pop(profile_id, None)
        self.deleted_profiles += 1

    # -- shared --------------------------------------------------------------------------------

    def _page(self, request: Request, items: list[Any], url: str) -> Reply:
        """One page of ``items`` (page[size] ≤ 100, default 20) with cursor links."""
        size_text = request.param("page[size]", "20")
        if not size_text or not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            return _error(
                400,
                "invalid",
                "Invalid input.",
                f"page[size] must be from 1 to {MAX_PAGE_SIZE}.",
                parameter="page[size]",
            )
        size = int(size_text)
        cursor = request.param("page[cursor]")
        start = _decode_cursor(cursor) if cursor else 0
        if start is None:
            return _error(400, "invalid", "Invalid input.", "Invalid page[cursor].", parameter="page[cursor]")
        page = items[start : start + size]
        query = {name: values[-1] for name, values in request.query.items() if name != "page[cursor]"}
        links = {"self": f"{url}?{urlencode(query)}" if query else url}
        if start + size < len(items):
            links["next"] = f"{url}?{urlencode({**query, 'page[cursor]': _encode_cursor(start + size)})}"
        if start > 0:
            links["prev"] = f"{url}?{urlencode({**query, 'page[cursor]': _encode_cursor(max(0, start - size))})}"
        return Reply.json(200, {"data": page, "links": links}, content_type=JSON_API)

    def _new_id(self) -> str:
        """A 26-character ULID-like id starting "01", unique and stable per emulator."""
        digest = hashlib.sha256(f"{self._seed}:{next(self._ids)}".encode()).digest()
        number = int.from_bytes(digest[:16], "big")
        tail = "".join(_CROCKFORD[(number >> (5 * i)) & 31] for i in range(24))
        return "01" + tail


# -- module helpers -----------------------------------------------------------------------------


def _route(request: Request) -> tuple[str, str | None, str] | None:
    """(endpoint name, path id, tier) of the request, or None."""
    for method, pattern, name, tier in _ROUTES:
        if method == request.method:
            match = pattern.fullmatch(request.path)
            if match:
                return name, match.groupdict().get("id"), tier
    return None


def _error(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    meta: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Klaviyo's error body: ``errors[]`` with string id, code, title and detail."""
    error: dict[str, Any] = {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title, "detail": detail}
    if pointer is not None or parameter is not None:
        error["source"] = {"pointer": pointer} if pointer is not None else {"parameter": parameter}
    if meta:
        error["meta"] = dict(meta)
    return Reply.json(status, {"errors": [error]}, content_type=JSON_API, headers=headers)


def _invalid(detail: str, pointer: str) -> Reply:
    return _error(400, "invalid", "Invalid input.", detail, pointer=pointer)


def _unknown_list(list_id: str) -> Reply:
    return _error(404, "not_found", "Not found.", f"A list with id {list_id} does not exist.")


def _json_body(request: Request) -> tuple[Any, Reply | None]:
    try:
        return request.json(), None
    except (ValueError, UnicodeDecodeError):
        return None, _invalid("The request body is not valid JSON.", "/data")


def _key(name: str, value: str) -> str:
    return value.strip().lower() if name == "email" else value.strip()


def _record_problem(attributes: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(code, detail, attribute pointer) for a profile Klaviyo would not import, else None.
    The detail quotes the value, as Klaviyo's messages do: a connector must redact it."""
    email, phone, external = (attributes.get(name) for name in _IDENTIFIERS)
    if not any(value for value in (email, phone, external)):
        return "invalid", "A profile needs an email, a phone number or an external id.", ""
    if email is not None and (not isinstance(email, str) or not _EMAIL.fullmatch(email.strip())):
        return "invalid", f"Invalid email address: {email}", "/email"
    if phone is not None and (not isinstance(phone, str) or not _E164.fullmatch(phone.strip())):
        return "invalid", f"Invalid phone number {phone}: use E.164 format", "/phone_number"
    return None


def _filter(text: str | None, fields: set[str]) -> tuple[tuple[str, list[str]] | None, Reply | None]:
    """Klaviyo's ``any(field,[…])`` / ``equals(field,"…")`` filter as (field, keys), or None
    for no filter; a 400 for one that is malformed, on another field, or over 100 values."""
    if not text:
        return None, None
    match = _FILTER.fullmatch(text)
    if not match or match.group(2) not in fields:
        return None, _error(400, "invalid", "Invalid input.", "Invalid filter.", parameter="filter")
    operator, name, argument = match.groups()
    try:
        values = json.loads(argument)
    except ValueError:
        return None, _error(400, "invalid", "Invalid input.", "Invalid filter value.", parameter="filter")
    if operator == "equals":
        values = [values]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return None, _error(400, "invalid", "Invalid input.", "Invalid filter value.", parameter="filter")
    if len(values) > MAX_PAGE_SIZE:
        return None, _error(
            400, "invalid", "Invalid input.", f"any() takes at most {MAX_PAGE_SIZE} values.", parameter="filter"
        )
    return (name, list(dict.fromkeys(value if name == "id" else _key(name, value) for value in values))), None


def _encode_cursor(offset: int) -> str:
    return f"c{offset:x}"


def _decode_cursor(cursor: str) -> int | None:
    try:
        return int(cursor[1:], 16) if cursor.startswith("c") else None
    except ValueError:
        return None


def members_by(emulator: KlaviyoEmulator, attribute: str, list_id: str = DEFAULT_LIST_ID) -> dict[str, dict[str, Any]]:
    """The list's members keyed by one identifier attribute (for tests and benchmarks)."""
    return {str(p[attribute]): p for p in emulator.members(list_id).values() if p.get(attribute)}
