"""An emulator of the Mailchimp Marketing API 3.0, strict where Mailchimp is strict.

Served under ``/mailchimp`` by :class:`~destinations.sandbox.server.SandboxServer`; a client
is pointed at ``<origin>/mailchimp/3.0`` (the real API root is
``https://<dc>.api.mailchimp.com/3.0``) and nothing else changes. What it enforces, as
Mailchimp does (../shared/DESTINATIONS.md, the API reference):

- HTTP Basic auth, any user name, the API key (``…-<dc>``) as the password; anything else
  is a 401 "API Key Invalid";
- every error as problem JSON with the Content-Type ``application/problem+json;
  charset=utf-8`` (the official SDK decodes only bodies whose type contains
  ``application/json``, so the exact type matters), titles "Resource Not Found", "Member
  Exists", "Member In Compliance State", "Forgotten Email Not Subscribed", "Invalid
  Resource", "API Key Invalid", "Too Many Requests";
- batch subscribe/update (``POST /lists/{id}``): at most 500 members (501 is a 400), an
  answer of 200 even when members fail, each failure in ``errors[]`` with the address as
  sent, ``error`` and ``error_code``; ``status_if_new`` sets a new member's status and
  leaves an existing member's alone, ``status`` changes it (with ``update_existing``);
- compliance: a member who unsubscribed (or was cleaned) cannot be set back to
  ``subscribed`` by API ("Member In Compliance State"), and an address permanently
  deleted cannot be added again ("Forgotten Email Not Subscribed");
- an invalid address and an unknown merge tag are per-member errors;
- at most 10 simultaneous connections per API key: the 11th request in flight is a 429
  (counted in :attr:`MailchimpEmulator.rate_violations`). Mailchimp sends no rate headers;
- an unknown list is a 404.

Members are keyed by subscriber hash (MD5 of the lower-cased email) as Mailchimp keys
them. Faults come from the emulator's :class:`~destinations.sandbox.faults.FaultPlan`;
``reject`` answers per-member errors in Mailchimp's own shape (the retryable kind as
Mailchimp's one transient per-member error: too many recent signups), and
:meth:`MailchimpEmulator.block_at_edge` answers the bare, body-less 403 Mailchimp's edge
has been reported to send at very high volume.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
import uuid
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from destinations.identifiers import mailchimp_email, mailchimp_subscriber_hash
from destinations.sandbox.faults import Fault
from destinations.sandbox.server import Emulator, Reply, Request, SandboxServer

PREFIX = "mailchimp"
#: the API root after the prefix, as in https://<dc>.api.mailchimp.com/3.0
API_ROOT = "/3.0"
DATA_CENTER = "us19"
#: the sandbox's API key: 32 hex digits, then the data centre, as Mailchimp's keys are
SANDBOX_API_KEY = f"5a4d1b0c9e8f7a6b5c4d3e2f1a0b9c8d-{DATA_CENTER}"
DEFAULT_LIST_ID = "demo0list1"
DEFAULT_LIST_NAME = "CDP demo audience"

MAX_BATCH_MEMBERS = 500
MAX_CONNECTIONS = 10
MAX_PAGE_COUNT = 1000
DEFAULT_PAGE_COUNT = 10
MAX_TAG_CHARS = 100

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
#: statuses Mailchimp will not turn back into "subscribed" by API
COMPLIANCE_STATES = frozenset({"unsubscribed", "cleaned"})
#: what a held (reachable) member's status is
HELD_STATUSES = frozenset({"subscribed", "pending"})

PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_CONTENT_TYPE = "application/problem+json; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
ERROR_GENERIC = "ERROR_GENERIC"
ERROR_CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"

#: Mailchimp's defaults for a new audience: merge tag -> (name, type)
DEFAULT_MERGE_FIELDS: dict[str, tuple[str, str]] = {
    "FNAME": ("First Name", "text"),
    "LNAME": ("Last Name", "text"),
    "ADDRESS": ("Address", "address"),
    "PHONE": ("Phone Number", "phone"),
    "BIRTHDAY": ("Birthday", "birthday"),
}
MERGE_TYPES = frozenset({"text", "number", "address", "phone", "date", "url", "imageurl", "birthday", "zip"})
_MERGE_TAG = re.compile(r"[A-Z0-9_]{1,10}")
_HASH = re.compile(r"[0-9a-f]{32}")
#: stricter than a plain "has an @": Mailchimp refuses what does not look deliverable
_VALID_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
_BIRTHDAY = re.compile(r"(0[1-9]|1[0-2])/(0[1-9]|[12][0-9]|3[01])")
_EDGE_403_BODY = (
    b"<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
    b"You don't have permission to access this resource.</BODY></HTML>"
)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def problem(status: int, title: str, detail: str, *, errors: list[dict[str, str]] | None = None) -> Reply:
    """Mailchimp's error body, with its exact Content-Type."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors:
        body["errors"] = errors
    return Reply.json(status, body, content_type=PROBLEM_CONTENT_TYPE)


