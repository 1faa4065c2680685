"""Emulator of Google's Data Manager API for Customer Match audiences (``/datamanager/v1``).

What it enforces, as the published reference and guides describe it (developers.google.com/
data-manager/api: reference/rest/v1, "Send audience members", "Limits and quotas",
"Understand API errors"):

- **auth**: ``Authorization: Bearer <OAuth token>``; anything else is 401 ``UNAUTHENTICATED``
  with Google's body. An operating or login account the token cannot use is 403
  ``PERMISSION_DENIED``.
- **destinations**: ``operatingAccount`` {accountType, accountId} and ``productDestinationId``
  are required; a non-numeric audience id is 400 ``INVALID_USER_LIST_ID``, an unknown one
  404 ``NOT_FOUND``; at most 10 destinations.
- **fast fail**: every member is validated before anything is applied; one invalid member
  rejects the WHOLE request (400 ``INVALID_ARGUMENT``) and nothing is processed. The
  ``google.rpc.BadRequest`` detail names each invalid member by index
  (``audience_members.audience_members[3].user_data.user_identifiers``), unless
  ``name_members=False`` (then only ``audience_members``: the client must find them itself).
- **hashes**: with ``encoding: HEX`` every hashed value is 64-char lower-case hex
  (``INVALID_HEX_ENCODING`` / ``INVALID_SHA256_FORMAT``); with ``BASE64`` standard base64
  of 32 bytes (``INVALID_BASE64_ENCODING``). Raw PII fails these checks. Region and
  postal code are sent in the clear (a hashed postal code is ``INVALID_POSTAL_CODE``).
  ``encoding`` is required for user data.
- **limits**: ≤ 10,000 members a request (``TOO_MANY_AUDIENCE_MEMBERS`` at 10,001),
  1..10 identifiers a member (``NO_IDENTIFIERS_PROVIDED`` / ``TOO_MANY_USER_IDENTIFIERS``),
  each identifier exactly one of emailAddress / phoneNumber / address, an address with all
  of given name, family name, region code and postal code.
- **Customer Match terms and consent** (strict reading): an ingest must carry
  ``termsOfService.customerMatchTermsOfServiceStatus: ACCEPTED`` (else
  ``TERMS_AND_CONDITIONS_NOT_SIGNED``) and consent for both ``adUserData`` and
  ``adPersonalization`` (request level, or on every member); a member whose consent is
  DENIED is accepted but not added (``PROCESSING_ERROR_REASON_DENIED_CONSENT`` in the
  request status). A remove takes neither (the fields are unknown there, so sending them
  is an error, as Google's JSON parser rejects unknown fields).
- **enums** as names or numbers (the official client sends ``$alt=json;enum-encoding=int``
  and numbers; answers follow the same choice).
- **request status**: ``GET /v1/requestStatus:retrieve?requestId=`` answers
  ``PROCESSING`` at the first poll and the outcome from the second on, with
  per-destination record and identifier counts and a match-rate range.
- **quota**: 300 requests a minute and 100,000 a day per project (counted per request);
  over it, 429 ``RESOURCE_EXHAUSTED`` with ``Retry-After``, and ``rate_violations`` counts it.
- **faults** (FaultPlan): ``status``/``throttle`` in Google's error shape; ``reject`` turns
  the request into a whole-request rejection naming the members whose hashed identifiers
  the fault names (``retryable`` ones with reason ``INTERNAL_ERROR``);
  :meth:`fail_processing` makes the next accepted requests end ``FAILED`` unapplied.

State: per audience, the sets of email hashes, phone hashes and address tuples it holds
(hex, whatever encoding the upload used). Accepted requests are applied in the order they
are accepted; a removal removes the identifiers it names.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from destinations.sandbox import google_rpc as rpc
from destinations.sandbox.faults import Fault, RateWindow
from destinations.sandbox.server import Emulator, Reply, Request

SERVICE = "datamanager.googleapis.com"
DEFAULT_TOKEN = "ya29.sandbox-token"
DEFAULT_ACCOUNT_ID = "1234567890"
DEFAULT_MANAGER_ID = "1112223334"
DEFAULT_AUDIENCE_ID = "555"
MAX_MEMBERS = 10_000
MAX_IDENTIFIERS = 10
MAX_DESTINATIONS = 10
REQUESTS_PER_MINUTE = 300
REQUESTS_PER_DAY = 100_000
#: the request status is PROCESSING until this poll (so never done at the first)
POLLS_TO_COMPLETE = 2

ACCOUNT_TYPES = {
    "ACCOUNT_TYPE_UNSPECIFIED": 0,
    "GOOGLE_ADS": 1,
    "DISPLAY_VIDEO_PARTNER": 2,
    "DISPLAY_VIDEO_ADVERTISER": 3,
    "DATA_PARTNER": 4,
    "GOOGLE_ANALYTICS_PROPERTY": 5,
    "GOOGLE_AD_MANAGER_AUDIENCE_LINK": 6,
    "FLOODLIGHT_CONFIG": 7,
    "GOOGLE_AD_MANAGER": 8,
}
CONSENT_STATUSES = {"CONSENT_STATUS_UNSPECIFIED": 0, "CONSENT_GRANTED": 1, "CONSENT_DENIED": 2}
ENCODINGS = {"ENCODING_UNSPECIFIED": 0, "HEX": 1, "BASE64": 2}
TOS_STATUSES = {"TERMS_OF_SERVICE_STATUS_UNSPECIFIED": 0, "ACCEPTED": 1, "REJECTED": 2}
REQUEST_STATUSES = {"REQUEST_STATUS_UNKNOWN": 0, "SUCCESS": 1, "PROCESSING": 2, "FAILED": 3, "PARTIAL_SUCCESS": 4}
MATCH_RATE_RANGES = {
    "MATCH_RATE_RANGE_UNKNOWN": 0,
    "MATCH_RATE_RANGE_NOT_ELIGIBLE": 1,
    "MATCH_RATE_RANGE_LESS_THAN_20": 2,
    "MATCH_RATE_RANGE_20_TO_30": 3,
    "MATCH_RATE_RANGE_31_TO_40": 4,
    "MATCH_RATE_RANGE_41_TO_50": 5,
    "MATCH_RATE_RANGE_51_TO_60": 6,
    "MATCH_RATE_RANGE_61_TO_70": 7,
    "MATCH_RATE_RANGE_71_TO_80": 8,
    "MATCH_RATE_RANGE_81_TO_90": 9,
    "MATCH_RATE_RANGE_91_TO_100": 10,
}
PROCESSING_ERRORS = {
    "PROCESSING_ERROR_REASON_UNSPECIFIED": 0,
    "PROCESSING_ERROR_REASON_DENIED_CONSENT": 4,
    "PROCESSING_ERROR_REASON_NO_CONSENT": 5,
    "PROCESSING_ERROR_REASON_INTERNAL_ERROR": 13,
}

# -- the request messages, for proto3 JSON parsing (unknown fields are errors) ---------------

_ANY = "*"  # a message this emulator does not look inside
#: message -> field (camelCase) -> (message of the field or None for a scalar, repeated?)
_SCHEMA: dict[str, dict[str, tuple[str | None, bool]]] = {
    "IngestAudienceMembersRequest": {
        "destinations": ("Destination", True),
        "audienceMembers": ("AudienceMember", True),
        "consent": ("Consent", False),
        "validateOnly": (None, False),
        "encoding": (None, False),
        "encryptionInfo": (_ANY, False),
        "termsOfService": ("TermsOfService", False),
    },
    "RemoveAudienceMembersRequest": {
        "destinations": ("Destination", True),
        "audienceMembers": ("AudienceMember", True),
        "validateOnly": (None, False),
        "encoding": (None, False),
        "encryptionInfo": (_ANY, False),
    },
    "Destination": {
        "reference": (None, False),
        "loginAccount": ("ProductAccount", False),
        "linkedAccount": ("ProductAccount", False),
        "operatingAccount": ("ProductAccount", False),
        "productDestinationId": (None, False),
    },
    "ProductAccount": {"product": (None, False), "accountId": (None, False), "accountType": (None, False)},
    "AudienceMember": {
        "destinationReferences": (None, True),
        "userData": ("UserData", False),
        "pairData": (_ANY, False),
        "mobileData": (_ANY, False),
        "userIdData": (_ANY, False),
        "ppidData": (_ANY, False),
        "compositeData": (_ANY, False),
        "googleUserIdData": (_ANY, False),
        "partnerProvidedIdData": (_ANY, False),
        "consent": ("Consent", False),
    },
    "UserData": {"userIdentifiers": ("UserIdentifier", True)},
    "UserIdentifier": {"emailAddress": (None, False), "phoneNumber": (None, False), "address": ("AddressInfo", False)},
    "AddressInfo": {
        "givenName": (None, False),
        "familyName": (None, False),
        "regionCode": (None, False),
        "postalCode": (None, False),
        "addressLine": (None, False),
        "city": (None, False),
        "administrativeArea": (None, False),
    },
    "Consent": {"adUserData": (None, False), "adPersonalization": (None, False)},
    "TermsOfService": {"customerMatchTermsOfServiceStatus": (None, False)},
}

_HEX = re.compile(r"[0-9a-fA-F]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_REGION = re.compile(r"[A-Z]{2}")
_MEMBER_FIELDS = ("pairData", "mobileData", "userIdData", "ppidData", "compositeData", "googleUserIdData")


class _Refused(Exception):
    """A request refused as a whole; carries the reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _invalid(field_path: str, reason: str, description: str, *, status: int = 400) -> _Refused:
    details = [rpc.error_info(reason if status != 400 else "INVALID_ARGUMENT", SERVICE)]
    details.append(rpc.bad_request([{"field": field_path, "description": description, "reason": reason}]))
    return _Refused(rpc.error_reply(status, "There was a problem with the request.", details))


