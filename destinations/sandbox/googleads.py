"""Emulator of the Google Ads API's Customer Match job flow (REST bindings, ``/googleads/v26``):
the legacy way to fill a Customer Match user list, for accounts Google still allowlists.

The flow, as the OfflineUserDataJobService reference describes it:

1. ``POST /v26/customers/{cid}/offlineUserDataJobs:create`` with a
   ``CUSTOMER_MATCH_USER_LIST`` job naming the user list and the consent → ``{resourceName}``;
   a customer that is not allowlisted gets 403 with
   ``notAllowlistedError: CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE``; an unknown list
   ``offlineUserDataJobError: INVALID_USER_LIST_ID``.
2. ``POST /v26/{job}:addOperations`` with create/remove operations, each a user's
   ``userIdentifiers`` (each entry exactly one kind: hashedEmail, hashedPhoneNumber,
   addressInfo; ≤ 20 a user; ≤ 100,000 a request → ``TOO_MANY_USER_IDENTIFIERS``). With
   ``enablePartialFailure`` the valid operations are kept and the invalid ones come back in a
   200's ``partialFailureError`` (a google.rpc.Status whose ``details[0]`` is a
   ``GoogleAdsFailure`` locating each error at ``operations[i]``); without it one invalid
   operation refuses the request. A job that has started refuses operations
   (``JOB_ALREADY_STARTED``).
3. ``POST /v26/{job}:run`` → a long-running operation ``{name}``; the job goes
   PENDING → RUNNING → SUCCESS (or FAILED). One job per user list runs at a time: running
   a second is 409 ``databaseError: CONCURRENT_MODIFICATION``; running a started job again
   is ``JOB_ALREADY_STARTED``.
4. ``POST /v26/customers/{cid}/googleAds:search`` with a GAQL query on
   ``offline_user_data_job`` reads the status: RUNNING at the first read after run, SUCCESS
   from the second (or ``complete_after_seconds`` after the run, for jobs nobody polls).

A job's operations change the list only when it succeeds, in order. A job that is never
run never changes anything (how an abandoned job stays harmless). Auth is an OAuth bearer
token (401 ``authenticationError`` otherwise); ``login-customer-id`` must manage the
customer. Errors carry a ``GoogleAdsFailure``; faults (FaultPlan) answer in Google's shape,
and ``reject`` fails the operations holding the named hashes inside a 200's partial failure.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from destinations.sandbox import google_rpc as rpc
from destinations.sandbox.faults import Fault
from destinations.sandbox.server import Emulator, Reply, Request

SERVICE = "googleads.googleapis.com"
VERSION = "v26"
DEFAULT_TOKEN = "ya29.sandbox-ads-token"
DEFAULT_CUSTOMER_ID = "1234567890"
NOT_ALLOWLISTED_CUSTOMER_ID = "2222222222"
DEFAULT_MANAGER_ID = "1112223334"
DEFAULT_USER_LIST_ID = "555"
MAX_IDENTIFIERS_PER_REQUEST = 100_000
MAX_IDENTIFIERS_PER_USER = 20
POLLS_TO_COMPLETE = 2
FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"

JOB_STATUSES = {"UNSPECIFIED": 0, "UNKNOWN": 1, "PENDING": 2, "RUNNING": 3, "SUCCESS": 4, "FAILED": 5}
JOB_TYPES = {"UNSPECIFIED": 0, "UNKNOWN": 1, "CUSTOMER_MATCH_USER_LIST": 4, "CUSTOMER_MATCH_WITH_ATTRIBUTES": 5}
CONSENT_STATUSES = {"UNSPECIFIED": 0, "UNKNOWN": 1, "GRANTED": 2, "DENIED": 3}
FAILURE_REASONS = {"UNSPECIFIED": 0, "UNKNOWN": 1}

_CREATE = re.compile(rf"^/{VERSION}/customers/(\d+)/offlineUserDataJobs:create$")
_ADD = re.compile(rf"^/{VERSION}/customers/(\d+)/offlineUserDataJobs/(\d+):addOperations$")
_RUN = re.compile(rf"^/{VERSION}/customers/(\d+)/offlineUserDataJobs/(\d+):run$")
_SEARCH = re.compile(rf"^/{VERSION}/customers/(\d+)/googleAds:search$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>[\w.,\s]+?)\s+FROM\s+offline_user_data_job"
    r"(?:\s+WHERE\s+offline_user_data_job\.resource_name\s*=\s*'(?P<name>[^']+)')?\s*$",
    re.IGNORECASE,
)
_SELECTABLE = {
    "offline_user_data_job.resource_name": "resourceName",
    "offline_user_data_job.id": "id",
    "offline_user_data_job.status": "status",
    "offline_user_data_job.type": "type",
    "offline_user_data_job.failure_reason": "failureReason",
}
_IDENTIFIER_KINDS = ("hashedEmail", "hashedPhoneNumber", "addressInfo", "mobileId", "thirdPartyUserId")


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def ads_error(code: str, value: str, message: str, location: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One GoogleAdsError: ``errorCode`` is a one-field object ({"<kind>Error": "<VALUE>"})."""
    error: dict[str, Any] = {"errorCode": {code: value}, "message": message}
    if location:
        error["location"] = {"fieldPathElements": location}
    return error