def ok(payload: Any, status: int = 200) -> Reply:
    return Reply.json(status, payload, content_type=JSON_CONTENT_TYPE)


def _not_found() -> Reply:
    return problem(404, "Resource Not Found", "The requested resource could not be found.")


def _invalid(detail: str, errors: list[dict[str, str]] | None = None) -> Reply:
    return problem(400, "Invalid Resource", detail, errors=errors)


def basic_password(authorization: str | None) -> str | None:
    """The password of an HTTP Basic ``Authorization`` header (Mailchimp's API key), or None."""
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[len("Basic ") :].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _, separator, password = decoded.partition(":")
    return password if separator else None


class Refused(Exception):
    """One member refused: the per-member error of a batch, or a single call's problem JSON."""

    def __init__(
        self,
        title: str,
        message: str,
        *,
        status: int = 400,
        error_code: str = ERROR_GENERIC,
        field: str = "",
        field_message: str = "",
    ) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status
        self.error_code = error_code
        self.field = field
        self.field_message = field_message

    def batch_error(self, email_address: str) -> dict[str, str]:
        return {
            "email_address": email_address,
            "error": self.message,
            "error_code": self.error_code,
            "field": self.field,
            "field_message": self.field_message,
        }

    def reply(self) -> Reply:
        errors = [{"field": self.field, "message": self.field_message}] if self.field else None
        return problem(self.status, self.title, self.message, errors=errors)


@dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False

    def as_json(self, list_id: str) -> dict[str, Any]:
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": "",
            "public": True,
            "display_order": self.merge_id + 1,
            "options": {"default_country": 164, "phone_format": "none", "date_format": "MM/DD", "size": 25},
            "help_text": "",
            "list_id": list_id,
            "_links": [],
        }


@dataclass
class Member:
    email_address: str
    status: str
    web_id: int
    created: str
    last_changed: str
    merge_fields: dict[str, Any] = field(default_factory=dict)
    #: tag name -> when it was added (insertion order kept)
    tags: dict[str, str] = field(default_factory=dict)
    #: what the status was when the member was archived (Mailchimp keeps an unsubscribe)
    status_before_archive: str | None = None


@dataclass
class AudienceList:
    id: str
    name: str
    web_id: int
    date_created: str
    merge_fields: dict[str, MergeField] = field(default_factory=dict)
    #: subscriber hash -> member
    members: dict[str, Member] = field(default_factory=dict)
    #: subscriber hashes permanently deleted: they cannot be added again by API
    forgotten: set[str] = field(default_factory=set)
    tag_ids: dict[str, int] = field(default_factory=dict)


