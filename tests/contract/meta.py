"""The contract harness of the Meta Custom Audiences connector (destinations/meta.py), against
the Graph API emulator (destinations/sandbox/meta.py).

An audience holds people, not fields, and Meta stores only hashes: the harness keeps the
key behind every email hash it hands out (``upsert`` and ``expect_keys``), so ``held`` can
answer in the test's own keys, and the fields a test asked for (``upsert(key, **fields)``),
which the platform never receives, so the contract's "what the destination holds" reads the
same for every connector. The emulator's app secret is set, so every contract test also
checks the ``appsecret_proof`` the connector signs each request with, and a minute of
Meta's ``estimated_time_to_regain_access`` lasts one second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from contract.harness import ConnectorHarness
from destinations.base import Change
from destinations.http import Timeout
from destinations.identifiers import meta_email, sha256_hex
from destinations.meta import MetaCustomAudienceDestination
from destinations.sandbox.faults import Fault
from destinations.sandbox.meta import DEFAULT_AUDIENCE_ID, MetaEmulator
from destinations.sandbox.server import SandboxServer

TOKEN_ENV = "CONTRACT_META_TOKEN"
APP_SECRET_ENV = "CONTRACT_META_APP_SECRET"
APP_SECRET = "contract-app-secret-0123456789abcdef"
WRONG_TOKEN = "EAAwrongTokenNotTheSandboxes000000000"
WRONG_APP_SECRET = "not-the-app-secret-9876543210fedcba"
#: a minute of estimated_time_to_regain_access, in the contract tests
MINUTE_SECONDS = 1.0


@dataclass
class MetaSandbox:
    server: SandboxServer
    emulator: MetaEmulator

    @property
    def base_url(self) -> str:
        return self.server.base_url(self.emulator)


def email_of(key: str) -> str:
    """The email a contract key stands for (a sync's keys are emails already)."""
    return key if "@" in key else f"{key}@example.com"


def email_hash(key: str) -> str:
    normalised = meta_email(email_of(key))
    assert normalised is not None, key
    return sha256_hex(normalised)


class MetaHarness(ConnectorHarness):
    connector_type = "meta_custom_audience"
    carries_fields = False
    credentials_refusal = "error 190"

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._fields: dict[str, dict[str, Any]] = {}

    def sync_mapping(self) -> dict[str, Any]:
        return {
            "identifiers": {
                "email": "email",
                "phone": "phone",
                "first_name": "first_name",
                "last_name": "last_name",
                "city": "city",
                "zip": "postal_code",
                "country": "country",
            },
            "fields": {},
            "consent_purpose": "ads_personalization",
        }

    def expect_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys[email_hash(key)] = key

    @contextmanager
    def sandbox(self) -> Iterator[MetaSandbox]:
        emulator = MetaEmulator(app_secret=APP_SECRET, minute_seconds=MINUTE_SECONDS)
        with SandboxServer([emulator]) as server:
            yield MetaSandbox(server, emulator)

    def options(self, sandbox: MetaSandbox) -> dict[str, Any]:
        return {
            "audience_id": DEFAULT_AUDIENCE_ID,
            "access_token_env": TOKEN_ENV,
            "app_secret_env": APP_SECRET_ENV,
            "base_url": sandbox.base_url,
        }

    def env(self, sandbox: MetaSandbox) -> dict[str, str]:
        return {TOKEN_ENV: sandbox.emulator.access_token, APP_SECRET_ENV: APP_SECRET}

    def wrong_credentials_env(self, sandbox: MetaSandbox) -> dict[str, str]:
        return {TOKEN_ENV: WRONG_TOKEN, APP_SECRET_ENV: WRONG_APP_SECRET}

    def build(
        self,
        sandbox: MetaSandbox,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> MetaCustomAudienceDestination:
        tuning: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return MetaCustomAudienceDestination(
            self.name,
            audience_id=DEFAULT_AUDIENCE_ID,
            access_token=sandbox.emulator.access_token,
            app_secret=APP_SECRET,
            base_url=sandbox.base_url,
            sync_name="contract",
            timeout=Timeout(connect=1.0, read=read_timeout),
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=max_retry_after,
            minute_seconds=MINUTE_SECONDS,
            access_token_env=TOKEN_ENV,
            app_secret_env=APP_SECRET_ENV,
            **tuning,
        )

    def upsert(self, key: str, **fields: Any) -> Change:
        self._keys[email_hash(key)] = key
        self._fields[key] = fields
        identifiers = {"email": email_of(key), "external_id": f"ext-{key}"}
        return Change(change_id=f"chg-{key}-up", op="upsert", key=key, identifiers=identifiers)

    def remove(self, key: str) -> Change:
        return Change(change_id=f"chg-{key}-rm", op="remove", key=key, identifiers={"email": email_of(key)})

    def bad_identifier_upsert(self, key: str) -> tuple[Change, list[str]]:
        bad_email = f"{key}.doe(at)example"
        change = Change(change_id=f"chg-{key}-bad", op="upsert", key=key, identifiers={"email": bad_email})
        return change, [bad_email]

    def held(self, sandbox: MetaSandbox) -> dict[str, dict[str, Any]]:
        """Each email hash the audience holds, as the key it was made from (an unknown hash as
        itself), with the fields the test asked for (Meta never receives them)."""
        keys = [self._keys.get(digest, digest) for digest in sandbox.emulator.emails()]
        return {key: dict(self._fields.get(key, {})) for key in keys}

    def requests(self, sandbox: MetaSandbox) -> int:
        return sum(1 for r in sandbox.emulator.requests if r.path.endswith("/users"))

    def wait_idle(self, sandbox: MetaSandbox) -> None:
        assert sandbox.server.wait_idle()

    def fail(self, sandbox: MetaSandbox, status: int, *, title: str, times: int = 1) -> None:
        sandbox.emulator.faults.inject(*[Fault.status(status, title=title)] * times)

    def throttle(self, sandbox: MetaSandbox, *, retry_after: float) -> None:
        sandbox.emulator.faults.inject(Fault.throttle(retry_after=retry_after))

    def drop(self, sandbox: MetaSandbox, *, apply_first: bool = False) -> None:
        sandbox.emulator.faults.inject(Fault.drop(apply_first=apply_first))

    def stall(self, sandbox: MetaSandbox, seconds: float, *, apply_first: bool = False) -> None:
        sandbox.emulator.faults.inject(Fault.timeout(seconds, apply_first=apply_first))

    def clear_faults(self, sandbox: MetaSandbox) -> None:
        sandbox.emulator.faults.clear()

    def reject(self, sandbox: MetaSandbox, keys: Iterable[str], *, retryable: bool, error: str | None = None) -> None:
        hashes = frozenset(email_hash(key) for key in keys)
        sandbox.emulator.faults.inject(Fault.reject(keys=hashes, retryable=retryable, error=error))
