"""Mailchimp Marketing API 3.0: an audience (list) kept in step with a segment.

Upserts are one batch subscribe/update call per ``send`` (``POST /lists/{list_id}``, at
most 500 members, ``update_existing: true``): the sync's ``fields`` name merge tags
(``FNAME: first_name``), a field named ``tags`` adds its comma-separated values as tags,
and the connection's ``tags`` are added to every member. Tags are only ever added
(``sync_tags: false``): tags someone set in Mailchimp stay.

Consent is Mailchimp's to keep. Each member carries ``status_if_new`` and never
``status``: a new member gets the connection's status (``subscribed``, or ``pending`` for
double opt-in), an existing member keeps theirs. A member who unsubscribed (or whose
address was cleaned after bouncing) is therefore never re-subscribed: the connector reads
each member's status in Mailchimp's answer and reports them as rejected with a reason that
names no one, so the sync's run shows them instead of counting them as reached.

Mailchimp answers 200 even when members fail; each entry of ``errors[]`` is mapped back
to exactly its change by the lower-cased email, as ``rejected`` when Mailchimp will not
take the member as it is (an invalid or fake address, a compliance state, an address
permanently deleted, a bad merge field) and ``failed`` when it may later (its signup
throttle). The platform's text is kept with the email removed.

Removals archive the member (``DELETE /lists/{id}/members/{subscriber_hash}``, 204; a 404
means already gone, confirmed once the list itself is known to exist). Mailchimp has no
batch archive and allows 10 simultaneous connections per API key, so removals run on a
small thread pool (``max_connections``, 5 by default, 10 at most: other tools share the
key's limit); a 429 past the limit is retried with back-off by the shared session.

A privacy request's removal (``forget``) deletes the member permanently
(``POST /lists/{id}/members/{subscriber_hash}/actions/delete-permanent``, 204): Mailchimp then
refuses to add the address again by API ("Forgotten Email Not Subscribed"), as the law wants.
It runs on the same pool; a 404 means Mailchimp holds no such member (confirmed).

A bare HTTP 403 (no API error body) is not taken for bad credentials: Mailchimp's own
credential and permission errors always come as problem JSON (401 "API Key Invalid", 403
"Forbidden" / "User Disabled"), while a body-less 403 is its edge refusing traffic, as
reported at very high volume. Treating it as a configuration error would send the user to
rotate a working key; it is reported as the platform being unavailable, so the batch is
planned again next run.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote, urlsplit

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
    build_session,
    check_response,
    error_from_exception,
    error_title,
    redact,
)
from destinations.identifiers import mailchimp_email, mailchimp_subscriber_hash
from destinations.options import Secret, check_option, option, parse_options, secret_option

USER_AGENT = "composable-cdp-mailchimp/0.1"
#: Mailchimp's limit on members per batch subscribe/update call
MAX_BATCH_SIZE = 500
#: Mailchimp's limit on simultaneous connections per API key
MAX_CONNECTIONS = 10
DEFAULT_CONNECTIONS = 5
MAX_TIMEOUT_SECONDS = 300.0
MAX_TAG_CHARS = 100
#: a mapped field with this name holds tags (comma-separated), not a merge field
TAGS_FIELD = "tags"
ERROR_CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"

NO_RESULT = "Mailchimp's answer did not mention this member"
NO_EMAIL = "no email address to find the member by"
DUPLICATE = "another record in the same batch has the same email address"
#: what the user reads for a member Mailchimp keeps out of campaigns (no personal data)
NOT_RESUBSCRIBED = {
    "unsubscribed": "the member has unsubscribed from this audience at Mailchimp: not re-subscribed "
    "(only they can subscribe again); their merge fields and tags were updated",
    "cleaned": "the member's address was cleaned at Mailchimp (it bounced): not re-subscribed; "
    "their merge fields and tags were updated",
}
COMPLIANCE_STATE = (
    "Mailchimp keeps this member in a compliance state (they unsubscribed, bounced or are under "
    "compliance review): not re-subscribed"
)
FORGOTTEN = (
    "the member was permanently deleted at Mailchimp and cannot be added again by API: only they can subscribe again"
)
#: Mailchimp's per-member errors that may pass (its signup throttle), or say so
_TRANSIENT = re.compile(
    r"signed up to a lot of lists very recently|not allowing more signups|try again|temporar", re.IGNORECASE
)
_DATA_CENTER = re.compile(r"[a-z]{2,}[0-9]+")


def _label(name: str) -> str:
    return f"mailchimp destination {name!r}"


def _http_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host (e.g. https://us19.api.mailchimp.com/3.0)"
    return None


def _tag_list(tags: Any) -> str | None:
    if not all(isinstance(tag, str) and 0 < len(tag.strip()) <= MAX_TAG_CHARS for tag in tags):
        return f"must be a list of tag names, each 1 to {MAX_TAG_CHARS} characters"
    return None


def default_base_url(api_key: str) -> str | None:
    """``https://<dc>.api.mailchimp.com/3.0`` from a key's data-centre suffix (``…-us19``), or
    None when the key has none."""
    _, separator, data_center = api_key.strip().rpartition("-")
    if not separator or not _DATA_CENTER.fullmatch(data_center):
        return None
    return f"https://{data_center}.api.mailchimp.com/3.0"


@dataclass(frozen=True)
class MailchimpOptions:
    """A Mailchimp connection's options in destinations.yml (parsed by destinations.options)."""

    list_id: str = option(help="the audience (list) id members are synced to (Audience → Settings → Audience ID)")
    api_key_env: Secret = secret_option(
        help="environment variable holding the Mailchimp API key (<key>-<data centre>)",
        hint="export it with a Mailchimp API key (Profile → Extras → API keys)",
    )
    base_url: str | None = option(
        default=None,
        check=_http_url,
        help="API root; by default https://<dc>.api.mailchimp.com/3.0 from the key's data-centre suffix",
    )
    batch_size: int = option(
        default=MAX_BATCH_SIZE,
        minimum=1,
        maximum=MAX_BATCH_SIZE,
        help="members per batch subscribe/update call (Mailchimp takes at most 500)",
    )
    tags: list | None = option(default=None, check=_tag_list, help="tags added to every member synced")
    status_if_new: Literal["subscribed", "pending"] = option(
        default="subscribed",
        help="status of a member new to the audience (pending: Mailchimp sends its double opt-in email); "
        "members already there keep theirs",
    )
    max_connections: int = option(
        default=DEFAULT_CONNECTIONS,
        minimum=1,
        maximum=MAX_CONNECTIONS,
        help="removals archived at once (Mailchimp allows 10 simultaneous connections per API key, "
        "shared with every other tool using the key)",
    )
    timeout_seconds: float | None = option(
        default=None,
        above=0,
        maximum=MAX_TIMEOUT_SECONDS,
        help="seconds to wait for an answer (connecting never waits longer than 5)",
    )


