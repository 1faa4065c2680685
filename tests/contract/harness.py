"""What the contract suite needs from each connector: a harness.

A harness knows one platform: how to start its sandbox, build a connector pointed at it,
inject faults into it and read what it ends up holding. The tests in
test_connector_contract.py are written once against this interface and run for every
registered connector, so a new connector gets them by writing one harness (and cannot
skip them: a connector without a harness fails the suite).

Platforms differ in ways the harness absorbs, not the tests:

- batch limits: ``build`` uses the connector's own default batch size unless told one;
  the sandbox enforces the platform's real limit;
- hashing: ``upsert`` builds changes with plain identifiers (the connector hashes them as
  the platform requires); ``held`` translates what the platform stores back to the
  change keys and field names the test used;
- async jobs: a connector that submits a job and polls it still answers ``send`` with
  outcomes; the sandbox completes jobs, and a fault injected "for the next request"
  applies to the request that carries the batch (the harness decides which that is);
- per-record failures inside 2xx bodies: ``reject`` makes the sandbox report them.

Faults apply to the next requests the sandbox receives, in the order injected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from destinations.base import Change, Destination


class ConnectorHarness(ABC):
    """One connector's plumbing for the contract tests."""

    #: the connector's key in destinations.config.CONNECTORS
    connector_type: ClassVar[str]
    #: the destination name the harness gives connectors (errors must name it)
    name: ClassVar[str] = "contract-destination"
    #: whether the platform keeps fields beside identifiers (an ad audience keeps people only)
    carries_fields: ClassVar[bool] = True
    #: how the platform says "wrong credentials", which a configuration error must quote: HTTP
    #: 401 for most; Meta's Graph API answers HTTP 400 with error code 190
    credentials_refusal: ClassVar[str] = "HTTP 401"

    # -- syncs through the engine (tests/sync_world.py, the sync property test) ------------

    def sync_mapping(self) -> dict[str, Any]:
        """The sync settings for tests/sync_world.py's columns (email, phone, first_name,
        last_name, city, postal_code, country, lifetime_value): identifiers, fields and the
        consent purpose this platform's syncs use."""
        return {
            "identifiers": {"email": "email"},
            "fields": {"first_name": "first_name", "lifetime_value": "lifetime_value"},
            "consent_purpose": "email_marketing",
        }

    def expect_keys(self, keys: Iterable[str]) -> None:
        """Keys the next changes may carry; a harness whose platform stores hashes keeps them
        to read its state back as keys (``held``)."""
        return None  # most platforms keep keys as they are

    # -- the sandbox and the connector ----------------------------------------------

    @abstractmethod
    @contextmanager
    def sandbox(self) -> Iterator[Any]:
        """A fresh, running sandbox of the platform (stopped on exit)."""

    @abstractmethod
    def options(self, sandbox: Any) -> dict[str, Any]:
        """A destinations.yml entry (without ``type``) pointing a connector at ``sandbox``."""

    @abstractmethod
    def env(self, sandbox: Any) -> dict[str, str]:
        """The environment holding the secrets ``options`` names."""

    @abstractmethod
    def wrong_credentials_env(self, sandbox: Any) -> dict[str, str]:
        """Like ``env``, with well-formed credentials the sandbox refuses."""

    @abstractmethod
    def build(
        self,
        sandbox: Any,
        *,
        batch_size: int | None = None,
        max_retries: int = 2,
        max_retry_after: float = 2.0,
        read_timeout: float = 2.0,
    ) -> Destination:
        """A connector for ``sandbox`` tuned for tests: ``max_retries`` retries with no
        back-off, short waits. ``batch_size`` None keeps the connector's default."""

    # -- what to send ------------------------------------------------------------------

    @abstractmethod
    def upsert(self, key: str, **fields: Any) -> Change:
        """A valid upsert of the record ``key`` with these fields."""

    @abstractmethod
    def remove(self, key: str) -> Change:
        """A removal of the record ``key``."""

    @abstractmethod
    def bad_identifier_upsert(self, key: str) -> tuple[Change, list[str]]:
        """An upsert whose identifier the platform refuses, and the personal values in it
        that must never appear in an outcome or an exception."""

    # -- what the sandbox saw ------------------------------------------------------------

    @abstractmethod
    def held(self, sandbox: Any) -> dict[str, dict[str, Any]]:
        """What the platform holds: change key -> fields, in the test's own terms."""

    def remembers(self, sandbox: Any, key: str) -> bool:
        """Whether the platform keeps anything of the record ``key`` — a member in any status, a
        profile outside the list — not only what it counts as held (a privacy request's test)."""
        return key in self.held(sandbox)

    def received(self, sandbox: Any) -> bytes:
        """Every request's path, query and body the sandbox received, as one byte string (to look
        for a value — raw or hashed — that must never have reached the platform)."""
        return b"\n".join(f"{r.path}?{r.query}\n".encode() + r.body for r in sandbox.emulator.requests)

    @abstractmethod
    def requests(self, sandbox: Any) -> int:
        """How many requests carrying changes the sandbox has answered (or dropped)."""

    @abstractmethod
    def wait_idle(self, sandbox: Any) -> None:
        """Wait until the sandbox handles no request (a delivery the client gave up on may
        still land late)."""

    # -- faults, for the next requests ---------------------------------------------------

    @abstractmethod
    def fail(self, sandbox: Any, status: int, *, title: str, times: int = 1) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` and the platform's error
        body carrying ``title``."""

    @abstractmethod
    def throttle(self, sandbox: Any, *, retry_after: float) -> None:
        """Answer the next request 429 with Retry-After (or the platform's throttle code)."""

    @abstractmethod
    def drop(self, sandbox: Any, *, apply_first: bool = False) -> None:
        """Close the next request's connection without answering (after applying it, if told)."""

    @abstractmethod
    def stall(self, sandbox: Any, seconds: float, *, apply_first: bool = False) -> None:
        """Answer the next request only after ``seconds`` (applying it first, if told)."""

    @abstractmethod
    def clear_faults(self, sandbox: Any) -> None:
        """Forget every fault not consumed yet."""

    @abstractmethod
    def reject(self, sandbox: Any, keys: Iterable[str], *, retryable: bool, error: str | None = None) -> None:
        """Answer the next request with success for the batch but a per-record failure for
        ``keys`` (retryable or not), with ``error`` as the platform's message if given."""
