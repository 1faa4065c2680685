"""What Google's APIs share on the wire, for the Data Manager and Google Ads emulators.

Google REST APIs answer errors in one shape (google.rpc.Status as JSON):
``{"error": {"code": <HTTP status>, "message", "status": <canonical code name>, "details": [...]}}``
where each detail carries an ``@type`` (``google.rpc.ErrorInfo``, ``google.rpc.BadRequest``,
``google.rpc.RetryInfo``, Google Ads' ``GoogleAdsFailure``). Both APIs take an OAuth bearer
token and, from the official clients, ``$alt=json;enum-encoding=int`` (enums as numbers).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from destinations.sandbox.faults import Fault
from destinations.sandbox.server import Reply, Request

#: HTTP status -> canonical google.rpc.Code name (google/rpc/code.proto's HTTP mapping)
STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: canonical code name -> google.rpc.Code number (for a Status inside a 200 body)
CODE_NUMBERS: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def error_reply(
    code: int,
    message: str,
    details: Sequence[Mapping[str, Any]] = (),
    *,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A Google API error answer: HTTP ``code`` with the google.rpc.Status body."""
    body: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        body["details"] = list(details)
    return Reply.json(code, {"error": body}, headers=headers)


def error_info(reason: str, domain: str, **metadata: str) -> dict[str, Any]:
    info: dict[str, Any] = {"@type": ERROR_INFO, "reason": reason, "domain": domain}
    if metadata:
        info["metadata"] = dict(metadata)
    return info


def bad_request(violations: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """A google.rpc.BadRequest detail: ``[{"field", "description", "reason"}]``."""
    return {"@type": BAD_REQUEST, "fieldViolations": [dict(v) for v in violations]}


def unauthenticated(service: str) -> Reply:
    """What a Google API answers a missing, malformed or unknown bearer token."""
    return error_reply(
        401,
        UNAUTHENTICATED_MESSAGE,
        [error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", "googleapis.com", service=service)],
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def bearer_token(request: Request) -> str | None:
    """The OAuth access token of ``Authorization: Bearer <token>``, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def wants_int_enums(request: Request) -> bool:
    """Whether the client asked for enums as numbers (``$alt=json;enum-encoding=int``)."""
    return "enum-encoding=int" in (request.param("$alt") or "")


def fault_reply(fault: Fault, *, service: str) -> Reply:
    """The Google answer for an injected status or throttle fault.

    Throttling is HTTP 429 ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` and a
    ``Retry-After`` header carrying the same delay."""
    if fault.kind == "throttle":
        delay = fault.retry_after or "1"
        return error_reply(
            429,
            f"Quota exceeded for quota metric 'Requests' of service '{service}'.",
            [
                error_info("RATE_LIMIT_EXCEEDED", "googleapis.com", service=service),
                {"@type": RETRY_INFO, "retryDelay": f"{_seconds(delay)}s"},
            ],
            headers={"Retry-After": delay},
        )
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
    return error_reply(fault.code, fault.title, headers=headers)


def _seconds(value: str) -> int:
    try:
        return max(0, int(float(value)))
    except ValueError:
        return 1


_CAMEL_PART = re.compile(r"_([a-z0-9])")


@functools.lru_cache(maxsize=512)
def camel(name: str) -> str:
    """``audience_members`` -> ``audienceMembers`` (proto3 JSON accepts both spellings)."""
    return _CAMEL_PART.sub(lambda m: m.group(1).upper(), name)


@functools.lru_cache(maxsize=512)
def snake(name: str) -> str:
    """``audienceMembers`` -> ``audience_members`` (the spelling field paths use)."""
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def enum_value(value: Any, names: Mapping[str, int]) -> str | None:
    """An enum given by name or number (proto3 JSON accepts both) as its name; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        for name, number in names.items():
            if number == value:
                return name
        return None
    if isinstance(value, str) and value in names:
        return value
    return None


def enum_out(name: str, names: Mapping[str, int], as_int: bool) -> str | int:
    return names[name] if as_int else name
