"""Meta Marketing API emulator: Custom Audiences, as the Graph API answers them.

Served under ``/meta`` by :class:`destinations.sandbox.server.SandboxServer`; a connector
(or the official ``facebook-business`` SDK, with ``api._session.GRAPH`` set to the base URL)
talks to ``<origin>/meta/v27.0/…`` exactly as it would to ``https://graph.facebook.com``.

What it enforces, each in the Graph API's own error shape
(``{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}``,
HTTP 400 — the status says little, the ``code`` says what happened):

- the API version: v27.0 and v26.0 are served; an older one is Meta's 2635 "deprecated
  version of the Ads API", anything else an unknown path (2500);
- the access token, in the query string (the SDK puts it there, POST included): missing
  → 104, wrong → 190 with ``WWW-Authenticate: OAuth "Facebook Platform" "invalid_token"``;
  with an app secret configured, ``appsecret_proof`` = HMAC-SHA256(app secret, token) is
  required (code 100 otherwise);
- ``POST /{audience_id}/users`` (add) with form-encoded params whose values are JSON text
  (``payload=…&session=…``), ``DELETE /{audience_id}/users`` (remove) with every param in
  the query; ``payload`` = ``{"schema", "data", "is_raw"}``, at most 10,000 rows (10,001 →
  code 100), each row exactly as many values as the schema (code 100 otherwise);
- hashed keys (EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, …) must be 64-character
  lower-case hex or ``""``; the SHA-256 of the empty string (which the SDK sends for an
  unknown value) counts as empty. Anything else — raw PII — makes the row an *invalid
  entry*: counted in ``num_invalid_entries``, shown in ``invalid_entry_samples`` (the
  offending value → why), and not applied. So does a row with no identifier at all.
  EXTERN_ID and MADID are taken in the clear;
- sessions: ``batch_seq`` never goes back within a session (the same number again is the
  same batch re-sent, and is accepted), and nothing follows a ``last_batch_flag`` batch;
- an unknown audience → code 100, subcode 33 ("Unsupported post request. Object with ID …
  does not exist …"); an audience flagged with ``operation_status`` 471 refuses membership
  edits (code 100, subcode 1713230); an audience set to refuse removals while small answers
  removals with 2650 "audience size too low";
- ``GET /{audience_id}/`` (trailing slash, as the SDK sends it) with ``fields=`` →
  ``approximate_count_lower_bound`` / ``approximate_count_upper_bound`` / ``operation_status``.
  The Graph API has no member list: :meth:`MetaEmulator.snapshot` is the test's view.

An audience is a set of people: each added row is stored as its tuple of (schema key →
value); a removal row removes every stored member sharing one of its identifying values
(EMAIL, PHONE, EXTERN_ID, MADID), or, for a row with none of those, every member holding
all of its values. Re-adding or re-removing is harmless.

Faults (``self.faults``) come out in Meta's shapes: ``throttle`` is HTTP 400 with code
80003 and an ``X-Business-Use-Case-Usage`` header whose ``estimated_time_to_regain_access``
is in minutes (``minute_seconds`` shrinks a minute for tests); ``status`` is the HTTP
status with a Graph error body; ``reject`` counts the matching rows as invalid entries
with the fault's words as the sample's reason. A rate window (``rate_limit``) answers
over-limit requests with the same throttle and counts them in ``rate_violations``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from destinations.identifiers import EMPTY_SHA256, is_sha256_hex
from destinations.sandbox.faults import Fault, RateWindow
from destinations.sandbox.server import Emulator, Reply, Request

API_VERSIONS = ("v27.0", "v26.0")
LATEST_VERSION = API_VERSIONS[0]
#: the demo audience every emulator starts with (destinations.yml's demo connection names it)
DEFAULT_AUDIENCE_ID = "23850000000000001"
DEFAULT_AUDIENCE_NAME = "CDP sandbox audience"
SANDBOX_ACCESS_TOKEN = "EAAsandboxMetaToken0000000000000000"
#: the ad account the usage header reports against (any id; Meta keys the header by business)
SANDBOX_BUSINESS_ID = "1234567890123456"
MAX_ROWS = 10_000
#: invalid_entry_samples holds at most this many samples (the rest are only counted)
MAX_SAMPLES = 10

#: keys whose values must be SHA-256 hashes
HASHED_KEYS = frozenset(
    {"EMAIL", "PHONE", "FN", "LN", "FI", "CT", "ST", "ZIP", "COUNTRY", "GEN", "DOBY", "DOBM", "DOBD"}
)
#: keys taken in the clear
CLEAR_KEYS = frozenset({"EXTERN_ID", "MADID"})
#: values that single out a person: a removal matches stored members on these
IDENTIFYING_KEYS = frozenset({"EMAIL", "PHONE", "EXTERN_ID", "MADID"})
#: single-key schemas (a string, with ``data`` a flat list) and the key each stands for
SINGLE_KEY_SCHEMAS = {"EMAIL_SHA256": "EMAIL", "PHONE_SHA256": "PHONE", "MOBILE_ADVERTISER_ID": "MADID"}

THROTTLE_CODE = 80003
THROTTLE_MESSAGE = (
    "(#80003) There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
    "please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#custom-audience."
)
UNKNOWN_OBJECT = (
    "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing "
    "permissions, or does not support this operation. Please read the Graph API documentation at "
    "https://developers.facebook.com/docs/graph-api"
)
SIZE_TOO_LOW = "(#2650) Failed to update the custom audience: audience size too low to remove users"

Member = tuple[tuple[str, str], ...]


def graph_error(
    message: str,
    code: int,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
    transient: bool = False,
    user_title: str | None = None,
    user_message: str | None = None,
) -> dict[str, Any]:
    """A Graph API error body."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_message is not None:
        error["error_user_msg"] = user_message
    error["fbtrace_id"] = "A" + secrets.token_hex(10)
    return {"error": error}


