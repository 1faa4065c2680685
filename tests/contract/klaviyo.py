"""The contract harness of the Klaviyo connector (destinations/klaviyo.py), against the
Klaviyo emulator (destinations/sandbox/klaviyo.py) on the shared sandbox host.

Klaviyo's windows are 50 times shorter here on both sides (the emulator's and the
connector's pacing), so a test never waits a real minute; the limits per window are
Klaviyo's own. Faults "for the next request" go to the request that carries the batch:
the import job for upserts, the list call for removals. What the platform holds is the
list's members, read back as change keys with their fields (custom properties, plus
first and last name)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from contract.harness import ConnectorHarness
from destinations.base import Change
from destinations.http import Timeout
from destinations.klaviyo import NAME_ATTRIBUTES, KlaviyoDestination
from destinations.sandbox.faults import Fault
from destinations.sandbox.klaviyo import DEFAULT_LIST_ID, KlaviyoEmulator
from destinations.sandbox.server import SandboxServer

API_KEY_ENV = "CONTRACT_KLAVIYO_API_KEY"
#: well-formed (pk_ and 34 hex) but not the sandbox's
WRONG_API_KEY = "pk_0123456789abcdef0123456789abcdef01"
#: Klaviyo's burst (1 s) and steady (60 s) windows, shortened 50 times
WINDOWS = (0.02, 1.2)
#: the requests that carry a batch: an import job, or a list call
CARRIERS = r"^/api/(profile-bulk-import-jobs|lists/[^/]+/relationships/profiles)/?$"
IMPORT_JOB = r"^/api/profile-bulk-import-jobs/?$"
_COUNTED = re.compile(r"^/api/(profile-bulk-import-jobs|lists/[^/]+/relationships/profiles)/?$")


@dataclass
class RunningKlaviyo:
    server: SandboxServer
    emulator: KlaviyoEmulator

    @property
    def base_url(self) -> str:
        return f"{self.server.base_url(self.emulator)}/api"


def fast_emulator(**overrides: Any) -> KlaviyoEmulator:
    """An emulator with Klaviyo's limits in windows 50 times shorter."""
    return KlaviyoEmulator(**{"burst_seconds": WINDOWS[0], "steady_seconds": WINDOWS[1], **overrides})


class KlaviyoHarness(ConnectorHarness):
    connector_type = "klaviyo"

    def __init__(self) -> None:
        #: email -> the change key it stands for
        self._keys: dict[str, str] = {}

    def expect_keys(self, keys: Iterable[str]) -> None:
        self._keys.update({key: key for key in keys})

    @contextmanager
    def sandbox(self) -> Iterator[RunningKlaviyo]:
        emulator = fast_emulator()
        with SandboxServer([emulator]) as server:
            yield RunningKlaviyo(server, emulator)

    def options(self, sandbox: RunningKlaviyo) -> dict[str, Any]:
        return {
            "list_id": DEFAULT_LIST_ID,
            "api_key_env": API_KEY_ENV,
            "base_url": sandbox.base_url,
            "poll_interval_seconds": 0.01,
        }

    def env(self, sandbox: RunningKlaviyo) -> dict[str, str]:
        return {API_KEY_ENV: sandbox.emulator.api_key}

    def wrong_credentials_env(self, sandbox: RunningKlaviyo) -> dict[str, str]:
        return {API_KEY_ENV: WRONG_API_KEY}

    def build(
        self,
        sandbox: RunningKlaviyo,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> KlaviyoDestination:
        tuning: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return KlaviyoDestination(
            self.name,
            api_key=sandbox.emulator.api_key,
            list_id=DEFAULT_LIST_ID,
            base_url=sandbox.base_url,
            sync_name="contract",
            timeout=Timeout(connect=1.0, read=read_timeout),
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=max_retry_after,
            window_seconds=WINDOWS,
            poll_interval=0.005,
            poll_timeout=10.0,
            **tuning,
        )

    def _email(self, key: str) -> str:
        email = key if "@" in key else f"{key}@example.com"
        self._keys[email] = key
        return email

    def upsert(self, key: str, **fields: Any) -> Change:
        return Change(f"chg-{key}-up", "upsert", key, identifiers={"email": self._email(key)}, fields=fields)

    def remove(self, key: str) -> Change:
        return Change(f"chg-{key}-rm", "remove", key, identifiers={"email": self._email(key)})

    def bad_identifier_upsert(self, key: str) -> tuple[Change, list[str]]:
        bad_email = f"{key}.doe(at)example"
        return Change(f"chg-{key}-bad", "upsert", key, identifiers={"email": bad_email}), [bad_email]

    def held(self, sandbox: RunningKlaviyo) -> dict[str, dict[str, Any]]:
        held = {}
        for profile in sandbox.emulator.members(DEFAULT_LIST_ID).values():
            key = self._keys.get(profile["email"], profile["email"])
            names = {name: profile[name] for name in NAME_ATTRIBUTES if profile.get(name) is not None}
            held[key] = {**profile["properties"], **names}
        return held

    def remembers(self, sandbox: RunningKlaviyo, key: str) -> bool:
        """A profile removed from the list is still a profile; only a deletion job forgets it."""
        wanted = self._email(key).lower()
        with sandbox.emulator.lock:
            return any((profile.get("email") or "").lower() == wanted for profile in sandbox.emulator.profiles.values())

    def requests(self, sandbox: RunningKlaviyo) -> int:
        """Import jobs created and removals made (a list add follows its import job)."""
        return sum(
            1
            for r in sandbox.emulator.requests
            if _COUNTED.match(r.path) and (r.method, "lists" in r.path) in {("POST", False), ("DELETE", True)}
        )

    def wait_idle(self, sandbox: RunningKlaviyo) -> None:
        assert sandbox.server.wait_idle()

    def fail(self, sandbox: RunningKlaviyo, status: int, *, title: str, times: int = 1) -> None:
        sandbox.emulator.faults.on_route("*", CARRIERS, Fault.status(status, title=title), times=times)

    def throttle(self, sandbox: RunningKlaviyo, *, retry_after: float) -> None:
        sandbox.emulator.faults.on_route("*", CARRIERS, Fault.throttle(retry_after=retry_after))

    def drop(self, sandbox: RunningKlaviyo, *, apply_first: bool = False) -> None:
        sandbox.emulator.faults.on_route("*", CARRIERS, Fault.drop(apply_first=apply_first))

    def stall(self, sandbox: RunningKlaviyo, seconds: float, *, apply_first: bool = False) -> None:
        sandbox.emulator.faults.on_route("*", CARRIERS, Fault.timeout(seconds, apply_first=apply_first))

    def clear_faults(self, sandbox: RunningKlaviyo) -> None:
        sandbox.emulator.faults.clear()

    def reject(
        self, sandbox: RunningKlaviyo, keys: Iterable[str], *, retryable: bool, error: str | None = None
    ) -> None:
        emails = frozenset(self._email(key) for key in keys)
        sandbox.emulator.faults.on_route(
            "POST", IMPORT_JOB, Fault.reject(keys=emails, retryable=retryable, error=error)
        )