def _parse(value: Any, message: str, path: str) -> dict[str, Any]:
    """A JSON object read as ``message``: snake_case keys accepted, unknown fields refused."""
    if not isinstance(value, dict):
        raise _json_error(f"Invalid value at '{path or message}': expected an object")
    fields = _SCHEMA[message]
    parsed: dict[str, Any] = {}
    for key, item in value.items():
        name = rpc.camel(key)
        if name not in fields:
            where = f" at '{path}'" if path else ""
            raise _json_error(f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.', path)
        child, repeated = fields[name]
        item_path = f"{path}.{rpc.snake(name)}" if path else rpc.snake(name)
        if repeated:
            if not isinstance(item, list):
                raise _json_error(f"Invalid value at '{item_path}': expected a list", item_path)
            if child not in (None, _ANY):
                item = [_parse(entry, child, f"{item_path}[{i}]") for i, entry in enumerate(item)]
        elif child not in (None, _ANY) and item is not None:
            item = _parse(item, child, item_path)
        parsed[name] = item
    return parsed


def _json_error(description: str, field_path: str = "") -> _Refused:
    return _Refused(
        rpc.error_reply(
            400,
            description,
            [rpc.bad_request([{"field": field_path, "description": description}])],
        )
    )


@dataclass
class Audience:
    """A Customer Match list: what Google holds for it, as hex hashes."""

    audience_id: str
    account_id: str
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    addresses: set[tuple[str, str, str, str]] = field(default_factory=set)

    def snapshot(self) -> dict[str, Any]:
        return {
            "operating_account_id": self.account_id,
            "emails": sorted(self.emails),
            "phones": sorted(self.phones),
            "addresses": [list(address) for address in sorted(self.addresses)],
        }


@dataclass
class _DestinationOutcome:
    destination: dict[str, Any]
    status: str
    records: int
    identifiers: int
    matched: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestionRequest:
    """One accepted ingest or remove, with what its status will say."""

    request_id: str
    kind: str  # "ingest" | "remove"
    outcomes: list[_DestinationOutcome]
    polls: int = 0


class DataManagerEmulator(Emulator):
    """The Data Manager API under ``/datamanager/v1`` (see the module docstring)."""

    prefix = "datamanager"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        accounts: Mapping[str, str] | None = None,
        audiences: Mapping[str, str] | None = None,
        managers: Mapping[str, set[str]] | None = None,
        name_members: bool = True,
        requests_per_minute: RateWindow | None = None,
        requests_per_day: RateWindow | None = None,
        polls_to_complete: int = POLLS_TO_COMPLETE,
    ) -> None:
        """``accounts`` maps operating account id -> account type; ``audiences`` audience id ->
        owning account id; ``managers`` login (manager) account id -> the accounts it may operate."""
        super().__init__()
        self.token = token
        self.accounts = dict(accounts or {DEFAULT_ACCOUNT_ID: "GOOGLE_ADS"})
        self.audiences = {
            audience_id: Audience(audience_id, account_id)
            for audience_id, account_id in (audiences or {DEFAULT_AUDIENCE_ID: DEFAULT_ACCOUNT_ID}).items()
        }
        self.managers = {
            key: set(value) for key, value in (managers or {DEFAULT_MANAGER_ID: set(self.accounts)}).items()
        }
        self.name_members = name_members
        self.minute = requests_per_minute or RateWindow(REQUESTS_PER_MINUTE, 60.0)
        self.day = requests_per_day or RateWindow(REQUESTS_PER_DAY, 86_400.0)
        self.polls_to_complete = polls_to_complete
        self.rate_violations = 0
        self.ingestion_requests: dict[str, IngestionRequest] = {}
        #: requests refused as a whole because a member was invalid (fast fail)
        self.rejected_requests = 0
        #: every member accepted, in order: (kind, frozenset of its hex identifiers) — lets a
        #: test check that nothing accepted was sent twice
        self.accepted_members: list[tuple[str, frozenset[str]]] = []
        self._fail_processing: list[str] = []
        self._ids = itertools.count(1)

    # -- test controls ------------------------------------------------------------------

    def fail_processing(self, times: int = 1, reason: str = "PROCESSING_ERROR_REASON_INTERNAL_ERROR") -> None:
        """The next ``times`` accepted requests are not applied and end ``FAILED`` with ``reason``."""
        with self.lock:
            self._fail_processing.extend([reason] * times)

    # -- Emulator --------------------------------------------------------------------------

    def describe(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": f"{base_url}/v1",
            "api_endpoint": base_url,
            "access_token": self.token,
            "operating_accounts": [{"account_type": kind, "account_id": key} for key, kind in self.accounts.items()],
            "audiences": [
                {"audience_id": audience.audience_id, "operating_account_id": audience.account_id}
                for audience in self.audiences.values()
            ],
        }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "audiences": {key: audience.snapshot() for key, audience in self.audiences.items()},
                "requests": {
                    "ingest": sum(1 for r in self.ingestion_requests.values() if r.kind == "ingest"),
                    "remove": sum(1 for r in self.ingestion_requests.values() if r.kind == "remove"),
                    "rejected": self.rejected_requests,
                },
                "rate_violations": self.rate_violations,
            }

    def audience_sizes(self) -> dict[str, int]:
        """Email hashes each audience holds (the demo's count of people)."""
        with self.lock:
            return {f"audience {key}": len(audience.emails) for key, audience in self.audiences.items()}

    def admit(self, request: Request) -> Reply | None:
        allowed, wait = self.minute.admit()
        if allowed:
            allowed, wait = self.day.admit()
        if allowed:
            return None
        with self.lock:
            self.rate_violations += 1
        throttle = Fault.throttle(retry_after=max(1, math.ceil(wait)))
        return rpc.fault_reply(throttle, service=SERVICE)

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        return rpc.fault_reply(fault, service=SERVICE)

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        if rpc.bearer_token(request) != self.token:
            return rpc.unauthenticated(SERVICE)
        route = (request.method, request.path)
        try:
            if route == ("POST", "/v1/audienceMembers:ingest"):
                return self._ingest(request, fault, "ingest")
            if route == ("POST", "/v1/audienceMembers:remove"):
                return self._ingest(request, fault, "remove")
            if route == ("GET", "/v1/requestStatus:retrieve"):
                return self._status(request)
        except _Refused as refused:
            return refused.reply
        return rpc.error_reply(404, f"Method not found: {request.method} {request.path}")

    # -- ingest / remove -------------------------------------------------------------------

    def _ingest(self, request: Request, fault: Fault | None, kind: str) -> Reply:
        try:
            raw = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _json_error("Invalid JSON payload received.") from None
        message = "IngestAudienceMembersRequest" if kind == "ingest" else "RemoveAudienceMembersRequest"
        body = _parse(raw, message, "")
        destinations = self._destinations(body)
        encoding = rpc.enum_value(body.get("encoding", 0), ENCODINGS)
        if encoding is None:
            raise _invalid("encoding", "INVALID_ENUM_VALUE", "Enum value cannot be used.")
        if encoding == "ENCODING_UNSPECIFIED":
            raise _invalid("encoding", "REQUIRED_FIELD_MISSING", "Encoding is required for user data.")
        members = body.get("audienceMembers") or []
        if not members:
            raise _invalid("audience_members", "REQUIRED_FIELD_MISSING", "Required field is missing.")
        if len(members) > MAX_MEMBERS:
            raise _invalid(
                "audience_members",
                "TOO_MANY_AUDIENCE_MEMBERS",
                f"Maximum number of audience members allowed per request is {MAX_MEMBERS:,}.",
            )
        request_consent = None
        if kind == "ingest":
            self._check_terms(body)
            request_consent = self._consent(body.get("consent"), "consent")
        violations: list[dict[str, str]] = []
        parsed: list[tuple[frozenset[str], bool]] = []
        for index, member in enumerate(members):
            identifiers, problems = self._member(member, index, encoding)
            consent = request_consent
            if kind == "ingest":
                member_consent = self._consent(member.get("consent"), f"audience_members[{index}].consent")
                consent = member_consent or request_consent
                if consent is None and not problems:
                    problems.append(
                        self._violation(
                            index, "consent", "REQUIRED_FIELD_MISSING", "Consent is required for Customer Match."
                        )
                    )
            if fault is not None and not problems and any(fault.rejects(key[2:]) for key in identifiers):
                reason = "INTERNAL_ERROR" if fault.retryable else "INVALID_AUDIENCE_MEMBER"
                problems.append(self._violation(index, "", reason, fault.error))
            violations += problems
            parsed.append((identifiers, consent is None or "CONSENT_DENIED" not in consent))
        if violations:
            with self.lock:
                self.rejected_requests += 1
            details = [rpc.error_info("INVALID_ARGUMENT", SERVICE), rpc.bad_request(violations)]
            return rpc.error_reply(400, "There was a problem with the request.", details)
        request_id = self._apply(kind, destinations, parsed, validate_only=bool(body.get("validateOnly")))
        return Reply.json(200, {"requestId": request_id})

    def _destinations(self, body: dict[str, Any]) -> list[tuple[dict[str, Any], Audience]]:
        destinations = body.get("destinations") or []
        if not destinations:
            raise _invalid("destinations", "REQUIRED_FIELD_MISSING", "Required field is missing.")
        if len(destinations) > MAX_DESTINATIONS:
            raise _invalid(
                "destinations", "TOO_MANY_DESTINATIONS", "Maximum number of destinations allowed per request is 10."
            )
        resolved = []
        for index, destination in enumerate(destinations):
            where = f"destinations[{index}]"
            operating = destination.get("operatingAccount") or {}
            account_id = str(operating.get("accountId") or "")
            account_type = rpc.enum_value(operating.get("accountType", 0), ACCOUNT_TYPES)
            if not account_id:
                raise _invalid(f"{where}.operating_account.account_id", "REQUIRED_FIELD_MISSING", "Required field.")
            if account_type in (None, "ACCOUNT_TYPE_UNSPECIFIED"):
                raise _invalid(f"{where}.operating_account.account_type", "INVALID_ENUM_VALUE", "Enum value needed.")
            if self.accounts.get(account_id) != account_type:
                raise _permission_denied()
            login = destination.get("loginAccount")
            if login:
                login_id = str(login.get("accountId") or "")
                if login_id != account_id and account_id not in self.managers.get(login_id, set()):
                    raise _permission_denied()
            audience_id = str(destination.get("productDestinationId") or "")
            if not audience_id:
                raise _invalid(f"{where}.product_destination_id", "REQUIRED_FIELD_MISSING", "Required field.")
            if not audience_id.isdigit():
                raise _invalid(f"{where}.product_destination_id", "INVALID_USER_LIST_ID", "User list is not valid.")
            audience = self.audiences.get(audience_id)
            if audience is None or audience.account_id != account_id:
                raise _Refused(
                    rpc.error_reply(404, "Requested entity was not found.", [rpc.error_info("NOT_FOUND", SERVICE)])
                )
            resolved.append((destination, audience))
        return resolved

    def _check_terms(self, body: dict[str, Any]) -> None:
        terms = body.get("termsOfService") or {}
        status = rpc.enum_value(terms.get("customerMatchTermsOfServiceStatus", 0), TOS_STATUSES)
        if status != "ACCEPTED":
            raise _invalid(
                "terms_of_service",
                "TERMS_AND_CONDITIONS_NOT_SIGNED",
                "Required terms and conditions are not accepted.",
            )

    def _consent(self, consent: Any, where: str) -> tuple[str, str] | None:
        """(adUserData, adPersonalization) names, None when absent; both must be given."""
        if not consent:
            return None
        values = []
        for name in ("adUserData", "adPersonalization"):
            value = rpc.enum_value(consent.get(name, 0), CONSENT_STATUSES)
            if value in (None, "CONSENT_STATUS_UNSPECIFIED"):
                raise _invalid(
                    f"{where}.{rpc.snake(name)}", "REQUIRED_FIELD_MISSING", "Both consent fields are required."
                )
            values.append(value)
        return values[0], values[1]

    def _violation(self, index: int, suffix: str, reason: str, description: str) -> dict[str, str]:
        if self.name_members:
            path = f"audience_members.audience_members[{index}]" + (f".{suffix}" if suffix else "")
        else:
            path = "audience_members"
        return {"field": path, "description": description, "reason": reason}

    def _member(self, member: dict[str, Any], index: int, encoding: str) -> tuple[frozenset[str], list[dict]]:
        """The member's identifiers as hex keys (``e:…``, ``p:…``, ``a:…``), and its problems."""
        if any(member.get(name) for name in _MEMBER_FIELDS) or not member.get("userData"):
            reason = "This audience member is not valid (Customer Match takes user data)."
            return frozenset(), [self._violation(index, "", "INVALID_AUDIENCE_MEMBER", reason)]
        identifiers = member["userData"].get("userIdentifiers") or []
        where = "user_data.user_identifiers"
        if not identifiers:
            return frozenset(), [self._violation(index, where, "NO_IDENTIFIERS_PROVIDED", "No identifiers provided.")]
        if len(identifiers) > MAX_IDENTIFIERS:
            reason = f"Maximum number of user identifiers allowed per audience member is {MAX_IDENTIFIERS}."
            return frozenset(), [self._violation(index, where, "TOO_MANY_USER_IDENTIFIERS", reason)]
        keys: set[str] = set()
        problems: list[dict[str, str]] = []
        for identifier in identifiers:
            present = [name for name in ("emailAddress", "phoneNumber", "address") if identifier.get(name)]
            if len(present) != 1:
                problems.append(
                    self._violation(index, where, "INVALID_FORMAT", "Each identifier holds exactly one kind.")
                )
                continue
            kind = present[0]
            if kind == "address":
                key, problem = _address(identifier["address"], encoding)
            else:
                label = "Email" if kind == "emailAddress" else "Phone number"
                key, problem = _hashed(identifier[kind], encoding, label)
                key = f"{'e' if kind == 'emailAddress' else 'p'}:{key}" if key else None
            if problem:
                problems.append(self._violation(index, where, *problem))
            elif key:
                keys.add(key)
        return frozenset(keys), problems

    def _apply(
        self,
        kind: str,
        destinations: list[tuple[dict[str, Any], Audience]],
        members: list[tuple[frozenset[str], bool]],
        *,
        validate_only: bool,
    ) -> str:
        with self.lock:
            request_id = f"{next(self._ids):06d}-{uuid.uuid4().hex[:16]}"
            failing = None if validate_only or not self._fail_processing else self._fail_processing.pop(0)
            outcomes = []
            for destination, audience in destinations:
                identifiers = sum(len(keys) for keys, _ in members)
                outcome = _DestinationOutcome(destination, "SUCCESS", len(members), identifiers)
                if failing:
                    outcome.status = "FAILED"
                    outcome.errors[failing] = len(members)
                    outcomes.append(outcome)
                    continue
                for keys, consented in members:
                    if not consented:
                        outcome.errors["PROCESSING_ERROR_REASON_DENIED_CONSENT"] = (
                            outcome.errors.get("PROCESSING_ERROR_REASON_DENIED_CONSENT", 0) + 1
                        )
                        continue
                    if any(key[0] in "ep" for key in keys):
                        outcome.matched += 1
                    if not validate_only:
                        _change(audience, keys, add=kind == "ingest")
                        self.accepted_members.append((kind, keys))
                if outcome.errors:
                    outcome.status = "FAILED" if sum(outcome.errors.values()) == len(members) else "PARTIAL_SUCCESS"
                outcomes.append(outcome)
            self.ingestion_requests[request_id] = IngestionRequest(request_id, kind, outcomes)
            return request_id

    # -- request status ------------------------------------------------------------------------

    def _status(self, request: Request) -> Reply:
        request_id = request.param("requestId") or request.param("request_id")
        if not request_id:
            raise _invalid("request_id", "REQUIRED_FIELD_MISSING", "Required field is missing.")
        as_int = rpc.wants_int_enums(request)
        with self.lock:
            found = self.ingestion_requests.get(request_id)
            if found is None:
                raise _invalid("request_id", "INVALID_REQUEST_ID", "The request ID is not valid.")
            found.polls += 1
            done = found.polls >= self.polls_to_complete
            statuses = [_status_json(found.kind, outcome, done, as_int) for outcome in found.outcomes]
        return Reply.json(200, {"requestStatusPerDestination": statuses})