def usage_header(minutes: int, *, call_count: int = 100) -> dict[str, str]:
    """``X-Business-Use-Case-Usage``: how much of the custom-audience budget is used, and
    (when throttled) the minutes until calls are accepted again."""
    usage = {
        SANDBOX_BUSINESS_ID: [
            {
                "type": "custom_audience",
                "call_count": call_count,
                "total_cputime": min(call_count, 100),
                "total_time": min(call_count, 100),
                "estimated_time_to_regain_access": minutes,
            }
        ]
    }
    return {"X-Business-Use-Case-Usage": json.dumps(usage, separators=(",", ":"))}


class _Refused(Exception):
    """A request answered with a Graph error (raised inside the handler, turned into a Reply)."""

    def __init__(self, body: dict[str, Any], status: int = 400, headers: Mapping[str, str] | None = None):
        super().__init__(body["error"]["message"])
        self.reply = Reply.json(status, body, headers=headers)


def _bad_parameter(message: str, *, subcode: int | None = None) -> _Refused:
    return _Refused(graph_error(f"(#100) {message}", 100, subcode=subcode))


@dataclass
class _Session:
    last_seq: int
    closed: bool


@dataclass
class Audience:
    """One customer-file custom audience: a set of members, each the tuple of its values."""

    audience_id: str
    name: str = DEFAULT_AUDIENCE_NAME
    #: 200 Normal; 471 flagged (membership edits refused until resolved)
    operation_status: int = 200
    #: removals are refused ("audience size too low") while it holds fewer members than this
    refuse_removals_below: int = 0
    members: dict[Member, None] = field(default_factory=dict)
    #: (identifying key, value) -> members holding it
    index: dict[tuple[str, str], set[Member]] = field(default_factory=dict)
    sessions: dict[int, _Session] = field(default_factory=dict)

    def add(self, member: Member) -> None:
        if member in self.members:
            return
        self.members[member] = None
        for pair in member:
            if pair[0] in IDENTIFYING_KEYS:
                self.index.setdefault(pair, set()).add(member)

    def remove(self, row: Member) -> int:
        """Remove every member this removal row names; how many were removed."""
        identifying = [pair for pair in row if pair[0] in IDENTIFYING_KEYS]
        if identifying:
            doomed = set().union(*(self.index.get(pair, set()) for pair in identifying))
        else:
            wanted = set(row)
            doomed = {member for member in self.members if wanted <= set(member)}
        for member in doomed:
            del self.members[member]
            for pair in member:
                if pair[0] in IDENTIFYING_KEYS:
                    holders = self.index.get(pair)
                    if holders is not None:
                        holders.discard(member)
                        if not holders:
                            del self.index[pair]
        return len(doomed)

    def values(self, key: str) -> set[str]:
        """Every value stored under ``key`` (EMAIL → the hashes of every member's email)."""
        return {value for member in self.members for k, value in member if k == key}


