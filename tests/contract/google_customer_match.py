"""The contract harness of the Google Customer Match connector
(destinations/google_customer_match.py), against the Data Manager emulator
(destinations/sandbox/datamanager.py).

Customer Match keeps people, not fields: the emulator holds hashed identifiers. ``held``
maps the email hashes it holds back to the test's keys (through the keys the harness built
or was told to expect) and reports, for each, the fields the test attached to its last
upsert — the platform itself stores none, so the contract's field assertions check only
who is in the audience here.

Faults go to the requests that carry members (``audienceMembers:ingest`` / ``:remove``),
not to the request-status polls after them (tests/test_google_customer_match.py breaks
those on purpose).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from contract.harness import ConnectorHarness
from destinations.base import Change
from destinations.google_ads_legacy import GoogleAdsLegacyDestination
from destinations.google_customer_match import GoogleCustomerMatchDestination
from destinations.http import Timeout
from destinations.identifiers import google_email
from destinations.sandbox.datamanager import DEFAULT_ACCOUNT_ID, DEFAULT_AUDIENCE_ID, DataManagerEmulator
from destinations.sandbox.faults import Fault
from destinations.sandbox.googleads import DEFAULT_CUSTOMER_ID, DEFAULT_USER_LIST_ID, GoogleAdsEmulator
from destinations.sandbox.server import SandboxServer

TOKEN_ENV = "CONTRACT_GOOGLE_ACCESS_TOKEN"
WRONG_TOKEN = "ya29.not-the-sandbox-token-0123456789"
MEMBER_ROUTE = r"^/v1/audienceMembers:(ingest|remove)$"


@dataclass
class GoogleSandbox:
    server: SandboxServer
    emulator: DataManagerEmulator

    @property
    def base_url(self) -> str:
        return f"{self.server.base_url(self.emulator)}/v1"


def email_for(key: str) -> str:
    """The email a test key stands for: the key itself in sync tests, ``<key>@example.com`` here."""
    return key if "@" in key else f"{key}@example.com"


def email_hash(key: str) -> str:
    """How Data Manager holds the key's email: SHA-256 hex of Google's normal form."""
    return hashlib.sha256(google_email(email_for(key)).encode("utf-8")).hexdigest()


class GoogleCustomerMatchHarness(ConnectorHarness):
    connector_type = "google_customer_match"
    carries_fields = False

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._fields: dict[str, dict[str, Any]] = {}

    # -- syncs through the engine --------------------------------------------------------

    def sync_mapping(self) -> dict[str, Any]:
        return {
            "identifiers": {
                "email": "email",
                "phone": "phone",
                "first_name": "first_name",
                "last_name": "last_name",
                "zip": "postal_code",
                "country": "country",
            },
            "consent_purpose": "ads_personalization",
        }

    def expect_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            if google_email(email_for(key)):
                self._keys[email_hash(key)] = key

    # -- the sandbox and the connector -------------------------------------------------

    @contextmanager
    def sandbox(self) -> Iterator[GoogleSandbox]:
        emulator = DataManagerEmulator()
        with SandboxServer([emulator]) as server:
            yield GoogleSandbox(server, emulator)

    def options(self, sandbox: GoogleSandbox) -> dict[str, Any]:
        return {
            "base_url": sandbox.base_url,
            "access_token_env": TOKEN_ENV,
            "operating_account_id": DEFAULT_ACCOUNT_ID,
            "audience_id": DEFAULT_AUDIENCE_ID,
            "status_poll_seconds": 0.01,
        }

    def env(self, sandbox: GoogleSandbox) -> dict[str, str]:
        return {TOKEN_ENV: sandbox.emulator.token}

    def wrong_credentials_env(self, sandbox: GoogleSandbox) -> dict[str, str]:
        return {TOKEN_ENV: WRONG_TOKEN}

    def build(
        self,
        sandbox: GoogleSandbox,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> GoogleCustomerMatchDestination:
        tuning: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return GoogleCustomerMatchDestination(
            self.name,
            access_token=sandbox.emulator.token,
            operating_account_id=DEFAULT_ACCOUNT_ID,
            audience_id=DEFAULT_AUDIENCE_ID,
            base_url=sandbox.base_url,
            sync_name="contract",
            timeout=Timeout(connect=1.0, read=read_timeout),
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=max_retry_after,
            status_poll_seconds=0.01,
            status_wait_seconds=2.0,
            token_env=TOKEN_ENV,
            **tuning,
        )

    # -- what to send --------------------------------------------------------------------

    def upsert(self, key: str, **fields: Any) -> Change:
        self._keys[email_hash(key)] = key
        self._fields[key] = dict(fields)
        return Change(
            change_id=f"chg-{key}-up", op="upsert", key=key, identifiers={"email": email_for(key)}, fields=fields
        )

    def remove(self, key: str) -> Change:
        return Change(change_id=f"chg-{key}-rm", op="remove", key=key, identifiers={"email": email_for(key)})

    def bad_identifier_upsert(self, key: str) -> tuple[Change, list[str]]:
        bad_email = f"{key}.doe(at)example"
        change = Change(change_id=f"chg-{key}-bad", op="upsert", key=key, identifiers={"email": bad_email})
        return change, [bad_email]

    # -- what the sandbox saw ----------------------------------------------------------------

    def held(self, sandbox: GoogleSandbox) -> dict[str, dict[str, Any]]:
        emails = sandbox.emulator.snapshot()["audiences"][DEFAULT_AUDIENCE_ID]["emails"]
        held = {}
        for digest in emails:
            key = self._keys.get(digest, digest)
            held[key] = dict(self._fields.get(key, {}))
        return held

    def requests(self, sandbox: GoogleSandbox) -> int:
        return sum(1 for r in sandbox.emulator.requests if r.method == "POST" and "/audienceMembers:" in r.path)

    def wait_idle(self, sandbox: GoogleSandbox) -> None:
        assert sandbox.server.wait_idle()

    # -- faults ----------------------------------------------------------------------------

    def _on_members(self, sandbox: GoogleSandbox, fault: Fault, times: int = 1) -> None:
        sandbox.emulator.faults.on_route("POST", MEMBER_ROUTE, fault, times=times)

    def fail(self, sandbox: GoogleSandbox, status: int, *, title: str, times: int = 1) -> None:
        self._on_members(sandbox, Fault.status(status, title=title), times)

    def throttle(self, sandbox: GoogleSandbox, *, retry_after: float) -> None:
        self._on_members(sandbox, Fault.throttle(retry_after=retry_after))

    def drop(self, sandbox: GoogleSandbox, *, apply_first: bool = False) -> None:
        self._on_members(sandbox, Fault.drop(apply_first=apply_first))

    def stall(self, sandbox: GoogleSandbox, seconds: float, *, apply_first: bool = False) -> None:
        self._on_members(sandbox, Fault.timeout(seconds, apply_first=apply_first))

    def clear_faults(self, sandbox: GoogleSandbox) -> None:
        sandbox.emulator.faults.clear()

    def reject(self, sandbox: GoogleSandbox, keys: Iterable[str], *, retryable: bool, error: str | None = None) -> None:
        hashes = frozenset(email_hash(key) for key in keys)
        self._on_members(sandbox, Fault.reject(keys=hashes, retryable=retryable, error=error))


# -- the legacy mode (Google Ads OfflineUserDataJob), not registered: the same connector type ---------

LEGACY_TOKEN_ENV = "CONTRACT_GOOGLE_ADS_ACCESS_TOKEN"
LEGACY_USER_LIST = f"customers/{DEFAULT_CUSTOMER_ID}/userLists/{DEFAULT_USER_LIST_ID}"
OPERATIONS_ROUTE = r":addOperations$"


@dataclass
class GoogleAdsSandbox:
    server: SandboxServer
    emulator: GoogleAdsEmulator

    @property
    def base_url(self) -> str:
        return f"{self.server.base_url(self.emulator)}/v26"


class GoogleAdsLegacyHarness(GoogleCustomerMatchHarness):
    """The same connector in ``mode: google_ads_legacy`` against the Google Ads emulator.
    Faults go to ``:addOperations``, the request that carries the batch."""

    @contextmanager
    def sandbox(self) -> Iterator[GoogleAdsSandbox]:  # type: ignore[override]
        emulator = GoogleAdsEmulator()
        with SandboxServer([emulator]) as server:
            yield GoogleAdsSandbox(server, emulator)

    def options(self, sandbox: GoogleAdsSandbox) -> dict[str, Any]:  # type: ignore[override]
        return {
            "mode": "google_ads_legacy",
            "base_url": sandbox.base_url,
            "access_token_env": LEGACY_TOKEN_ENV,
            "customer_id": DEFAULT_CUSTOMER_ID,
            "user_list_id": DEFAULT_USER_LIST_ID,
            "status_poll_seconds": 0.01,
        }

    def env(self, sandbox: GoogleAdsSandbox) -> dict[str, str]:  # type: ignore[override]
        return {LEGACY_TOKEN_ENV: sandbox.emulator.token}

    def wrong_credentials_env(self, sandbox: GoogleAdsSandbox) -> dict[str, str]:  # type: ignore[override]
        return {LEGACY_TOKEN_ENV: WRONG_TOKEN}

    def build(  # type: ignore[override]
        self,
        sandbox: GoogleAdsSandbox,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> GoogleAdsLegacyDestination:
        tuning: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return GoogleAdsLegacyDestination(
            self.name,
            access_token=sandbox.emulator.token,
            customer_id=DEFAULT_CUSTOMER_ID,
            user_list_id=DEFAULT_USER_LIST_ID,
            base_url=sandbox.base_url,
            sync_name="contract",
            timeout=Timeout(connect=1.0, read=read_timeout),
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=max_retry_after,
            status_poll_seconds=0.01,
            status_wait_seconds=3.0,
            token_env=LEGACY_TOKEN_ENV,
            **tuning,
        )

    def held(self, sandbox: GoogleAdsSandbox) -> dict[str, dict[str, Any]]:  # type: ignore[override]
        emails = sandbox.emulator.snapshot()["user_lists"][LEGACY_USER_LIST]["emails"]
        return {self._keys.get(d, d): dict(self._fields.get(self._keys.get(d, d), {})) for d in emails}

    def requests(self, sandbox: GoogleAdsSandbox) -> int:  # type: ignore[override]
        return sum(1 for r in sandbox.emulator.requests if r.path.endswith(":addOperations"))

    def _on_members(self, sandbox: GoogleAdsSandbox, fault: Fault, times: int = 1) -> None:  # type: ignore[override]
        sandbox.emulator.faults.on_route("POST", OPERATIONS_ROUTE, fault, times=times)