class MailchimpEmulator(Emulator):
    """Lists and their members, as the Marketing API 3.0 shows and changes them."""

    prefix = PREFIX

    def __init__(
        self,
        *,
        api_key: str = SANDBOX_API_KEY,
        list_id: str = DEFAULT_LIST_ID,
        list_name: str = DEFAULT_LIST_NAME,
        merge_fields: Mapping[str, str] | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        """One list to start with (``list_id``), holding Mailchimp's default merge fields plus
        ``merge_fields`` (tag -> type)."""
        super().__init__()
        self.api_key = api_key
        self.max_connections = max_connections
        self.lists: dict[str, AudienceList] = {}
        #: requests refused because the key already had ``max_connections`` in flight
        self.rate_violations = 0
        #: the most requests one key had in flight at once
        self.peak_connections = 0
        self._in_flight: dict[str, int] = {}
        self._admitted: dict[int, str] = {}
        self._edge_blocks = 0
        self._ids = itertools.count(1001)
        self.add_list(list_id, list_name, merge_fields=merge_fields)

    # -- set-up for tests and the demo ---------------------------------------------

    def add_list(self, list_id: str, name: str, *, merge_fields: Mapping[str, str] | None = None) -> None:
        with self.lock:
            audience = AudienceList(id=list_id, name=name, web_id=next(self._ids), date_created=_now())
            self.lists[list_id] = audience
            for tag, (label, kind) in DEFAULT_MERGE_FIELDS.items():
                self._add_merge_field(audience, tag, label, kind)
            for tag, kind in (merge_fields or {}).items():
                self._add_merge_field(audience, tag, tag.title(), kind)

    def add_merge_field(
        self, list_id: str, tag: str, kind: str = "text", name: str | None = None, *, required: bool = False
    ) -> None:
        with self.lock:
            self._add_merge_field(self.lists[list_id], tag, name or tag.title(), kind, required=required)

    def seed_member(
        self,
        email: str,
        *,
        status: str = "unsubscribed",
        list_id: str = DEFAULT_LIST_ID,
        merge_fields: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> str:
        """Put a member in the list as another tool (a signup form, an unsubscribe link) would;
        returns its subscriber hash."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        with self.lock:
            audience = self.lists[list_id]
            subscriber_hash = mailchimp_subscriber_hash(email)
            now = _now()
            member = Member(email, status, next(self._ids), now, now)
            member.merge_fields.update(merge_fields or {})
            for tag in tags:
                self._tag(audience, member, tag)
            audience.members[subscriber_hash] = member
            return subscriber_hash

    def block_at_edge(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with the bare 403 (an HTML page, no API error
        body) that Mailchimp's edge has been reported to send at very high volume."""
        with self.lock:
            self._edge_blocks += times

    # -- what tests read -------------------------------------------------------------

    def members(self, list_id: str = DEFAULT_LIST_ID) -> dict[str, dict[str, Any]]:
        """Every member of the list by subscriber hash: address, status, the merge fields
        that hold a value, and tag names."""
        with self.lock:
            audience = self.lists[list_id]
            return {
                subscriber_hash: {
                    "email_address": member.email_address,
                    "status": member.status,
                    "merge_fields": {
                        tag: value for tag, value in member.merge_fields.items() if value not in ("", None)
                    },
                    "tags": list(member.tags),
                }
                for subscriber_hash, member in audience.members.items()
            }

    def held(self, list_id: str = DEFAULT_LIST_ID) -> dict[str, dict[str, Any]]:
        """The members campaigns reach (subscribed or pending), by lower-cased email."""
        return {
            mailchimp_email(member["email_address"]): member
            for member in self.members(list_id).values()
            if member["status"] in HELD_STATUSES
        }

    def held_count(self, list_id: str = DEFAULT_LIST_ID) -> int:
        with self.lock:
            return sum(1 for member in self.lists[list_id].members.values() if member.status in HELD_STATUSES)

    def audience_sizes(self) -> dict[str, int]:
        """Reachable (subscribed or pending) members per list."""
        with self.lock:
            return {list_id: self.held_count(list_id) for list_id in self.lists}

    def describe(self, base_url: str) -> dict[str, Any]:
        with self.lock:
            lists = [
                {"id": audience.id, "name": audience.name, "merge_fields": list(audience.merge_fields)}
                for audience in self.lists.values()
            ]
        return {
            "base_url": base_url + API_ROOT,
            "api_key": self.api_key,
            "data_center": self.api_key.rsplit("-", 1)[-1],
            "lists": lists,
            "max_batch_members": MAX_BATCH_MEMBERS,
            "max_connections": self.max_connections,
        }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            lists = {
                list_id: {
                    "name": audience.name,
                    "merge_fields": sorted(audience.merge_fields),
                    "members": self.members(list_id),
                    "forgotten": sorted(audience.forgotten),
                }
                for list_id, audience in self.lists.items()
            }
            return {
                "lists": lists,
                "rate_violations": self.rate_violations,
                "peak_connections": self.peak_connections,
            }

    # -- the connection limit ------------------------------------------------------

    def admit(self, request: Request) -> Reply | None:
        """At most ``max_connections`` requests of one API key in flight; the edge's bare 403s."""
        key = basic_password(request.headers.get("authorization")) or ""
        with self.lock:
            if self._edge_blocks > 0:
                self._edge_blocks -= 1
                return Reply(403, _EDGE_403_BODY, "text/html")
            in_flight = self._in_flight.get(key, 0)
            if in_flight >= self.max_connections:
                self.rate_violations += 1
                return problem(
                    429,
                    "Too Many Requests",
                    f"You have exceeded the limit of {self.max_connections} simultaneous connections.",
                )
            self._in_flight[key] = in_flight + 1
            self._admitted[request.number] = key
            self.peak_connections = max(self.peak_connections, in_flight + 1)
        return None

    def release(self, request: Request) -> None:
        with self.lock:
            key = self._admitted.pop(request.number, None)
            if key is not None:
                self._in_flight[key] -= 1

    def fault_reply(self, fault: Fault, request: Request) -> Reply:
        """Injected statuses and throttles as Mailchimp answers them: problem JSON (a 429
        carries the fault's Retry-After, which the real API never sends)."""
        if fault.kind == "throttle":
            reply = problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
        else:
            reply = problem(fault.code, fault.title, f"{fault.title} (injected by the sandbox)")
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = fault.retry_after
        return reply

    # -- routing -------------------------------------------------------------------

    def handle(self, request: Request, fault: Fault | None) -> Reply:
        if basic_password(request.headers.get("authorization")) != self.api_key:
            return problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        path = request.path.rstrip("/")
        if path != API_ROOT and not path.startswith(API_ROOT + "/"):
            return _not_found()
        parts = [unquote(part) for part in path[len(API_ROOT) :].split("/") if part]
        method = request.method
        if not parts:
            return self._only(method, "GET") or ok(self._account())
        if parts == ["ping"]:
            return self._only(method, "GET") or ok({"health_status": "Everything's Chimpy!"})
        if parts[0] != "lists":
            return _not_found()
        if len(parts) == 1:
            return self._only(method, "GET") or self._all_lists()
        with self.lock:
            audience = self.lists.get(parts[1])
            if audience is None:
                return _not_found()
            return self._list_route(audience, parts[2:], request, fault)

    def _list_route(self, audience: AudienceList, rest: list[str], request: Request, fault: Fault | None) -> Reply:
        method = request.method
        if not rest:
            if method == "GET":
                return ok(self._list_json(audience))
            if method == "POST":
                return self._batch(audience, request, fault)
            return _method_not_allowed()
        if rest == ["merge-fields"]:
            if method == "GET":
                return self._merge_fields(audience)
            if method == "POST":
                return self._create_merge_field(audience, request)
            return _method_not_allowed()
        if rest[0] != "members":
            return _not_found()
        if len(rest) == 1:
            if method == "GET":
                return self._page(audience, request)
            if method == "POST":
                return self._single(audience, None, request, create_only=True)
            return _method_not_allowed()
        subscriber_hash = _subscriber_hash(rest[1])
        if subscriber_hash is None:
            return _not_found()
        if len(rest) == 2:
            if method == "GET":
                member = audience.members.get(subscriber_hash)
                return ok(self._member_json(audience, subscriber_hash, member)) if member else _not_found()
            if method in ("PUT", "PATCH"):
                return self._single(audience, subscriber_hash, request, patch=method == "PATCH")
            if method == "DELETE":
                return self._archive(audience, subscriber_hash)
            return _method_not_allowed()
        if rest[2:] == ["tags"]:
            if method == "GET":
                return self._member_tags(audience, subscriber_hash)
            if method == "POST":
                return self._set_tags(audience, subscriber_hash, request)
            return _method_not_allowed()
        if rest[2:] == ["actions", "delete-permanent"]:
            return self._only(method, "POST") or self._delete_permanent(audience, subscriber_hash)
        return _not_found()

    @staticmethod
    def _only(method: str, allowed: str) -> Reply | None:
        return None if method == allowed else _method_not_allowed()

    # -- batch subscribe/update ------------------------------------------------------

    def _batch(self, audience: AudienceList, request: Request, fault: Fault | None) -> Reply:
        body = _json_body(request)
        if isinstance(body, Reply):
            return body
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list):
            return _invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                [{"field": "members", "message": "This value should be of type array."}],
            )
        if len(members) > MAX_BATCH_MEMBERS:
            return _invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                [
                    {
                        "field": "members",
                        "message": f"Schema describes array, maximum {MAX_BATCH_MEMBERS} items allowed.",
                    }
                ],
            )
        update_existing = body.get("update_existing") is True
        sync_tags = body.get("sync_tags") is True
        skip_duplicates = (request.param("skip_duplicate_check") or "").lower() == "true"
        skip_merge_validation = (request.param("skip_merge_validation") or "").lower() == "true"
        new_members: list[dict[str, Any]] = []
        updated_members: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        seen: set[str] = set()
        for item in members:
            sent = item.get("email_address") if isinstance(item, dict) else None
            shown = sent if isinstance(sent, str) else ""
            try:
                if not isinstance(item, dict) or not isinstance(sent, str):
                    raise Refused("Invalid Resource", "An email address must contain a single @.")
                normalised = mailchimp_email(sent)
                if normalised in seen:
                    if skip_duplicates:
                        continue
                    raise Refused("Invalid Resource", f"{sent} was included more than once in this request.")
                seen.add(normalised)
                if fault is not None and fault.rejects(normalised):
                    raise _injected_refusal(fault, sent)
                subscriber_hash, created = self._upsert(
                    audience,
                    item,
                    update_existing=update_existing,
                    sync_tags=sync_tags,
                    create_only=False,
                    skip_merge_validation=skip_merge_validation,
                )
            except Refused as refused:
                errors.append(refused.batch_error(shown))
                continue
            answer = self._member_json(audience, subscriber_hash, audience.members[subscriber_hash], links=False)
            (new_members if created else updated_members).append(answer)
        return ok(
            {
                "new_members": new_members,
                "updated_members": updated_members,
                "errors": errors,
                "total_created": len(new_members),
                "total_updated": len(updated_members),
                "error_count": len(errors),
                "_links": [],
            }
        )

    def _upsert(
        self,
        audience: AudienceList,
        item: Mapping[str, Any],
        *,
        update_existing: bool,
        sync_tags: bool,
        create_only: bool,
        expected_hash: str | None = None,
        patch: bool = False,
        skip_merge_validation: bool = False,
    ) -> tuple[str, bool]:
        """Add or update one member as Mailchimp would; (subscriber hash, created?)."""
        sent = item.get("email_address")
        if sent is None and expected_hash is not None and expected_hash in audience.members:
            sent = audience.members[expected_hash].email_address
        if not isinstance(sent, str) or not _VALID_EMAIL.fullmatch(sent.strip()):
            raise Refused(
                "Invalid Resource",
                f"{sent} looks fake or invalid, please enter a real email address.",
                field="email_address",
                field_message="Please provide a valid email address.",
            )
        subscriber_hash = mailchimp_subscriber_hash(sent)
        if expected_hash is not None and expected_hash != subscriber_hash:
            raise Refused(
                "Invalid Resource",
                "The email address does not match the subscriber hash in the URL.",
                field="email_address",
                field_message="Must match the subscriber hash.",
            )
        status = _status(item, "status")
        status_if_new = _status(item, "status_if_new")
        merge_fields = self._checked_merge_fields(audience, item.get("merge_fields"))
        tags = _tag_names(item.get("tags"))
        member = audience.members.get(subscriber_hash)
        if patch and (member is None or member.status == "archived"):
            raise Refused("Resource Not Found", "The requested resource could not be found.", status=404)
        if member is not None and member.status != "archived":
            if create_only or not update_existing:
                raise Refused(
                    "Member Exists",
                    f"{sent} is already a list member. Use PUT to insert or update list members.",
                    error_code=ERROR_CONTACT_EXISTS,
                )
            if status is not None and status != member.status:
                _check_status_change(sent, member.status, status)
                member.status = status
            created = False
        else:
            if subscriber_hash in audience.forgotten:
                raise Refused(
                    "Forgotten Email Not Subscribed",
                    f"{sent} was permanently deleted and cannot be re-imported. "
                    "The contact must re-subscribe to get back on the list.",
                )
            previous = member.status_before_archive if member is not None else None
            wanted = status_if_new or status
            if previous in COMPLIANCE_STATES:
                # unarchived, but an unsubscribe (or a bounce) is kept
                if status is not None:
                    _check_status_change(sent, previous, status)
                wanted = status or previous
            if wanted is None:
                raise Refused(
                    "Invalid Resource",
                    "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                    field="status_if_new",
                    field_message="A status is required for a new member.",
                )
            if not skip_merge_validation:
                _check_required(audience, merge_fields)
            now = _now()
            member = Member(sent.strip(), wanted, next(self._ids), now, now)
            audience.members[subscriber_hash] = member
            created = True
        member.merge_fields.update(merge_fields)
        if sync_tags:
            member.tags.clear()
        for tag in tags:
            self._tag(audience, member, tag)
        member.last_changed = _now()
        return subscriber_hash, created

    def _checked_merge_fields(self, audience: AudienceList, raw: Any) -> dict[str, Any]:
        """The merge field values to store; an unknown tag or a value of the wrong type is refused."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise _merge_refusal("merge_fields", "This value should be of type object.")
        values: dict[str, Any] = {}
        for tag, value in raw.items():
            merge_field = audience.merge_fields.get(tag)
            if merge_field is None:
                raise _merge_refusal(tag, f"{tag} is not a merge field of this audience.")
            values[tag] = _merge_value(merge_field, value)
        return values

    # -- single members -----------------------------------------------------------------

    def _single(
        self,
        audience: AudienceList,
        subscriber_hash: str | None,
        request: Request,
        *,
        create_only: bool = False,
        patch: bool = False,
    ) -> Reply:
        body = _json_body(request)
        if isinstance(body, Reply):
            return body
        if not isinstance(body, dict):
            return _invalid("The resource submitted could not be validated.")
        try:
            created_hash, _ = self._upsert(
                audience,
                body,
                update_existing=True,
                sync_tags=False,
                create_only=create_only,
                expected_hash=subscriber_hash,
                patch=patch,
                skip_merge_validation=(request.param("skip_merge_validation") or "").lower() == "true",
            )
        except Refused as refused:
            return refused.reply()
        return ok(self._member_json(audience, created_hash, audience.members[created_hash]))

    def _archive(self, audience: AudienceList, subscriber_hash: str) -> Reply:
        member = audience.members.get(subscriber_hash)
        if member is None or member.status == "archived":
            return _not_found()
        member.status_before_archive = member.status
        member.status = "archived"
        member.last_changed = _now()
        return Reply.empty(204)

    def _delete_permanent(self, audience: AudienceList, subscriber_hash: str) -> Reply:
        if audience.members.pop(subscriber_hash, None) is None:
            return _not_found()
        audience.forgotten.add(subscriber_hash)
        return Reply.empty(204)

    def _member_tags(self, audience: AudienceList, subscriber_hash: str) -> Reply:
        member = audience.members.get(subscriber_hash)
        if member is None:
            return _not_found()
        tags = [
            {"id": audience.tag_ids[name], "name": name, "date_added": added} for name, added in member.tags.items()
        ]
        return ok({"tags": tags, "total_items": len(tags), "_links": []})

    def _set_tags(self, audience: AudienceList, subscriber_hash: str, request: Request) -> Reply:
        member = audience.members.get(subscriber_hash)
        if member is None:
            return _not_found()
        body = _json_body(request)
        if isinstance(body, Reply):
            return body
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or not all(
            isinstance(tag, dict)
            and isinstance(tag.get("name"), str)
            and 0 < len(tag["name"].strip()) <= MAX_TAG_CHARS
            and tag.get("status") in ("active", "inactive")
            for tag in tags
        ):
            return _invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                [{"field": "tags", "message": "Each tag needs a name and a status of active or inactive."}],
            )
        for tag in tags:
            name = tag["name"].strip()
            if tag["status"] == "active":
                self._tag(audience, member, name)
            else:
                member.tags.pop(name, None)
        member.last_changed = _now()
        return Reply.empty(204)

    def _tag(self, audience: AudienceList, member: Member, name: str) -> None:
        audience.tag_ids.setdefault(name, next(self._ids))
        member.tags.setdefault(name, _now())

    # -- reads ------------------------------------------------------------------------

    def _page(self, audience: AudienceList, request: Request) -> Reply:
        count = _whole(request.param("count"), DEFAULT_PAGE_COUNT)
        offset = _whole(request.param("offset"), 0)
        if count is None or offset is None or count > MAX_PAGE_COUNT:
            return _invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                [{"field": "count", "message": f"count must be a whole number from 0 to {MAX_PAGE_COUNT}."}],
            )
        wanted = request.param("status")
        if wanted is not None and wanted not in (*STATUSES, "archived"):
            return _invalid(f"{wanted} is not a valid member status.")
        chosen = [
            (subscriber_hash, member)
            for subscriber_hash, member in audience.members.items()
            if wanted is None or member.status == wanted
        ]
        page = chosen[offset : offset + count]
        return ok(
            {
                "members": [self._member_json(audience, h, member, links=False) for h, member in page],
                "list_id": audience.id,
                "total_items": len(chosen),
                "_links": [],
            }
        )

    def _all_lists(self) -> Reply:
        with self.lock:
            lists = [self._list_json(audience) for audience in self.lists.values()]
        return ok(
            {
                "lists": lists,
                "total_items": len(lists),
                "constraints": {"may_create": True, "max_instances": 100, "current_total_instances": len(lists)},
                "_links": [],
            }
        )

    def _merge_fields(self, audience: AudienceList) -> Reply:
        fields = [merge_field.as_json(audience.id) for merge_field in audience.merge_fields.values()]
        return ok({"merge_fields": fields, "list_id": audience.id, "total_items": len(fields), "_links": []})

    def _create_merge_field(self, audience: AudienceList, request: Request) -> Reply:
        body = _json_body(request)
        if isinstance(body, Reply):
            return body
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or body.get("type") not in MERGE_TYPES:
            return _invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                [
                    {
                        "field": "type",
                        "message": f"A merge field needs a name and a type ({', '.join(sorted(MERGE_TYPES))}).",
                    }
                ],
            )
        tag = body.get("tag") or re.sub(r"[^A-Z0-9_]", "", body["name"].upper())[:10] or "MERGE"
        if not isinstance(tag, str) or not _MERGE_TAG.fullmatch(tag):
            return _invalid(f"The merge tag {tag!r} must be 1 to 10 upper-case letters, digits or underscores.")
        if tag in audience.merge_fields:
            return _invalid(f'A Merge Field with the tag "{tag}" already exists for this list.')
        self._add_merge_field(audience, tag, body["name"], body["type"], required=body.get("required") is True)
        return ok(audience.merge_fields[tag].as_json(audience.id))

    def _add_merge_field(
        self, audience: AudienceList, tag: str, name: str, kind: str, *, required: bool = False
    ) -> None:
        if not _MERGE_TAG.fullmatch(tag) or kind not in MERGE_TYPES:
            raise ValueError(f"merge tag {tag!r} of type {kind!r}: tags are 1-10 of A-Z 0-9 _, types {MERGE_TYPES}")
        audience.merge_fields[tag] = MergeField(len(audience.merge_fields), tag, name, kind, required)

    # -- Mailchimp's shapes ----------------------------------------------------------

    def _member_json(
        self, audience: AudienceList, subscriber_hash: str, member: Member, *, links: bool = True
    ) -> dict[str, Any]:
        merge_fields = {tag: member.merge_fields.get(tag, "") for tag in audience.merge_fields}
        full_name = " ".join(str(merge_fields.get(tag) or "") for tag in ("FNAME", "LNAME")).strip()
        answer: dict[str, Any] = {
            "id": subscriber_hash,
            "email_address": member.email_address,
            "unique_email_id": subscriber_hash[:10],
            "contact_id": hashlib.md5(f"{audience.id}:{subscriber_hash}".encode()).hexdigest(),
            "full_name": full_name,
            "web_id": member.web_id,
            "email_type": "html",
            "status": member.status,
            "consents_to_one_to_one_messaging": True,
            "sms_phone_number": "",
            "sms_subscription_status": "",
            "sms_subscription_last_updated": "",
            "merge_fields": merge_fields,
            "interests": {},
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "",
            "timestamp_signup": "",
            "ip_opt": "",
            "timestamp_opt": member.created,
            "member_rating": 2,
            "last_changed": member.last_changed,
            "language": "",
            "vip": False,
            "email_client": "",
            "location": {
                "latitude": 0,
                "longitude": 0,
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": "",
                "timezone": "",
                "region": "",
            },
            "marketing_permissions": [],
            "source": "API - Generic",
            "tags_count": len(member.tags),
            "tags": [{"id": audience.tag_ids[name], "name": name} for name in member.tags],
            "list_id": audience.id,
        }
        if member.status == "unsubscribed":
            answer["unsubscribe_reason"] = "N/A (Unsubscribed by the contact)"
        if links:
            answer["_links"] = []
        return answer

    def _list_json(self, audience: AudienceList) -> dict[str, Any]:
        counts = dict.fromkeys((*STATUSES, "archived"), 0)
        for member in audience.members.values():
            counts[member.status] += 1
        return {
            "id": audience.id,
            "web_id": audience.web_id,
            "name": audience.name,
            "contact": {
                "company": "Composable CDP sandbox",
                "address1": "1 Loopback Way",
                "address2": "",
                "city": "Localhost",
                "state": "",
                "zip": "00000",
                "country": "US",
                "phone": "",
            },
            "permission_reminder": "You are receiving this email because you opted in.",
            "use_archive_bar": True,
            "campaign_defaults": {
                "from_name": "CDP",
                "from_email": "audience@example.com",
                "subject": "",
                "language": "en",
            },
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": audience.date_created,
            "list_rating": 0,
            "email_type_option": False,
            "subscribe_url_short": f"https://eepurl.com/{audience.id}",
            "subscribe_url_long": f"https://example.us19.list-manage.com/subscribe?id={audience.id}",
            "beamer_address": f"{audience.id}@inbound.mailchimp.com",
            "visibility": "prv",
            "double_optin": False,
            "has_welcome": False,
            "marketing_permissions": False,
            "modules": [],
            "stats": {
                "member_count": counts["subscribed"],
                "total_contacts": len(audience.members),
                "unsubscribe_count": counts["unsubscribed"],
                "cleaned_count": counts["cleaned"],
                "member_count_since_send": counts["subscribed"],
                "unsubscribe_count_since_send": counts["unsubscribed"],
                "cleaned_count_since_send": counts["cleaned"],
                "campaign_count": 0,
                "campaign_last_sent": "",
                "merge_field_count": len(audience.merge_fields),
                "avg_sub_rate": 0,
                "avg_unsub_rate": 0,
                "target_sub_rate": 0,
                "open_rate": 0,
                "click_rate": 0,
                "last_sub_date": "",
                "last_unsub_date": "",
            },
            "_links": [],
        }

    def _account(self) -> dict[str, Any]:
        with self.lock:
            total = sum(len(audience.members) for audience in self.lists.values())
        return {
            "account_id": "cdpsandbox01",
            "login_id": "1001",
            "account_name": "Composable CDP sandbox",
            "email": "owner@example.com",
            "first_name": "Sandbox",
            "last_name": "Owner",
            "username": "cdp-sandbox",
            "avatar_url": "",
            "role": "owner",
            "member_since": "2026-01-01T00:00:00+00:00",
            "pricing_plan_type": "monthly",
            "first_payment": "",
            "account_timezone": "UTC",
            "account_industry": "Software",
            "contact": {
                "company": "Composable CDP sandbox",
                "addr1": "1 Loopback Way",
                "addr2": "",
                "city": "Localhost",
                "state": "",
                "zip": "00000",
                "country": "US",
            },
            "pro_enabled": False,
            "last_login": _now(),
            "total_subscribers": total,
            "industry_stats": {"open_rate": 0, "bounce_rate": 0, "click_rate": 0},
            "_links": [],
        }


class MailchimpSandbox(AbstractContextManager["MailchimpSandbox"]):
    """One Mailchimp emulator on its own loopback server, for tests and benchmarks."""

    def __init__(self, emulator: MailchimpEmulator | None = None) -> None:
        self.emulator = emulator or MailchimpEmulator()
        self.server = SandboxServer([self.emulator])

    def __enter__(self) -> MailchimpSandbox:
        self.server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        """What a connector's ``base_url`` is set to: ``<origin>/mailchimp/3.0``."""
        return self.server.base_url(self.emulator) + API_ROOT

    @property
    def api_key(self) -> str:
        return self.emulator.api_key

    @property
    def list_id(self) -> str:
        return next(iter(self.emulator.lists))