@dataclass
class _Row:
    """One ``data`` row read against the schema: its member tuple, or why it is invalid."""

    member: Member
    invalid: tuple[str, str] | None = None  # (the offending value, why)


class MetaEmulator(Emulator):
    """Meta's Graph API for customer-file custom audiences (see the module docstring)."""

    prefix = "meta"

    def __init__(
        self,
        *,
        access_token: str = SANDBOX_ACCESS_TOKEN,
        app_secret: str | None = None,
        audiences: Iterable[str] = (DEFAULT_AUDIENCE_ID,),
        minute_seconds: float = 60.0,
        rate_limit: RateWindow | None = None,
        max_samples: int = MAX_SAMPLES,
    ) -> None:
        """``minute_seconds`` is how long one minute of ``estimated_time_to_regain_access``
        lasts (tests shrink it so a throttle of "1 minute" is waited out in a second)."""
        super().__init__()
        self.access_token = access_token
        self.app_secret = app_secret
        self.minute_seconds = minute_seconds
        self.rate_limit = rate_limit
        self.max_samples = max_samples
        self.audiences: dict[str, Audience] = {}
        for audience_id in audiences:
            self.add_audience(audience_id)
        #: requests refused because they exceeded ``rate_limit``
        self.rate_violations = 0
        #: rows received and rows counted invalid, over every /users request
        self.received = 0
        self.invalid_entries = 0

    # -- set-up a test can do ------------------------------------------------------------

    def add_audience(
        self,
        audience_id: str,
        *,
        name: str = DEFAULT_AUDIENCE_NAME,
        operation_status: int = 200,
        refuse_removals_below: int = 0,
    ) -> Audience:
        with self.lock:
            audience = Audience(audience_id, name, operation_status, refuse_removals_below)
            self.audiences[audience_id] = audience
            return audience

    def audience(self, audience_id: str = DEFAULT_AUDIENCE_ID) -> Audience:
        return self.audiences[audience_id]

    def emails(self, audience_id: str = DEFAULT_AUDIENCE_ID) -> set[str]:
        """The EMAIL hashes the audience holds."""
        with self.lock:
            return self.audiences[audience_id].values("EMAIL")

    def appsecret_proof(self, token: str | None = None) -> str:
        if self.app_secret is None:
            raise ValueError("this emulator has no app secret")
        key = self.app_secret.encode("utf-8")
        return hmac.new(key, (token or self.access_token).encode("utf-8"), hashlib.sha256).hexdigest()

    # -- Emulator --------------------------------------------------------------------------

    def describe(self, base_url: str) -> dict[str, Any]:
        """For ``cdp sandbox --ready-file``: the SDK's GRAPH URL is ``base_url``."""
        described: dict[str, Any] = {
            "base_url": base_url,
            "api_version": LATEST_VERSION,
            "api_versions": list(API_VERSIONS),
            "access_token": self.access_token,
            "audiences": [{"id": a.audience_id, "name": a.name} for a in self.audiences.values()],
        }
        if self.app_secret is not None:
            described["app_secret"] = self.app_secret
        return described

    def snapshot(self) -> dict[str, Any]:
        """Per audience: how many members, and the values held under each key (hashes)."""
        with self.lock:
            result: dict[str, Any] = {}
            for audience in self.audiences.values():
                keys = sorted({key for member in audience.members for key, _ in member})
                result[audience.audience_id] = {
                    "name": audience.name,
                    "members": len(audience.members),
                    **{key: sorted(audience.values(key)) for key in keys},
                }
            return {"audiences": result}

    def audience_sizes(self) -> dict[str, int]:
        """Members per audience (the Graph API itself only shows approximate counts)."""
        with self.lock:
            return {f"{a.audience_id} ({a.name})": len(a.members) for a in self.audiences.values()}

    def admit(self, request: Request) -> Reply | None:
        if self.rate_limit is None:
            return None
        allowed, wait = self.rate_limit.admit()
        if allowed:
            return None
        with self.lock:
            self.rate_violations += 1
        return self._throttled(wait)

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.kind == "throttle":
            return self._throttled(float(fault.retry_after_seconds))
        transient = fault.code >= 500
        body = graph_error(fault.title, 2 if transient else 1, kind="OAuthException", transient=transient)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return Reply.json(fault.code, body, headers=headers)

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        try:
            return self._route(request, fault)
        except _Refused as refused:
            return refused.reply

    # -- the API ---------------------------------------------------------------------------

    def _throttled(self, seconds: float) -> Reply:
        minutes = math.ceil(seconds / self.minute_seconds) if seconds > 0 else 0
        body = graph_error(THROTTLE_MESSAGE, THROTTLE_CODE, transient=True)
        return Reply.json(400, body, headers=usage_header(minutes))

    def _route(self, request: Request, fault: Fault | None) -> Reply:
        parts = request.path.lstrip("/").split("/")
        version = parts[0]
        self._check_version(version, request.path)
        self._check_token(request)
        if len(parts) < 2 or not parts[1]:
            raise _Refused(graph_error("(#2500) Unknown path components", 2500))
        object_id = parts[1]
        edge = parts[2] if len(parts) > 2 else ""
        if len(parts) > 3 or (edge and edge != "users"):
            raise _Refused(graph_error(f"(#2500) Unknown path components: /{'/'.join(parts[2:])}", 2500))
        with self.lock:
            audience = self.audiences.get(object_id)
        if audience is None:
            message = UNKNOWN_OBJECT.format(method=request.method.lower(), id=object_id)
            raise _Refused(graph_error(message, 100, subcode=33, kind="GraphMethodException"))
        if edge == "" and request.method == "GET":
            return self._read(audience, request)
        if edge == "users" and request.method in ("POST", "DELETE"):
            return self._users(audience, request, fault)
        message = f"Unsupported {request.method.lower()} request."
        raise _Refused(graph_error(message, 100, kind="GraphMethodException"))

    def _check_version(self, version: str, path: str) -> None:
        if version in API_VERSIONS:
            return
        number = re.fullmatch(r"v([0-9]+)\.0", version)
        if number and int(number.group(1)) < int(API_VERSIONS[-1][1:].split(".")[0]):
            message = (
                "(#2635) You are calling a deprecated version of the Ads API. "
                f"Please update to the latest version: {LATEST_VERSION}."
            )
            raise _Refused(graph_error(message, 2635))
        raise _Refused(graph_error(f"(#2500) Unknown path components: {path}", 2500))

    def _check_token(self, request: Request) -> None:
        token = request.param("access_token")
        if not token:
            message = "An access token is required to request this resource."
            raise _Refused(graph_error(message, 104))
        if not hmac.compare_digest(token.encode("utf-8"), self.access_token.encode("utf-8")):
            message = "Invalid OAuth access token - Cannot parse access token"
            header = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token."'}
            raise _Refused(graph_error(message, 190), headers=header)
        if self.app_secret is not None:
            proof = request.param("appsecret_proof")
            if not proof:
                message = "API calls from the server require an appsecret_proof argument"
                raise _Refused(graph_error(message, 100, kind="GraphMethodException"))
            if not hmac.compare_digest(proof.encode("utf-8"), self.appsecret_proof(token).encode("utf-8")):
                message = "Invalid appsecret_proof provided in the API argument"
                raise _Refused(graph_error(message, 100, kind="GraphMethodException"))

    def _read(self, audience: Audience, request: Request) -> Reply:
        """The node: ``id`` and the ``fields`` asked for (the counts are approximate ranges)."""
        fields = [name for name in (request.param("fields") or "").split(",") if name]
        with self.lock:
            count = len(audience.members)
        lower, upper = _approximate(count)
        available = {
            "id": audience.audience_id,
            "name": audience.name,
            "approximate_count_lower_bound": lower,
            "approximate_count_upper_bound": upper,
            "operation_status": {
                "code": audience.operation_status,
                "description": "Normal" if audience.operation_status == 200 else "Audience flagged",
            },
            "subtype": "CUSTOM",
            "customer_file_source": "USER_PROVIDED_ONLY",
        }
        unknown = [name for name in fields if name not in available]
        if unknown:
            raise _bad_parameter(f"Tried accessing nonexisting field ({unknown[0]}) on node type (CustomAudience)")
        return Reply.json(200, {name: available[name] for name in ["id", *fields]})

    def _users(self, audience: Audience, request: Request, fault: Fault | None) -> Reply:
        adding = request.method == "POST"
        params = self._params(request, adding)
        payload = _json_param(params, "payload", required=True)
        session = _json_param(params, "session", required=False)
        if not isinstance(payload, dict):
            raise _bad_parameter("param payload must be a JSON object")
        schema = _schema(payload.get("schema"))
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            raise _bad_parameter("param payload[data] must be a non-empty array")
        if len(data) > MAX_ROWS:
            raise _bad_parameter(f"Too many users in one request: at most {MAX_ROWS} rows may be sent at a time")
        rows = [self._row(schema, row, fault) for row in data]

        with self.lock:
            if audience.operation_status == 471:
                raise _Refused(
                    graph_error(
                        "Invalid parameter",
                        100,
                        subcode=1713230,
                        user_title="Audience Upload Blocked",
                        user_message=(
                            "Before updating user memberships, you must resolve integrity restrictions on this Data "
                            "File Custom Audience. Go to Audience Manager to appeal the restrictions or create a new "
                            "audience with updated data"
                        ),
                    )
                )
            if not adding and len(audience.members) < audience.refuse_removals_below:
                raise _Refused(graph_error(SIZE_TOO_LOW, 2650))
            session_id = self._session(audience, session)
            for row in rows:
                if row.invalid is None:
                    if adding:
                        audience.add(row.member)
                    else:
                        audience.remove(row.member)
            invalid = [row.invalid for row in rows if row.invalid is not None]
            self.received += len(rows)
            self.invalid_entries += len(invalid)
        samples: dict[str, str] = {}
        for value, why in invalid:
            if len(samples) >= self.max_samples:
                break
            samples.setdefault(value, why)
        return Reply.json(
            200,
            {
                "audience_id": audience.audience_id,
                "session_id": str(session_id),
                "num_received": len(rows),
                "num_invalid_entries": len(invalid),
                "invalid_entry_samples": samples,
            },
        )

    def _params(self, request: Request, adding: bool) -> dict[str, str]:
        """POST: form-encoded body (as the SDK sends it); DELETE: the query string."""
        if not adding:
            return {name: values[-1] for name, values in request.query.items()}
        if request.content_type != "application/x-www-form-urlencoded":
            raise _bad_parameter("The parameter payload is required (send params form-encoded)")
        try:
            return _form(request.body)
        except UnicodeDecodeError:
            raise _bad_parameter("the request body is not UTF-8") from None

    def _row(self, schema: list[str], raw: Any, fault: Fault | None) -> _Row:
        """Read one ``data`` row; a wrong shape refuses the request, a bad value makes the row invalid."""
        cells = [raw] if len(schema) == 1 and isinstance(raw, str) else raw
        if not isinstance(cells, list):
            raise _bad_parameter("each row of payload[data] must be an array of strings")
        if len(cells) != len(schema):
            raise _bad_parameter(
                f"Number of keys in each row of data ({len(cells)}) must match the number of keys in schema "
                f"({len(schema)})"
            )
        member: list[tuple[str, str]] = []
        invalid: tuple[str, str] | None = None
        for key, value in zip(schema, cells, strict=True):
            if type(value) is not str:
                raise _bad_parameter(f"values of {key} must be strings")
            if key in HASHED_KEYS:
                if value == "" or value == EMPTY_SHA256:
                    continue
                if not is_sha256_hex(value):
                    invalid = invalid or (value, f"Invalid {key} value: expected a lower-case SHA-256 hex hash")
                    continue
            elif not value.strip():
                continue
            member.append((key, value))
        if fault is not None and invalid is None:
            rejected = next((value for _, value in member if fault.rejects(value)), None)
            if rejected is not None:
                invalid = (rejected, _fault_reason(fault))
        if not member and invalid is None:
            invalid = (json.dumps(cells, separators=(",", ":")), "Row has no identifier to match on")
        return _Row(tuple(sorted(member)), invalid)

    def _session(self, audience: Audience, session: Any) -> int:
        """Check a session's batch sequence; the session id the answer names."""
        if session is None:
            return secrets.randbits(62) + 1
        if not isinstance(session, dict):
            raise _bad_parameter("param session must be a JSON object")
        session_id, seq, last = session.get("session_id"), session.get("batch_seq"), session.get("last_batch_flag")
        if not _is_int(session_id) or not 0 < session_id < 2**63:
            raise _bad_parameter("session[session_id] must be a positive 64-bit integer")
        if not _is_int(seq) or seq < 1:
            raise _bad_parameter("session[batch_seq] must be an integer starting at 1")
        if last is not None and not isinstance(last, bool):
            raise _bad_parameter("session[last_batch_flag] must be a boolean")
        total = session.get("estimated_num_total")
        if total is not None and (not _is_int(total) or total < 0):
            raise _bad_parameter("session[estimated_num_total] must be a non-negative integer")
        known = audience.sessions.get(session_id)
        if known is not None and seq < known.last_seq:
            raise _bad_parameter(f"session {session_id}: batch_seq {seq} comes after {known.last_seq}")
        if known is not None and known.closed and seq > known.last_seq:
            raise _bad_parameter(f"session {session_id} has already finished (its last batch was received)")
        if known is None or seq > known.last_seq:
            audience.sessions[session_id] = _Session(seq, bool(last))
        return session_id