class MailchimpDestination:
    """Keeps a Mailchimp audience's members in step with a segment, by email."""

    supported_modes: frozenset[str] = frozenset({"mirror", "upsert", "add_only"})
    identifier_names: frozenset[str] = frozenset({"email"})
    key_names: frozenset[str] = frozenset({"email"})
    accepts_fields: bool = True
    options_type: type = MailchimpOptions

    def __init__(
        self,
        name: str,
        api_key: str,
        list_id: str,
        *,
        base_url: str | None = None,
        sync_name: str = "",
        batch_size: int = MAX_BATCH_SIZE,
        tags: Sequence[str] = (),
        status_if_new: str = "subscribed",
        max_connections: int = DEFAULT_CONNECTIONS,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
        max_retry_after: float = 60.0,
        api_key_env: str | None = None,
    ) -> None:
        """``api_key_env`` only names where the key came from, for error messages."""
        self.name = name
        self.label = _label(name)
        self.sync_name = sync_name
        self.list_id = list_id
        self.batch_size = check_option(MailchimpOptions, "batch_size", batch_size, label=self.label)
        self.max_connections = check_option(MailchimpOptions, "max_connections", max_connections, label=self.label)
        self.status_if_new = check_option(MailchimpOptions, "status_if_new", status_if_new, label=self.label)
        self.tags = _clean_tags(tags)
        self.timeout = timeout if isinstance(timeout, Timeout) else _timeout_from_seconds(float(timeout))
        self.max_retries = max_retries
        where = f"the API key in ${api_key_env}" if api_key_env else "the Mailchimp API key"
        self._key_hint = f"check {where}"
        root = base_url or default_base_url(api_key)
        if root is None:
            raise DestinationConfigError(
                f"{self.label}: {where} has no data-centre suffix (it should end like -us19): "
                "check the key, or set the base_url option"
            )
        self.base_url = root.rstrip("/")
        self._list_url = f"{self.base_url}/lists/{quote(list_id, safe='')}"
        self._session = build_session(
            user_agent=USER_AGENT,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
        )
        self._session.auth = ("cdp", api_key)  # HTTP Basic: any user name, the key as password
        self._counts: Counter[str] = Counter()
        self._list_checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, name: str, options: Mapping[str, Any], env: Mapping[str, str], *, sync_name: str = ""
    ) -> MailchimpDestination:
        """Build from a named connection's options (:class:`MailchimpOptions`); the API key is
        read from ``env``. Problems are DestinationConfigErrors naming the destination and the
        option or environment variable at fault, never the key."""
        parsed = parse_options(MailchimpOptions, options, env, label=_label(name), connector_type="mailchimp")
        timeout = DEFAULT_TIMEOUT if parsed.timeout_seconds is None else _timeout_from_seconds(parsed.timeout_seconds)
        return cls(
            name,
            parsed.api_key_env.value,
            parsed.list_id,
            base_url=parsed.base_url,
            sync_name=sync_name,
            batch_size=parsed.batch_size,
            tags=parsed.tags or (),
            status_if_new=parsed.status_if_new,
            max_connections=parsed.max_connections,
            timeout=timeout,
            api_key_env=parsed.api_key_env.env_var,
        )

    # -- the interface ---------------------------------------------------------------

    def send(self, changes: list[Change]) -> list[Outcome]:
        """Upserts in one batch call, then removals archived; one outcome per change, in order."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        if not changes:
            return []
        outcomes: dict[str, Outcome] = {}
        upserts = [change for change in changes if change.op == "upsert"]
        removals = [change for change in changes if change.op == "remove"]
        if upserts:
            outcomes.update(self._subscribe(upserts))
        if removals:
            outcomes.update(self._archive_all(removals))
        return [outcomes[change.change_id] for change in changes]

    def forget(self, changes: list[Change]) -> list[Outcome]:
        """Delete each member permanently (a privacy request); one outcome per change, in order."""
        refuse_oversized_batch(self.label, changes, self.batch_size)
        outcomes = self._archive_all(changes, self._delete_permanently)
        return [outcomes[change.change_id] for change in changes]

    def report(self) -> dict[str, int]:
        """Mailchimp's own figures so far: members it created and updated, the per-member
        errors it reported, members archived (and already gone), and members it keeps out
        of campaigns (unsubscribed or cleaned) that were reported instead of re-subscribed."""
        with self._lock:
            return {
                name: self._counts[name]
                for name in (
                    "new_members",
                    "updated_members",
                    "error_count",
                    "archived",
                    "already_archived",
                    "not_resubscribed",
                    "deleted_permanently",
                )
            }

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    # -- upserts -----------------------------------------------------------------------

    def _subscribe(self, upserts: Sequence[Change]) -> dict[str, Outcome]:
        """One batch subscribe/update call; each member's result mapped back by email."""
        outcomes: dict[str, Outcome] = {}
        by_email: dict[str, Change] = {}
        members: list[dict[str, Any]] = []
        for change in upserts:
            email = _email_of(change)
            if email is None:
                outcomes[change.change_id] = Outcome(change.change_id, "rejected", NO_EMAIL)
                continue
            normalised = mailchimp_email(email)
            if normalised in by_email:
                outcomes[change.change_id] = Outcome(change.change_id, "rejected", DUPLICATE)
                continue
            by_email[normalised] = change
            members.append(self._member(change, email))
        if not members:
            return outcomes
        body = {"members": members, "update_existing": True, "sync_tags": False}
        response = self._request("POST", self._list_url, body=body)
        personal = tuple(value for change in by_email.values() for value in _pii_values(change))
        if 200 <= response.status_code < 300:
            outcomes.update(self._read_batch(response, by_email))
            return outcomes
        if response.status_code == 404:
            raise self._unknown_list(response)
        self._check(response, personal)
        reason = f"Mailchimp refused the batch (HTTP {response.status_code}{_colon(error_title(response, *personal))})"
        outcomes.update(
            {change.change_id: Outcome(change.change_id, "rejected", reason) for change in by_email.values()}
        )
        return outcomes

    def _member(self, change: Change, email: str) -> dict[str, Any]:
        """One member of the batch: never ``status``, so an existing member keeps theirs."""
        merge_fields = {tag: _merge_value(value) for tag, value in change.fields.items() if tag != TAGS_FIELD}
        tags = list(dict.fromkeys([*self.tags, *_field_tags(change.fields.get(TAGS_FIELD))]))
        member: dict[str, Any] = {"email_address": email, "status_if_new": self.status_if_new}
        if merge_fields:
            member["merge_fields"] = merge_fields
        if tags:
            member["tags"] = tags
        return member

    def _read_batch(self, response: requests.Response, by_email: Mapping[str, Change]) -> dict[str, Outcome]:
        """Mailchimp's 200 answer: ``new_members``, ``updated_members`` and ``errors[]``."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return {
                c.change_id: Outcome(c.change_id, "failed", "Mailchimp's answer was unreadable")
                for c in by_email.values()
            }
        new, updated, errors = (_records(body, key) for key in ("new_members", "updated_members", "errors"))
        outcomes: dict[str, Outcome] = {}
        counts: Counter[str] = Counter(new_members=len(new), updated_members=len(updated))
        counts["error_count"] = body["error_count"] if isinstance(body.get("error_count"), int) else len(errors)
        for member in [*new, *updated]:
            change = by_email.get(mailchimp_email(member.get("email_address", "")))
            if change is not None:
                outcome = _member_outcome(change, member)
                if outcome.status == "rejected":
                    counts["not_resubscribed"] += 1
                outcomes[change.change_id] = outcome
        for error in errors:
            sent = str(error.get("email_address") or "")
            change = by_email.get(mailchimp_email(sent))
            if change is not None:
                outcomes[change.change_id] = _error_outcome(change, error, sent)
        with self._lock:
            self._counts.update(counts)
        return {
            change.change_id: outcomes.get(change.change_id) or Outcome(change.change_id, "failed", NO_RESULT)
            for change in by_email.values()
        }

    # -- removals ----------------------------------------------------------------------

    def _archive_all(self, removals: Sequence[Change], remove: Any = None) -> dict[str, Outcome]:
        """Archive (or ``remove`` otherwise) each member, at most ``max_connections`` at once. A configuration error or
        the platform becoming unavailable stops the rest and is raised."""
        outcomes: dict[str, Outcome] = {}
        jobs: list[Change] = []
        for change in removals:
            if _email_of(change) is None:
                outcomes[change.change_id] = Outcome(change.change_id, "rejected", NO_EMAIL)
            else:
                jobs.append(change)
        if not jobs:
            return outcomes
        with ThreadPoolExecutor(
            max_workers=min(self.max_connections, len(jobs)), thread_name_prefix="mailchimp"
        ) as pool:
            futures = [pool.submit(remove or self._archive, change) for change in jobs]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in done if f.exception() is not None), None)
            if failure is not None:
                for future in futures:
                    future.cancel()
                raise failure
        for future in futures:
            outcome = future.result()
            outcomes[outcome.change_id] = outcome
        return outcomes

    def _archive(self, change: Change) -> Outcome:
        subscriber_hash = mailchimp_subscriber_hash(_email_of(change) or "")
        response = self._request("DELETE", f"{self._list_url}/members/{subscriber_hash}")
        if response.status_code in (200, 204):
            self._count("archived")
            return Outcome(change.change_id, "confirmed")
        if response.status_code == 404:
            self._ensure_list_exists()  # a 404 for a list that is not there must not read as "gone"
            self._count("already_archived")
            return Outcome(change.change_id, "confirmed")
        personal = _pii_values(change)
        self._check(response, personal)
        title = error_title(response, *personal)
        return Outcome(
            change.change_id,
            "rejected",
            f"Mailchimp refused to archive this member (HTTP {response.status_code}{_colon(title)})",
        )

    def _delete_permanently(self, change: Change) -> Outcome:
        subscriber_hash = mailchimp_subscriber_hash(_email_of(change) or "")
        response = self._request("POST", f"{self._list_url}/members/{subscriber_hash}/actions/delete-permanent")
        if response.status_code in (200, 204):
            self._count("deleted_permanently")
            return Outcome(change.change_id, "confirmed", answer=f"HTTP {response.status_code} delete-permanent")
        if response.status_code == 404:
            self._ensure_list_exists()  # a 404 for a list that is not there must not read as "gone"
            return Outcome(change.change_id, "confirmed", answer="HTTP 404 no such member")
        personal = _pii_values(change)
        self._check(response, personal)
        title = error_title(response, *personal)
        return Outcome(
            change.change_id,
            "rejected",
            f"Mailchimp refused to delete this member permanently (HTTP {response.status_code}{_colon(title)})",
        )

    def _ensure_list_exists(self) -> None:
        """Once per connector: the list is there (or a DestinationConfigError naming list_id)."""
        with self._lock:
            if self._list_checked:
                return
        response = self._request("GET", self._list_url, params={"fields": "id,name"})
        if response.status_code == 404:
            raise self._unknown_list(response)
        self._check(response, ())
        with self._lock:
            self._list_checked = True

    # -- HTTP --------------------------------------------------------------------------

    def _request(
        self, method: str, url: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> requests.Response:
        data = None if body is None else json.dumps(body, separators=(",", ":"), default=_json_value).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            return self._session.request(
                method, url, data=data, params=params, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise error_from_exception(exc, destination=self.label, max_attempts=self.max_retries + 1) from None

    def _check(self, response: requests.Response, personal: tuple[str, ...]) -> None:
        """Raise what a final non-2xx answer means for the whole call; return for a per-call 4xx."""
        if response.status_code == 403 and not _is_api_error(response):
            raise DestinationUnavailable(
                f"{self.label} answered HTTP 403 without an API error body: Mailchimp's edge refuses bursts "
                "that way at very high volume (its credential errors are 401 with a JSON body). "
                "The batch will be sent again next run."
            )
        check_response(
            response,
            destination=self.label,
            credentials_hint=self._key_hint,
            refused="API key",
            redact_values=personal,
        )

    def _unknown_list(self, response: requests.Response) -> DestinationConfigError:
        title = error_title(response)
        return DestinationConfigError(
            f"{self.label}: Mailchimp has no audience with list_id {self.list_id!r} (HTTP 404{_colon(title)}): "
            "check the list_id option (Audience → Settings → Audience name and defaults → Audience ID)"
        )

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


# -- per-member results ------------------------------------------------------------------


def _member_outcome(change: Change, member: Mapping[str, Any]) -> Outcome:
    """A member Mailchimp created or updated: confirmed, unless it keeps them out of campaigns."""
    status = member.get("status")
    if status in NOT_RESUBSCRIBED:
        return Outcome(change.change_id, "rejected", NOT_RESUBSCRIBED[status])
    return Outcome(change.change_id, "confirmed")


def _error_outcome(change: Change, error: Mapping[str, Any], sent: str) -> Outcome:
    """One entry of ``errors[]``: rejected when Mailchimp will not take the member as it is,
    failed when it may later; the platform's words without the address."""
    text = str(error.get("error") or "")
    lowered = text.lower()
    if "compliance state" in lowered:
        return Outcome(change.change_id, "rejected", COMPLIANCE_STATE)
    if "permanently deleted" in lowered:
        return Outcome(change.change_id, "rejected", FORGOTTEN)
    personal = (*_pii_values(change), sent)
    reason = text or "Mailchimp reported an error without a message"
    field_name, field_message = error.get("field"), error.get("field_message")
    if field_name:
        reason += f" ({field_name}: {field_message})" if field_message else f" ({field_name})"
    reason = redact(reason, *personal)[:MAX_ERROR_CHARS]
    transient = error.get("error_code") == ERROR_CONTACT_EXISTS or _TRANSIENT.search(text) is not None
    return Outcome(change.change_id, "failed" if transient else "rejected", reason)