def _permission_denied() -> _Refused:
    return _Refused(
        rpc.error_reply(403, "The caller does not have permission", [rpc.error_info("PERMISSION_DENIED", SERVICE)])
    )


def _hashed(value: Any, encoding: str, label: str) -> tuple[str | None, tuple[str, str] | None]:
    """(hex digest, None) for a valid hashed value, else (None, (reason, description))."""
    if not isinstance(value, str):
        return None, ("INVALID_FORMAT", f"{label} must be a string.")
    if encoding == "HEX":
        if not _HEX.fullmatch(value):
            return None, ("INVALID_HEX_ENCODING", f"{label} is not hex encoded.")
        if not _SHA256_HEX.fullmatch(value):
            return None, ("INVALID_SHA256_FORMAT", f"{label} is not a lower-case hex SHA-256 hash.")
        return value, None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None, ("INVALID_BASE64_ENCODING", f"{label} is not base64 encoded.")
    if len(digest) != 32:
        return None, ("INVALID_SHA256_FORMAT", f"{label} is not a SHA-256 hash.")
    return digest.hex(), None


def _address(address: dict[str, Any], encoding: str) -> tuple[str | None, tuple[str, str] | None]:
    parts = []
    for name, label in (("givenName", "Given name"), ("familyName", "Family name")):
        if not address.get(name):
            return None, ("REQUIRED_FIELD_MISSING", f"{label} is required in an address.")
        digest, problem = _hashed(address[name], encoding, label)
        if problem:
            return None, problem
        parts.append(digest)
    region = address.get("regionCode")
    if not region:
        return None, ("REQUIRED_FIELD_MISSING", "Region code is required in an address.")
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        return None, ("INVALID_REGION_CODE", "Region code must be a 2-letter upper-case ISO 3166-1 code.")
    postal = address.get("postalCode")
    if not postal:
        return None, ("REQUIRED_FIELD_MISSING", "Postal code is required in an address.")
    if not isinstance(postal, str) or len(postal) > 20 or _SHA256_HEX.fullmatch(postal) or "@" in postal:
        return None, ("INVALID_POSTAL_CODE", "Postal code is not valid (it is sent unhashed).")
    return "a:" + "|".join([*parts, region, postal]), None