#: the escapes a form-encoded JSON payload is mostly made of, decoded by str.replace (urllib's
#: unquote works escape by escape in Python: a second per 10,000-row payload)
_COMMON_ESCAPES = ("%22", "%2C", "%5B", "%5D", "%3A", "%7B", "%7D", "%5C")


def _form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a mapping (last value wins), as
    ``urllib.parse.parse_qs`` reads it, quicker for the large JSON params Meta receives."""
    params: dict[str, str] = {}
    for pair in body.decode("ascii" if body.isascii() else "utf-8").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        params[unquote_plus(name)] = _unquote_form(value)
    return params


def _unquote_form(value: str) -> str:
    value = value.replace("+", " ")
    if "%" not in value:
        return value
    fast = value
    for escape in _COMMON_ESCAPES:
        fast = fast.replace(escape, bytes.fromhex(escape[1:]).decode("ascii"))
    # a "%" left over starts some other escape: decode the original the standard way
    return fast if "%" not in fast else unquote_plus(value.replace(" ", "+"))


def _fault_reason(fault: Fault) -> str:
    """An injected rejection's reason; a retryable one says it is temporary."""
    if fault.retryable and not re.search(r"temporar", fault.error, re.IGNORECASE):
        return f"{fault.error} (temporary: try again later)"
    return fault.error


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_param(params: Mapping[str, str], name: str, *, required: bool) -> Any:
    text = params.get(name)
    if text is None or text == "":
        if required:
            raise _bad_parameter(f"The parameter {name} is required")
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise _bad_parameter(f"param {name} must be JSON-encoded") from None


def _schema(schema: Any) -> list[str]:
    """The schema as a list of keys; a single-key schema string stands for its one key."""
    if isinstance(schema, str):
        if schema in SINGLE_KEY_SCHEMAS:
            return [SINGLE_KEY_SCHEMAS[schema]]
        schema = [schema]
    if not isinstance(schema, list) or not schema or not all(isinstance(key, str) for key in schema):
        raise _bad_parameter("param payload[schema] must be a schema name or a non-empty array of keys")
    unknown = [key for key in schema if key not in HASHED_KEYS | CLEAR_KEYS]
    if unknown:
        raise _bad_parameter(f"Invalid key in payload[schema]: {unknown[0]}")
    if len(set(schema)) != len(schema):
        raise _bad_parameter("payload[schema] names a key twice")
    return list(schema)


def _approximate(count: int) -> tuple[int, int]:
    """Meta shows a range, not a count: two significant figures either side."""
    if count < 100:
        return count, count
    scale = 10 ** (len(str(count)) - 2)
    lower = count // scale * scale
    return lower, lower + scale if lower != count else count
