"""The contract harness of the Mailchimp connector (destinations/mailchimp.py), against the
Mailchimp emulator (destinations/sandbox/mailchimp.py).

Mailchimp keeps members by email and fields as merge tags, so the harness translates: a
test's key ``p1`` is the member ``p1@example.com`` (a sync_world key is already an email),
and a test's field names are merge tags of the sandbox list (``plan`` → ``PLAN``). What the
platform "holds" is the list's reachable members (subscribed or pending), with the merge
fields that have a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from contract.harness import ConnectorHarness
from destinations.base import Change
from destinations.http import Timeout
from destinations.identifiers import mailchimp_email
from destinations.mailchimp import MailchimpDestination
from destinations.sandbox.faults import Fault
from destinations.sandbox.mailchimp import MailchimpEmulator, MailchimpSandbox

API_KEY_ENV = "CONTRACT_MAILCHIMP_API_KEY"
#: well-formed (32 hex digits and a data centre) but not the sandbox's
WRONG_API_KEY = "ffffffffffffffffffffffffffffffff-us19"
LIST_ID = "contract01"
#: the tests' field names -> merge tags of the sandbox list (Mailchimp tags are ≤ 10 upper-case characters)
MERGE_TAGS = {"plan": "PLAN", "ltv": "LTV", "first_name": "FNAME", "lifetime_value": "LIFEVALUE"}
FIELD_NAMES = {tag: name for name, tag in MERGE_TAGS.items()}
#: the merge fields the sandbox list has beside Mailchimp's defaults (FNAME, LNAME, …)
EXTRA_MERGE_FIELDS = {"PLAN": "text", "LTV": "number", "LIFEVALUE": "number"}
#: requests that carry changes: the batch call and archiving one member
_BATCH_PATH = f"/3.0/lists/{LIST_ID}"
_MEMBER_PATH = f"/3.0/lists/{LIST_ID}/members/"


def email_for(key: str) -> str:
    return key if "@" in key else f"{key}@example.com"


class MailchimpHarness(ConnectorHarness):
    connector_type = "mailchimp"

    def __init__(self) -> None:
        #: lower-cased email -> the key the test used for it
        self._keys: dict[str, str] = {}

    def sync_mapping(self) -> dict[str, Any]:
        return {
            "identifiers": {"email": "email"},
            "fields": {"FNAME": "first_name", "LIFEVALUE": "lifetime_value"},
            "consent_purpose": "email_marketing",
        }

    def expect_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys[mailchimp_email(email_for(key))] = key

    @contextmanager
    def sandbox(self) -> Iterator[MailchimpSandbox]:
        emulator = MailchimpEmulator(list_id=LIST_ID, list_name="Contract audience", merge_fields=EXTRA_MERGE_FIELDS)
        with MailchimpSandbox(emulator) as sandbox:
            yield sandbox

    def options(self, sandbox: MailchimpSandbox) -> dict[str, Any]:
        return {"list_id": LIST_ID, "api_key_env": API_KEY_ENV, "base_url": sandbox.base_url}

    def env(self, sandbox: MailchimpSandbox) -> dict[str, str]:
        return {API_KEY_ENV: sandbox.api_key}

    def wrong_credentials_env(self, sandbox: MailchimpSandbox) -> dict[str, str]:
        return {API_KEY_ENV: WRONG_API_KEY}

    def build(
        self,
        sandbox: MailchimpSandbox,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> MailchimpDestination:
        tuning: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return MailchimpDestination(
            self.name,
            sandbox.api_key,
            LIST_ID,
            base_url=sandbox.base_url,
            sync_name="contract",
            timeout=Timeout(connect=1.0, read=read_timeout),
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=max_retry_after,
            **tuning,
        )

    def upsert(self, key: str, **fields: Any) -> Change:
        email = email_for(key)
        self._keys[mailchimp_email(email)] = key
        merge_fields = {MERGE_TAGS.get(name, name.upper()): value for name, value in fields.items()}
        return Change(
            change_id=f"chg-{key}-up", op="upsert", key=key, identifiers={"email": email}, fields=merge_fields
        )

    def remove(self, key: str) -> Change:
        return Change(change_id=f"chg-{key}-rm", op="remove", key=key, identifiers={"email": email_for(key)})

    def bad_identifier_upsert(self, key: str) -> tuple[Change, list[str]]:
        bad_email = f"{key}.doe(at)example"
        change = Change(change_id=f"chg-{key}-bad", op="upsert", key=key, identifiers={"email": bad_email})
        return change, [bad_email]

    def held(self, sandbox: MailchimpSandbox) -> dict[str, dict[str, Any]]:
        return {
            self._keys.get(email, email): {
                FIELD_NAMES.get(tag, tag.lower()): value
                for tag, value in member["merge_fields"].items()
                if tag in FIELD_NAMES or tag in EXTRA_MERGE_FIELDS
            }
            for email, member in sandbox.emulator.held(LIST_ID).items()
        }

    def remembers(self, sandbox: MailchimpSandbox, key: str) -> bool:
        """An archived or unsubscribed member is still kept; only a permanent delete forgets."""
        wanted = mailchimp_email(email_for(key))
        return any(
            mailchimp_email(member["email_address"]) == wanted for member in sandbox.emulator.members(LIST_ID).values()
        )

    def requests(self, sandbox: MailchimpSandbox) -> int:
        return sum(
            1
            for logged in sandbox.emulator.requests
            if (logged.method == "POST" and logged.path.rstrip("/") == _BATCH_PATH)
            or (logged.method == "DELETE" and logged.path.startswith(_MEMBER_PATH))
        )

    def wait_idle(self, sandbox: MailchimpSandbox) -> None:
        assert sandbox.server.wait_idle()

    def fail(self, sandbox: MailchimpSandbox, status: int, *, title: str, times: int = 1) -> None:
        sandbox.emulator.faults.inject(*[Fault.status(status, title=title)] * times)

    def throttle(self, sandbox: MailchimpSandbox, *, retry_after: float) -> None:
        sandbox.emulator.faults.inject(Fault.throttle(retry_after=retry_after))

    def drop(self, sandbox: MailchimpSandbox, *, apply_first: bool = False) -> None:
        sandbox.emulator.faults.inject(Fault.drop(apply_first=apply_first))

    def stall(self, sandbox: MailchimpSandbox, seconds: float, *, apply_first: bool = False) -> None:
        sandbox.emulator.faults.inject(Fault.timeout(seconds, apply_first=apply_first))

    def clear_faults(self, sandbox: MailchimpSandbox) -> None:
        sandbox.emulator.faults.clear()

    def reject(
        self, sandbox: MailchimpSandbox, keys: Iterable[str], *, retryable: bool, error: str | None = None
    ) -> None:
        emails = frozenset(mailchimp_email(email_for(key)) for key in keys)
        sandbox.emulator.faults.inject(Fault.reject(keys=emails, retryable=retryable, error=error))
