"""The legacy Customer Match flow through the Google Ads API (v26 REST bindings), for the
accounts Google still allowlists (``mode: google_ads_legacy`` of a google_customer_match
connection; everyone else uses Data Manager, destinations/google_customer_match.py).

One ``send`` is one OfflineUserDataJob:

1. ``customers/{cid}/offlineUserDataJobs:create`` — a CUSTOMER_MATCH_USER_LIST job for the
   user list, consent GRANTED (true: the sync filters by ads_personalization consent, see
   google_customer_match.py);
2. ``{job}:addOperations`` — removals first, then creates, at most 100,000 identifiers a
   request, ``enablePartialFailure: true``: the ``partialFailureError``'s GoogleAdsFailure
   locates each refused operation at ``operations[i]``, mapped back to exactly that record
   (``rejected``, or ``failed`` for an internal error);
3. ``{job}:run`` — a long-running operation;
4. ``googleAds:search`` on the job's status until SUCCESS or FAILED (bounded by
   ``status_wait_seconds``).

Recovery without duplicate effect, step by step. A list holds a set of identifiers, so
sending the same operations again never adds anything twice; what must not happen is an
old job applying stale operations later. So a job is never reused across sends, and a send
that fails before ``:run`` leaves its job PENDING — an orphan that is abandoned: we never
run it, and Google applies nothing from a job that never runs. The next run creates a fresh
job with the same operations.

- create fails or its answer is lost: at most an empty orphan job; next run starts afresh.
- addOperations fails or its answer is lost: an orphan holding some operations, never run.
- run's answer is lost: urllib3 sends ``:run`` again and Google answers
  ``JOB_ALREADY_STARTED``, which here means "ours is running": we poll it. Past the retry
  budget the batch fails, the job still runs, and next run's job re-applies the same set
  operations; Google runs one job per list at a time, so that job's ``:run`` is refused
  (409 ``CONCURRENT_MODIFICATION``) until the earlier one finishes, and is retried with
  back-off within ``status_wait_seconds``.
- the status cannot be read: the job is running and will apply; its records are confirmed
  and ``report()`` counts the unread status. FAILED makes every record of the job ``failed``.

An account that is not allowlisted is told to use ``mode: data_manager``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from destinations.base import (
    Change,
    DestinationConfigError,
    DestinationUnavailable,
    Outcome,
    refuse_oversized_batch,
)
from destinations.google_customer_match import (
    GOOGLE_ADS_URL,
    MAX_MEMBERS,
    MAX_POLL_INTERVAL,
    REQUESTS_PER_MINUTE,
    GoogleCustomerMatchDestination,
    GoogleCustomerMatchOptions,
    Member,
    members_of,
    raw_values,
    sent_record,
    stale_members,
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
from destinations.options import check_option
from destinations.ratelimit import REQUESTS, one_window

#: Google Ads' limit of user identifiers per addOperations request
MAX_IDENTIFIERS_PER_REQUEST = 100_000
TRANSIENT_ERROR_KINDS = frozenset({"internalError", "quotaError"})
DONE = frozenset({"SUCCESS", "FAILED"})
JOB_STATUS_NAMES = {0: "UNSPECIFIED", 1: "UNKNOWN", 2: "PENDING", 3: "RUNNING", 4: "SUCCESS", 5: "FAILED"}


def _label(name: str) -> str:
    return f"google_customer_match destination {name!r} (google_ads_legacy)"


@dataclass
class _Operation:
    """One addOperations entry and the record it stands for."""

    kind: str  # "create" | "remove"
    member: Member
    stale: bool = False

    def json(self) -> dict[str, Any]:
        return {self.kind: {"userIdentifiers": [_ads_identifier(entry) for entry in self.member.identifiers]}}


class GoogleAdsLegacyDestination:
    """Keeps a Customer Match user list equal to a segment through OfflineUserDataJobs."""

    supported_modes = GoogleCustomerMatchDestination.supported_modes
    identifier_names = GoogleCustomerMatchDestination.identifier_names
    key_names = GoogleCustomerMatchDestination.key_names
    accepts_fields = False
    options_type: type = GoogleCustomerMatchOptions
    required_consent_purpose = GoogleCustomerMatchDestination.required_consent_purpose

    def __init__(
        self,
        name: str,
        *,
        access_token: str,
        customer_id: str,
        user_list_id: str,
        login_customer_id: str | None = None,
        base_url: str = GOOGLE_ADS_URL,
        sync_name: str = "",
        batch_size: int = MAX_MEMBERS,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_after: float = 60.0,
        requests_per_minute: int | None = REQUESTS_PER_MINUTE,
        status_poll_seconds: float = 0.5,
        status_wait_seconds: float = 30.0,
        max_identifiers_per_request: int = MAX_IDENTIFIERS_PER_REQUEST,
        token_env: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.label = _label(name)
        self.sync_name = sync_name
        self.base_url = base_url.rstrip("/")
        self.customer_id = customer_id
        self.user_list_id = user_list_id
        self.user_list = f"customers/{customer_id}/userLists/{user_list_id}"
        self.batch_size = check_option(GoogleCustomerMatchOptions, "batch_size", batch_size, label=self.label)
        self.timeout = timeout if isinstance(timeout, Timeout) else Timeout(read=float(timeout))
        self.max_retries = max_retries
        self.status_poll_seconds = status_poll_seconds
        self.status_wait_seconds = status_wait_seconds
        self.max_identifiers_per_request = max_identifiers_per_request
        self._token_hint = f"check the access token in ${token_env}" if token_env else "check the access token"
        self._pacer = one_window(requests_per_minute)
        self._sleep = sleep
        self._session = build_session(
            user_agent="composable-cdp-google-ads-legacy/0.1",
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
        )
        self._session.headers["Authorization"] = f"Bearer {access_token}"
        if login_customer_id:
            self._session.headers["login-customer-id"] = login_customer_id
        self._figures: Counter[str] = Counter()
        self._last_status = ""

    @classmethod
    def from_config(cls, name: str, options: Any, env: Any, *, sync_name: str = "") -> Any:
        """Built through GoogleCustomerMatchDestination.from_config with ``mode: google_ads_legacy``."""
        return GoogleCustomerMatchDestination.from_config(
            name, {**options, "mode": "google_ads_legacy"}, env, sync_name=sync_name
        )

    # -- the interface ---------------------------------------------------------------------------

    def send(self, changes: list[Change]) -> list[Outcome]:
        """One job: create, add the batch's operations, run, poll; one outcome per change."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        if not changes:
            return []
        outcomes, upserts, removals = members_of(changes)
        self._figures["members_set_aside"] += sum(1 for o in outcomes.values() if o.status == "rejected")
        operations = [_Operation("remove", m) for m in removals]
        operations += [_Operation("remove", m, stale=True) for m in stale_members(upserts)]
        operations += [_Operation("create", m) for m in upserts]
        if not operations:
            return [outcomes[i] for i in range(len(changes))]

        job = self._create()
        refused = self._add(job, operations)
        self._run(job)
        status = self._await(job)

        for index, operation in enumerate(operations):
            position, change = operation.member.position, operation.member.change
            if index in refused:
                verdict, error = refused[index]
                prefix = "removing its old identifiers: " if operation.stale else ""
                outcomes[position] = Outcome(change.change_id, verdict, (prefix + error)[:MAX_ERROR_CHARS])
            elif status == "FAILED":
                outcomes[position] = Outcome(
                    change.change_id, "failed", f"Google Ads job {job} FAILED; the records are sent again next run"
                )
            elif operation.stale or position in outcomes:
                continue  # an update is confirmed by its create; a refused stale removal failed it above
            else:
                record = sent_record(operation.member.identifiers) if operation.kind == "create" else None
                outcomes[position] = Outcome(change.change_id, "confirmed", destination_id=record)
        return [
            outcomes.get(i) or Outcome(c.change_id, "failed", "no answer for this record")
            for i, c in enumerate(changes)
        ]

    def report(self) -> dict[str, int | str]:
        report: dict[str, int | str] = {key: value for key, value in sorted(self._figures.items()) if value}
        if self._last_status:
            report["job_status"] = self._last_status
        return report

    def close(self) -> None:
        self._session.close()

    # -- the steps ---------------------------------------------------------------------------------

    def _create(self) -> str:
        body = {
            "job": {
                "type": "CUSTOMER_MATCH_USER_LIST",
                "customerMatchUserListMetadata": {
                    "userList": self.user_list,
                    "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"},
                },
            }
        }
        response = self._post(f"/customers/{self.customer_id}/offlineUserDataJobs:create", body)
        self._check(response, "create a job")
        name = _json(response).get("resourceName")
        if not isinstance(name, str) or not name.startswith(f"customers/{self.customer_id}/offlineUserDataJobs/"):
            raise DestinationUnavailable(f"{self.label}: Google Ads created a job but named none; sent again next run")
        self._figures["jobs_created"] += 1
        return name

    def _add(self, job: str, operations: Sequence[_Operation]) -> dict[int, tuple[str, str]]:
        """Add the operations in requests of at most the identifier limit; the refused ones
        (index into ``operations`` -> (status, error))."""
        refused: dict[int, tuple[str, str]] = {}
        for first, chunk in _chunks(operations, self.max_identifiers_per_request):
            body = {"operations": [op.json() for op in chunk], "enablePartialFailure": True}
            response = self._post(f"/{job}:addOperations", body)
            self._check(response, "add operations to the job", chunk)
            self._figures["operations_added"] += len(chunk)
            for index, (kind, code, message) in _partial_failures(response).items():
                if not 0 <= index < len(chunk):
                    continue
                operation = chunk[index]
                text = redact(message, *raw_values(operation.member.change))
                verdict = "failed" if kind in TRANSIENT_ERROR_KINDS else "rejected"
                refused[first + index] = (verdict, f"{text} ({kind}: {code}; Google Ads refused this operation)")
                self._figures["operations_refused"] += 1
        return refused

    def _run(self, job: str) -> None:
        """Run the job; wait out another job on the same list (Google runs one at a time)."""
        deadline = time.monotonic() + self.status_wait_seconds
        delay = self.status_poll_seconds
        while True:
            response = self._post(f"/{job}:run", {})
            if 200 <= response.status_code < 300:
                return
            codes = _error_codes(response)
            if "JOB_ALREADY_STARTED" in codes:
                return  # our own earlier :run landed; its answer was lost
            if "CONCURRENT_MODIFICATION" in codes and time.monotonic() + delay < deadline:
                self._figures["run_waits"] += 1
                self._sleep(delay)
                delay = min(delay * 2, MAX_POLL_INTERVAL)
                continue
            if "CONCURRENT_MODIFICATION" in codes:
                raise DestinationUnavailable(
                    f"{self.label}: another job on user list {self.user_list_id} kept running past "
                    f"{self.status_wait_seconds:.0f}s; the batch will be sent again next run"
                )
            self._check(response, "run the job")

    def _await(self, job: str) -> str:
        """Poll the job's status until SUCCESS or FAILED, or ``status_wait_seconds`` pass."""
        deadline = time.monotonic() + self.status_wait_seconds
        delay = self.status_poll_seconds
        query = (
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, "
            "offline_user_data_job.failure_reason FROM offline_user_data_job "
            f"WHERE offline_user_data_job.resource_name = '{job}'"
        )
        status = "RUNNING"
        while True:
            try:
                response = self._post(f"/customers/{self.customer_id}/googleAds:search", {"query": query})
            except DestinationUnavailable:
                response = None
            if response is not None and response.status_code in (401, 403):
                self._check(response, "read the job's status")
            if response is None or not 200 <= response.status_code < 300:
                self._figures["status_reads_failed"] += 1
            else:
                rows = _json(response).get("results") or []
                found = (rows[0].get("offlineUserDataJob") or {}) if rows and isinstance(rows[0], dict) else {}
                value = found.get("status", status)
                status = JOB_STATUS_NAMES.get(value, str(value)) if isinstance(value, int) else str(value)
            remaining = deadline - time.monotonic()
            if status in DONE or remaining <= 0:
                break
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_INTERVAL)
        self._last_status = status
        self._figures[{"SUCCESS": "jobs_succeeded", "FAILED": "jobs_failed"}.get(status, "jobs_still_running")] += 1
        return status

    # -- HTTP ---------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> requests.Response:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        with self._pacer.slot(REQUESTS):
            try:
                return self._session.post(
                    self.base_url + path,
                    data=data,
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise error_from_exception(exc, destination=self.label, max_attempts=self.max_retries + 1) from None

    def _check(self, response: requests.Response, step: str, chunk: Sequence[_Operation] = ()) -> None:
        """Raise what a refused step means; return for 2xx."""
        status = response.status_code
        if 200 <= status < 300:
            return
        values = tuple(v for op in chunk for v in raw_values(op.member.change))
        codes = _error_codes(response)
        title = error_title(response, *values)
        if "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE" in codes:
            raise DestinationConfigError(
                f"{self.label}: Google Ads no longer takes Customer Match uploads from customer {self.customer_id} "
                "(CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE): use mode: data_manager (the Data Manager API) "
                "with operating_account_id and audience_id"
            )
        if status == 403:
            raise DestinationConfigError(
                f"{self.label} refused access to customer {self.customer_id} (HTTP 403: {title}): check customer_id "
                f"and login_customer_id, and that the token's Google account can manage them ({self._token_hint})"
            )
        check_response(response, destination=self.label, credentials_hint=self._token_hint, redact_values=values)
        if "INVALID_USER_LIST_ID" in codes or status == 404 and step == "create a job":
            raise DestinationConfigError(
                f"{self.label}: Google Ads has no Customer Match list {self.user_list_id!r} under customer "
                f"{self.customer_id} (HTTP {status}: {title}): check user_list_id"
            )
        if "JOB_ALREADY_STARTED" in codes:
            raise DestinationUnavailable(
                f"{self.label}: the job started before its operations were all added; "
                "the batch will be sent again next run in a new job"
            )
        raise DestinationConfigError(f"{self.label}: Google Ads refused to {step} (HTTP {status}: {title or codes})")


# -- shapes ----------------------------------------------------------------------------------------


def _ads_identifier(entry: dict[str, Any]) -> dict[str, Any]:
    """A Data Manager user identifier as a Google Ads UserIdentifier (one kind each)."""
    if "emailAddress" in entry:
        return {"hashedEmail": entry["emailAddress"]}
    if "phoneNumber" in entry:
        return {"hashedPhoneNumber": entry["phoneNumber"]}
    address = entry["address"]
    return {
        "addressInfo": {
            "hashedFirstName": address["givenName"],
            "hashedLastName": address["familyName"],
            "countryCode": address["regionCode"],
            "postalCode": address["postalCode"],
        }
    }


def _chunks(operations: Sequence[_Operation], limit: int) -> list[tuple[int, list[_Operation]]]:
    """Consecutive runs of operations holding at most ``limit`` identifiers, with their start index."""
    chunks: list[tuple[int, list[_Operation]]] = []
    current: list[_Operation] = []
    start, count = 0, 0
    for index, operation in enumerate(operations):
        size = len(operation.member.identifiers)
        if current and count + size > limit:
            chunks.append((start, current))
            current, start, count = [], index, 0
        current.append(operation)
        count += size
    if current:
        chunks.append((start, current))
    return chunks


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _failures(details: Any) -> list[dict[str, Any]]:
    """The GoogleAdsError entries of every GoogleAdsFailure in ``details``."""
    errors = []
    for detail in details or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(".errors.GoogleAdsFailure"):
            errors += [e for e in detail.get("errors") or [] if isinstance(e, dict)]
    return errors


def _error_codes(response: requests.Response) -> set[str]:
    """Every error code value (``CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE`` …) in an error body."""
    error = _json(response).get("error") or {}
    return {str(value) for e in _failures(error.get("details")) for value in (e.get("errorCode") or {}).values()}


def _partial_failures(response: requests.Response) -> dict[int, tuple[str, str, str]]:
    """operation index -> (error kind, code, message) from a 200's partialFailureError."""
    status = _json(response).get("partialFailureError") or {}
    found: dict[int, tuple[str, str, str]] = {}
    for error in _failures(status.get("details")):
        elements = (error.get("location") or {}).get("fieldPathElements") or []
        first = elements[0] if elements and isinstance(elements[0], dict) else {}
        if first.get("fieldName") != "operations" or not isinstance(first.get("index"), int):
            continue
        ((kind, code),) = (error.get("errorCode") or {"unknownError": "UNKNOWN"}).items()
        found.setdefault(first["index"], (str(kind), str(code), str(error.get("message") or "refused")))
    return found