def _change(audience: Audience, keys: frozenset[str], *, add: bool) -> None:
    for key in keys:
        kind, value = key[0], key[2:]
        if kind == "a":
            given, family, region, postal = value.split("|", 3)
            target: set = audience.addresses
            item: Any = (given, family, region, postal)
        else:
            target = audience.emails if kind == "e" else audience.phones
            item = value
        if add:
            target.add(item)
        else:
            target.discard(item)


def _match_rate(matched: int, records: int) -> str:
    """The emulator has no Google users: a member carrying an email or phone counts as matched."""
    if records == 0:
        return "MATCH_RATE_RANGE_NOT_ELIGIBLE"
    share = 100 * matched / records
    if share < 20:
        return "MATCH_RATE_RANGE_LESS_THAN_20"
    for low, name in (
        (91, "MATCH_RATE_RANGE_91_TO_100"),
        (81, "MATCH_RATE_RANGE_81_TO_90"),
        (71, "MATCH_RATE_RANGE_71_TO_80"),
        (61, "MATCH_RATE_RANGE_61_TO_70"),
        (51, "MATCH_RATE_RANGE_51_TO_60"),
        (41, "MATCH_RATE_RANGE_41_TO_50"),
        (31, "MATCH_RATE_RANGE_31_TO_40"),
    ):
        if share >= low:
            return name
    return "MATCH_RATE_RANGE_20_TO_30"