# -- rules ---------------------------------------------------------------------------------


def _method_not_allowed() -> Reply:
    return problem(
        405,
        "Method Not Allowed",
        "The requested method and resource are not compatible. See the Allow header for this resource's available methods.",
    )


def _json_body(request: Request) -> Any:
    """The request's JSON body, or Mailchimp's parse error as a Reply."""
    try:
        return request.json() if request.body else {}
    except (ValueError, UnicodeDecodeError):
        return problem(400, "JSON Parse Exception", "We encountered an unspecified JSON parsing error.")


def _subscriber_hash(segment: str) -> str | None:
    """The member segment of a path: a subscriber hash, or (Mailchimp accepts it) an email."""
    if _HASH.fullmatch(segment):
        return segment
    if "@" in segment:
        return mailchimp_subscriber_hash(segment)
    return None


def _status(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        return None
    if value not in STATUSES:
        raise Refused(
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            field=name,
            field_message=f"Value must be one of: {', '.join(STATUSES)}.",
        )
    return str(value)


def _check_status_change(email: str, current: str, wanted: str) -> None:
    """An unsubscribed or cleaned member cannot be subscribed by API (pending, which sends a
    confirmation email, is how an unsubscribed person is invited back; a cleaned address
    bounced and takes neither)."""
    if (current == "unsubscribed" and wanted == "subscribed") or (current == "cleaned" and wanted in HELD_STATUSES):
        raise Refused(
            "Member In Compliance State",
            f"{email} is already a list member in compliance state due to unsubscribe, bounce, or compliance review.",
        )


def _tag_names(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(
        isinstance(tag, str) and 0 < len(tag.strip()) <= MAX_TAG_CHARS for tag in raw
    ):
        raise Refused(
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            field="tags",
            field_message=f"Tags are names of 1 to {MAX_TAG_CHARS} characters.",
        )
    return [tag.strip() for tag in raw]


def _check_required(audience: AudienceList, merge_fields: Mapping[str, Any]) -> None:
    """A new member needs a value for every required merge field (unless skip_merge_validation)."""
    for tag, merge_field in audience.merge_fields.items():
        if merge_field.required and merge_fields.get(tag) in (None, ""):
            raise _merge_refusal(tag, f"{tag} is required: please enter a value.")


def _merge_refusal(field_name: str, message: str) -> Refused:
    return Refused("Invalid Resource", "Your merge fields were invalid.", field=field_name, field_message=message)


def _merge_value(merge_field: MergeField, value: Any) -> Any:
    """A merge field value as Mailchimp stores it; "" (or null) clears the field."""
    if value is None or value == "":
        return ""
    kind, tag = merge_field.type, merge_field.tag
    if kind == "number":
        if isinstance(value, bool):
            raise _merge_refusal(tag, "Please enter a number.")
        if isinstance(value, int | float):
            return value
        try:
            number = float(str(value))
        except ValueError:
            raise _merge_refusal(tag, "Please enter a number.") from None
        return int(number) if number.is_integer() and "." not in str(value) else number
    if kind == "address":
        if not isinstance(value, dict) or not all(
            isinstance(value.get(part), str) and value[part].strip() for part in ("addr1", "city", "state", "zip")
        ):
            raise _merge_refusal(tag, "Please enter a complete address (addr1, city, state and zip).")
        return dict(value)
    if kind == "birthday":
        if not isinstance(value, str) or not _BIRTHDAY.fullmatch(value):
            raise _merge_refusal(tag, "Please enter a birthday as MM/DD.")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _merge_refusal(tag, "Please enter a text value.")
    return str(value)


def _injected_refusal(fault: Fault, email: str) -> Refused:
    """A ``reject`` fault in Mailchimp's own per-member shape. Mailchimp's one transient
    per-member error is its signup throttle; anything else is the fault's message."""
    if fault.retryable:
        return Refused(
            "Invalid Resource",
            f"{email} has signed up to a lot of lists very recently; we're not allowing more signups for now",
        )
    return Refused("Invalid Resource", fault.error)


def _whole(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    return int(raw) if raw.isdigit() else None