# -- helpers ---------------------------------------------------------------------------------


def _email_of(change: Change) -> str | None:
    value = change.identifiers.get("email")
    text = str(value).strip() if value is not None else ""
    return text or None


def _pii_values(change: Change) -> tuple[str, ...]:
    """The change's identifier values, to strip from anything Mailchimp says about it."""
    values = [str(v) for v in change.identifiers.values() if v is not None and len(str(v)) >= 3]
    return tuple(values + [mailchimp_email(v) for v in values])


def _records(body: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = body.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _merge_value(value: Any) -> Any:
    """A merge field value to send; a null clears the field ("" in Mailchimp)."""
    return "" if value is None else value


def _field_tags(value: Any) -> list[str]:
    """Tags from a mapped ``tags`` field: comma-separated text, or a list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _clean_tags(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(str(tag).strip() for tag in tags if str(tag).strip()))


def _json_value(value: Any) -> Any:
    """Warehouse types JSON lacks: dates as ISO 8601, decimals as numbers."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"a field value of type {type(value).__name__} cannot be sent to Mailchimp")


def _is_api_error(response: requests.Response) -> bool:
    """Whether the body is Mailchimp's problem JSON (an API decision), not an edge's page."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and ("title" in body or "status" in body)


def _colon(title: str) -> str:
    return f": {title}" if title else ""


def _timeout_from_seconds(seconds: float) -> Timeout:
    """A single number is the read timeout; connecting never waits longer than the default."""
    return Timeout(connect=min(DEFAULT_TIMEOUT.connect, seconds), read=seconds)