def _destination_json(destination: dict[str, Any], as_int: bool) -> dict[str, Any]:
    """The destination as the request named it, enums in the client's chosen encoding."""
    out = dict(destination)
    for name in ("operatingAccount", "loginAccount", "linkedAccount"):
        account = destination.get(name)
        if account:
            kind = rpc.enum_value(account.get("accountType", 0), ACCOUNT_TYPES) or "ACCOUNT_TYPE_UNSPECIFIED"
            out[name] = {**account, "accountType": rpc.enum_out(kind, ACCOUNT_TYPES, as_int)}
    return out


def _status_json(kind: str, outcome: _DestinationOutcome, done: bool, as_int: bool) -> dict[str, Any]:
    status = outcome.status if done else "PROCESSING"
    body: dict[str, Any] = {
        "destination": _destination_json(outcome.destination, as_int),
        "requestStatus": rpc.enum_out(status, REQUEST_STATUSES, as_int),
    }
    counts = {"recordCount": str(outcome.records), "userIdentifierCount": str(outcome.identifiers)}
    if kind == "ingest":
        rate = _match_rate(outcome.matched, outcome.records) if done else "MATCH_RATE_RANGE_UNKNOWN"
        counts["uploadMatchRateRange"] = rpc.enum_out(rate, MATCH_RATE_RANGES, as_int)
        body["audienceMembersIngestionStatus"] = {"userDataIngestionStatus": counts}
    else:
        body["audienceMembersRemovalStatus"] = {"userDataRemovalStatus": counts}
    if done and outcome.errors:
        body["errorInfo"] = {
            "errorCounts": [
                {"recordCount": str(count), "reason": rpc.enum_out(reason, PROCESSING_ERRORS, as_int)}
                for reason, count in sorted(outcome.errors.items())
            ]
        }
    return body