def _failure(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@type": FAILURE_TYPE, "errors": errors, "requestId": uuid.uuid4().hex[:22]}


def _refuse(status: int, errors: list[dict[str, Any]], message: str | None = None) -> _Refused:
    message = message or ("Request contains an invalid argument." if status == 400 else errors[0]["message"])
    return _Refused(rpc.error_reply(status, message, [_failure(errors)]))


@dataclass
class UserList:
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    addresses: set[tuple[str, str, str, str]] = field(default_factory=set)

    def snapshot(self) -> dict[str, Any]:
        return {
            "emails": sorted(self.emails),
            "phones": sorted(self.phones),
            "addresses": [list(a) for a in sorted(self.addresses)],
        }


@dataclass
class Job:
    resource_name: str
    job_id: str
    customer_id: str
    user_list: str
    status: str = "PENDING"
    #: ("create" | "remove", identifier keys) in the order added
    operations: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    run_at: float | None = None
    reads_after_run: int = 0
    fails: bool = False
    operation_name: str = ""


class GoogleAdsEmulator(Emulator):
    """The Google Ads API's OfflineUserDataJobService and search, under ``/googleads/v26``."""

    prefix = "googleads"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        customers: Mapping[str, bool] | None = None,
        managers: Mapping[str, set[str]] | None = None,
        user_lists: Mapping[str, str] | None = None,
        polls_to_complete: int = POLLS_TO_COMPLETE,
        complete_after_seconds: float = 2.0,
    ) -> None:
        """``customers``: customer id -> allowlisted for Customer Match; ``user_lists``:
        user list id -> owning customer id."""
        super().__init__()
        self.token = token
        self.customers = dict(customers or {DEFAULT_CUSTOMER_ID: True, NOT_ALLOWLISTED_CUSTOMER_ID: False})
        self.managers = {k: set(v) for k, v in (managers or {DEFAULT_MANAGER_ID: set(self.customers)}).items()}
        owners = user_lists or {DEFAULT_USER_LIST_ID: DEFAULT_CUSTOMER_ID, "556": NOT_ALLOWLISTED_CUSTOMER_ID}
        self.user_lists = {f"customers/{cid}/userLists/{lid}": UserList() for lid, cid in owners.items()}
        self.polls_to_complete = polls_to_complete
        self.complete_after_seconds = complete_after_seconds
        self.jobs: dict[str, Job] = {}
        self._fail_jobs = 0
        self._ids = itertools.count(1001)

    # -- test controls -----------------------------------------------------------------------

    def fail_jobs(self, times: int = 1) -> None:
        """The next ``times`` jobs that run end FAILED without changing their list."""
        with self.lock:
            self._fail_jobs += times

    # -- Emulator ------------------------------------------------------------------------------

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": f"{base_url}/{VERSION}",
            "access_token": self.token,
            "customers": [{"customer_id": cid, "allowlisted": ok} for cid, ok in self.customers.items()],
            "login_customer_ids": sorted(self.managers),
            "user_lists": sorted(self.user_lists),
        }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            self._advance()
            return {
                "user_lists": {name: user_list.snapshot() for name, user_list in self.user_lists.items()},
                "jobs": {
                    name: {"status": job.status, "operations": len(job.operations), "user_list": job.user_list}
                    for name, job in self.jobs.items()
                },
            }

    def audience_sizes(self) -> dict[str, int]:
        """Email hashes each user list holds (the demo's count of people)."""
        with self.lock:
            self._advance()
            return {name: len(user_list.emails) for name, user_list in self.user_lists.items()}

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        return rpc.fault_reply(fault, service=SERVICE)

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        if rpc.bearer_token(request) != self.token:
            return rpc.error_reply(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential.",
                [_failure([ads_error("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")])],
            )
        try:
            if request.method != "POST":
                raise _Refused(rpc.error_reply(404, f"Method not found: {request.method} {request.path}"))
            body = self._body(request)
            with self.lock:
                self._advance()
                if match := _CREATE.match(request.path):
                    return self._create(request, match.group(1), body)
                if match := _ADD.match(request.path):
                    return self._add(request, match.group(1), match.group(2), body, fault)
                if match := _RUN.match(request.path):
                    return self._run(request, match.group(1), match.group(2))
                if match := _SEARCH.match(request.path):
                    return self._search(request, match.group(1), body)
            raise _Refused(rpc.error_reply(404, f"Method not found: {request.method} {request.path}"))
        except _Refused as refused:
            return refused.reply

    # -- the steps --------------------------------------------------------------------------------

    def _body(self, request: Request) -> dict[str, Any]:
        if not request.body:
            return {}
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _Refused(rpc.error_reply(400, "Invalid JSON payload received.")) from None
        if not isinstance(body, dict):
            raise _Refused(rpc.error_reply(400, "Invalid JSON payload received. Expected an object."))
        return body

    def _customer(self, request: Request, customer_id: str) -> None:
        """The customer exists and the caller may act for it (directly or through login-customer-id)."""
        login = request.headers.get("login-customer-id", "").replace("-", "")
        permitted = customer_id in self.customers and (
            not login or login == customer_id or customer_id in self.managers.get(login, set())
        )
        if not permitted:
            raise _refuse(
                403,
                [
                    ads_error(
                        "authorizationError",
                        "USER_PERMISSION_DENIED",
                        "User doesn't have permission to access customer. Note: If you're accessing a client "
                        "customer, the manager's customer id must be set in the 'login-customer-id' header.",
                    )
                ],
            )

    def _create(self, request: Request, customer_id: str, body: dict[str, Any]) -> Reply:
        self._customer(request, customer_id)
        if not self.customers[customer_id]:
            raise _refuse(
                403,
                [
                    ads_error(
                        "notAllowlistedError",
                        "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE",
                        "Customer is not allowlisted for accessing this feature.",
                    )
                ],
            )
        job = body.get("job") or {}
        where = [{"fieldName": "job"}]
        if rpc.enum_value(job.get("type", 0), JOB_TYPES) != "CUSTOMER_MATCH_USER_LIST":
            raise _refuse(
                400,
                [
                    ads_error(
                        "requestError",
                        "REQUIRED_FIELD_MISSING",
                        "The job type must be CUSTOMER_MATCH_USER_LIST.",
                        [*where, {"fieldName": "type"}],
                    )
                ],
            )
        metadata = job.get("customerMatchUserListMetadata") or {}
        user_list = str(metadata.get("userList") or "")
        location = [*where, {"fieldName": "customer_match_user_list_metadata"}, {"fieldName": "user_list"}]
        if not user_list.startswith(f"customers/{customer_id}/userLists/") or user_list not in self.user_lists:
            raise _refuse(
                400,
                [
                    ads_error(
                        "offlineUserDataJobError",
                        "INVALID_USER_LIST_ID",
                        "The user list ID provided for the job is invalid.",
                        location,
                    )
                ],
            )
        consent = metadata.get("consent") or {}
        for name in ("adUserData", "adPersonalization"):
            if rpc.enum_value(consent.get(name, 0), CONSENT_STATUSES) not in ("GRANTED", "DENIED"):
                raise _refuse(
                    400,
                    [
                        ads_error(
                            "requestError",
                            "REQUIRED_FIELD_MISSING",
                            f"Consent {name} is required for Customer Match.",
                            [*where, {"fieldName": "customer_match_user_list_metadata"}, {"fieldName": "consent"}],
                        )
                    ],
                )
        job_id = str(next(self._ids))
        name = f"customers/{customer_id}/offlineUserDataJobs/{job_id}"
        self.jobs[name] = Job(name, job_id, customer_id, user_list)
        return Reply.json(200, {"resourceName": name})

    def _job(self, request: Request, customer_id: str, job_id: str) -> Job:
        self._customer(request, customer_id)
        job = self.jobs.get(f"customers/{customer_id}/offlineUserDataJobs/{job_id}")
        if job is None:
            raise _refuse(
                404,
                [ads_error("requestError", "RESOURCE_NAME_MALFORMED", "The offline user data job was not found.")],
                "Requested entity was not found.",
            )
        return job

    def _add(self, request: Request, customer_id: str, job_id: str, body: dict[str, Any], fault: Fault | None) -> Reply:
        job = self._job(request, customer_id, job_id)
        if job.status != "PENDING":
            raise _refuse(
                400,
                [
                    ads_error(
                        "offlineUserDataJobError",
                        "JOB_ALREADY_STARTED",
                        "The job has already started; operations can no longer be added.",
                    )
                ],
            )
        operations = body.get("operations") or []
        if not isinstance(operations, list) or not operations:
            raise _refuse(400, [ads_error("requestError", "REQUIRED_FIELD_MISSING", "No operations were given.")])
        counted = sum(
            len(((op or {}).get("create") or (op or {}).get("remove") or {}).get("userIdentifiers") or [])
            for op in operations
            if isinstance(op, dict)
        )
        if counted > MAX_IDENTIFIERS_PER_REQUEST:
            raise _refuse(
                400,
                [
                    ads_error(
                        "offlineUserDataJobError",
                        "TOO_MANY_USER_IDENTIFIERS",
                        "Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.",
                    )
                ],
            )
        errors: list[dict[str, Any]] = []
        accepted: list[tuple[str, frozenset[str]]] = []
        for index, operation in enumerate(operations):
            kind, keys, error = self._operation(operation, index)
            if error is None and fault is not None and any(fault.rejects(key[2:]) for key in keys):
                code = (
                    ("internalError", "INTERNAL_ERROR")
                    if fault.retryable
                    else ("offlineUserDataJobError", "INCOMPATIBLE_USER_IDENTIFIER")
                )
                error = ads_error(*code, fault.error, [{"fieldName": "operations", "index": index}])
            if error is not None:
                errors.append(error)
            else:
                accepted.append((kind, keys))
        partial = bool(body.get("enablePartialFailure"))
        if errors and not partial:
            raise _refuse(400, errors)
        if not body.get("validateOnly"):
            job.operations.extend(accepted)
        if not errors:
            return Reply.json(200, {})
        first = errors[0]["message"]
        message = f"Multiple errors in 'details'. First error: {first}" if len(errors) > 1 else first
        status = {"code": rpc.CODE_NUMBERS["INVALID_ARGUMENT"], "message": message, "details": [_failure(errors)]}
        return Reply.json(200, {"partialFailureError": status})

    def _operation(self, operation: Any, index: int) -> tuple[str, frozenset[str], dict[str, Any] | None]:
        at = [{"fieldName": "operations", "index": index}]

        def error(value: str, message: str, *path: dict[str, Any]) -> tuple[str, frozenset[str], dict[str, Any]]:
            return "", frozenset(), ads_error("offlineUserDataJobError", value, message, [*at, *path])

        if not isinstance(operation, dict):
            return error("MISSING_USER_IDENTIFIER", "An operation must be an object.")
        kinds = [kind for kind in ("create", "remove") if kind in operation]
        if len(kinds) != 1:
            raise _Refused(
                rpc.error_reply(400, "Invalid JSON payload received. An operation sets exactly one of create, remove.")
            )
        kind = kinds[0]
        identifiers = (operation[kind] or {}).get("userIdentifiers") or []
        where = {"fieldName": kind}
        if not identifiers:
            return error("MISSING_USER_IDENTIFIER", "User identifier is missing.", where)
        if len(identifiers) > MAX_IDENTIFIERS_PER_USER:
            return error(
                "TOO_MANY_USER_IDENTIFIERS",
                "Maximum number of user identifiers allowed per request is 100,000 and per operation is 20.",
                where,
            )
        keys: set[str] = set()
        for position, identifier in enumerate(identifiers):
            path = (where, {"fieldName": "user_identifiers", "index": position})
            present = [name for name in _IDENTIFIER_KINDS if isinstance(identifier, dict) and name in identifier]
            if len(present) != 1:
                # one oneof: Google's JSON parser refuses the whole request
                raise _Refused(
                    rpc.error_reply(
                        400,
                        "Invalid JSON payload received. Multiple values (or none) set for oneof 'identifier' "
                        f"at 'operations[{index}].{kind}.user_identifiers[{position}]'.",
                    )
                )
            name = present[0]
            value = identifier[name]
            if name in ("hashedEmail", "hashedPhoneNumber"):
                if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
                    return error("INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.", *path)
                keys.add(("e:" if name == "hashedEmail" else "p:") + value)
            elif name == "addressInfo":
                address = value if isinstance(value, dict) else {}
                given, family = address.get("hashedFirstName"), address.get("hashedLastName")
                if not all(isinstance(v, str) and _SHA256_HEX.fullmatch(v) for v in (given, family)):
                    return error("INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.", *path)
                country, postal = address.get("countryCode"), address.get("postalCode")
                if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
                    return error("INVALID_COUNTRY_CODE", "The country code is invalid.", *path)
                if not isinstance(postal, str) or not postal or _SHA256_HEX.fullmatch(postal):
                    return error("INCOMPATIBLE_USER_IDENTIFIER", "The postal code is missing or hashed.", *path)
                keys.add(f"a:{given}|{family}|{country}|{postal}")
            else:
                return error("INCOMPATIBLE_USER_IDENTIFIER", "Only contact info is taken here.", *path)
        return kind, frozenset(keys), None

    def _run(self, request: Request, customer_id: str, job_id: str) -> Reply:
        job = self._job(request, customer_id, job_id)
        if job.status != "PENDING":
            raise _refuse(
                400, [ads_error("offlineUserDataJobError", "JOB_ALREADY_STARTED", "The job has already started.")]
            )
        if any(other.status == "RUNNING" and other.user_list == job.user_list for other in self.jobs.values()):
            raise _refuse(
                409,
                [
                    ads_error(
                        "databaseError",
                        "CONCURRENT_MODIFICATION",
                        "Another job on this user list is running; try again when it has finished.",
                    )
                ],
                "Multiple requests were attempting to modify the same resource at once. Retry the request.",
            )
        job.status = "RUNNING"
        job.run_at = time.monotonic()
        job.operation_name = f"customers/{customer_id}/operations/{uuid.uuid4().hex[:12]}"
        if self._fail_jobs:
            self._fail_jobs -= 1
            job.fails = True
        return Reply.json(200, {"name": job.operation_name})

    def _search(self, request: Request, customer_id: str, body: dict[str, Any]) -> Reply:
        self._customer(request, customer_id)
        query = str(body.get("query") or "")
        match = _QUERY.match(query)
        fields = [f.strip().lower() for f in match.group("fields").split(",")] if match else []
        if not match or not fields or any(f not in _SELECTABLE for f in fields):
            raise _refuse(
                400,
                [
                    ads_error(
                        "queryError",
                        "UNEXPECTED_INPUT",
                        "Error in query: this emulator reads offline_user_data_job by resource_name.",
                    )
                ],
            )
        as_int = rpc.wants_int_enums(request)
        wanted = match.group("name")
        rows = []
        for job in self.jobs.values():
            if job.customer_id != customer_id or (wanted and job.resource_name != wanted):
                continue
            if job.status == "RUNNING":
                job.reads_after_run += 1
                self._advance()
            values = {
                "resourceName": job.resource_name,
                "id": job.job_id,
                "status": rpc.enum_out(job.status, JOB_STATUSES, as_int),
                "type": rpc.enum_out("CUSTOMER_MATCH_USER_LIST", JOB_TYPES, as_int),
                "failureReason": rpc.enum_out(
                    "UNKNOWN" if job.status == "FAILED" else "UNSPECIFIED", FAILURE_REASONS, as_int
                ),
            }
            rows.append({"offlineUserDataJob": {_SELECTABLE[f]: values[_SELECTABLE[f]] for f in fields}})
        mask = ",".join(f"offlineUserDataJob.{_SELECTABLE[f]}" for f in fields)
        answer: dict[str, Any] = {"fieldMask": mask, "queryResourceConsumption": "1"}
        if rows:
            answer["results"] = rows
        return Reply.json(200, answer)

    # -- jobs finishing ----------------------------------------------------------------------------

    def _advance(self) -> None:
        """Finish running jobs that have been read enough times or run long enough."""
        now = time.monotonic()
        for job in self.jobs.values():
            if job.status != "RUNNING":
                continue
            read_enough = job.reads_after_run >= self.polls_to_complete
            long_enough = job.run_at is not None and now - job.run_at >= self.complete_after_seconds
            if not (read_enough or long_enough):
                continue
            if job.fails:
                job.status = "FAILED"
                continue
            user_list = self.user_lists[job.user_list]
            for kind, keys in job.operations:
                for key in keys:
                    _apply(user_list, key, add=kind == "create")
            job.status = "SUCCESS"


def _apply(user_list: UserList, key: str, *, add: bool) -> None:
    kind, value = key[0], key[2:]
    target: set[Any]
    if kind == "a":
        target, item = user_list.addresses, tuple(value.split("|", 3))
    else:
        target, item = (user_list.emails if kind == "e" else user_list.phones), value
    if add:
        target.add(item)
    else:
        target.discard(item)
