"""Faults on demand for every sandbox emulator, and the rate windows they enforce.

A :class:`Fault` is one misbehaviour acted out on one request: an HTTP status, the
platform's own throttle signal, a slow answer, a dropped connection, or per-record
rejections inside a successful answer. A :class:`FaultPlan` decides which request gets
which fault:

- ``inject(*faults)``: the next requests, one fault each, in order;
- ``inject_at(n, fault)``: the n-th request this emulator receives (1-based);
- ``on_route(method, pattern, fault, times=1)``: the next requests to one endpoint (a
  regular expression over the path after the emulator's prefix) — how a test breaks one
  step of a multi-call flow (Klaviyo's import → resolve → list add);
- ``on_key(key, fault)``: any request whose body carries ``key`` (a hash, an email, a
  profile id), as often as it comes;
- ``random(seed, probability, faults)``: a seeded chance per request, for property tests.

Every emulator maps the neutral kinds to its platform's own shape: ``throttle`` is a 429
with ``Retry-After`` at Klaviyo, an HTTP 400 with error code 80003 at Meta,
``RESOURCE_EXHAUSTED`` at Google; ``status`` answers with the platform's own error body.
"""

from __future__ import annotations

import hashlib
import random as _random
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["status", "throttle", "timeout", "drop", "reject"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by one request. Build with the classmethods."""

    kind: FaultKind
    code: int = 0
    title: str = ""
    retry_after: str | None = None
    seconds: float = 0.0
    apply_first: bool = False
    keys: frozenset[str] = frozenset()
    fraction: float = 0.0
    retryable: bool = True
    error: str = ""

    @classmethod
    def status(cls, code: int, *, title: str | None = None, retry_after: float | str | None = None) -> Fault:
        """Answer ``code`` (with the platform's error body) without looking at the request."""
        header = None if retry_after is None else _retry_after_header(retry_after)
        return cls("status", code=code, title=title or f"injected HTTP {code}", retry_after=header)

    @classmethod
    def throttle(cls, retry_after: float | str = 1) -> Fault:
        """The platform's own throttle signal (429 + Retry-After, Meta's code 80003 …)."""
        return cls("throttle", title="too many requests", retry_after=_retry_after_header(retry_after))

    @classmethod
    def timeout(cls, seconds: float, *, apply_first: bool = False) -> Fault:
        """Sleep ``seconds`` before answering; with ``apply_first`` the request takes effect
        first (the "did it land?" case), otherwise it is processed after the sleep."""
        return cls("timeout", seconds=seconds, apply_first=apply_first)

    @classmethod
    def drop(cls, *, apply_first: bool = False) -> Fault:
        """Close the connection without any response; with ``apply_first`` after applying."""
        return cls("drop", apply_first=apply_first)

    @classmethod
    def reject(
        cls,
        *,
        keys: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        fraction: float = 0.0,
        retryable: bool = False,
        error: str | None = None,
    ) -> Fault:
        """Answer as usual but refuse the records with these keys, plus a deterministic
        ``fraction`` of the others (chosen by a hash of the key), in the platform's own
        per-record error shape, without applying them."""
        message = error or ("temporarily unable to store this record" if retryable else "record refused")
        return cls("reject", keys=frozenset(keys), fraction=fraction, retryable=retryable, error=message)

    def rejects(self, key: str) -> bool:
        """Whether this reject fault refuses the record with ``key`` (stable across runs)."""
        if key in self.keys:
            return True
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
        return bucket < self.fraction

    @property
    def retry_after_seconds(self) -> int:
        """The Retry-After as whole seconds (Klaviyo's SDK parses it with ``int()``)."""
        try:
            return max(0, int(float(self.retry_after or 0)))
        except ValueError:
            return 1


def _retry_after_header(value: float | str) -> str:
    return value if isinstance(value, str) else str(int(value))


@dataclass
class _RouteFault:
    method: str
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int


@dataclass
class _RandomFaults:
    rng: _random.Random
    probability: float
    faults: tuple[Fault, ...]


@dataclass
class FaultPlan:
    """Which request gets which fault. Thread-safe; one plan per emulator."""

    _queue: deque[Fault] = field(default_factory=deque)
    _scheduled: dict[int, Fault] = field(default_factory=dict)
    _routes: list[_RouteFault] = field(default_factory=list)
    _keys: dict[str, Fault] = field(default_factory=dict)
    _random: _RandomFaults | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def inject_at(self, n: int, fault: Fault) -> None:
        with self._lock:
            self._scheduled[n] = fault

    def on_route(self, method: str, pattern: str, fault: Fault, *, times: int = 1) -> None:
        with self._lock:
            self._routes.append(_RouteFault(method.upper(), re.compile(pattern), fault, times))

    def on_key(self, key: str, fault: Fault) -> None:
        with self._lock:
            self._keys[key] = fault

    def random(self, seed: int, probability: float, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._random = _RandomFaults(_random.Random(seed), probability, tuple(faults))

    def clear(self) -> int:
        """Forget every fault (so one test phase's leftovers do not leak into the next)."""
        with self._lock:
            dropped = len(self._queue) + len(self._scheduled) + len(self._routes) + len(self._keys)
            dropped += 1 if self._random else 0
            self._queue.clear()
            self._scheduled.clear()
            self._routes.clear()
            self._keys.clear()
            self._random = None
            return dropped

    def pick(self, number: int, method: str, path: str, body: bytes) -> Fault | None:
        """The fault for request ``number``: scheduled, then route, then key, then queued,
        then random. At most one fault per request."""
        with self._lock:
            if number in self._scheduled:
                return self._scheduled.pop(number)
            for route in self._routes:
                if route.remaining > 0 and route.method in (method, "*") and route.pattern.search(path):
                    route.remaining -= 1
                    if route.remaining == 0:
                        self._routes.remove(route)
                    return route.fault
            if self._keys and body:
                text = body.decode("utf-8", "replace")
                for key, fault in self._keys.items():
                    if key in text:
                        return fault
            if self._queue:
                return self._queue.popleft()
            if self._random and self._random.faults and self._random.rng.random() < self._random.probability:
                return self._random.rng.choice(self._random.faults)
            return None


class RateWindow:
    """Requests allowed per window (a burst of 1 s, a steady minute …), counted per request.

    ``admit()`` counts a request and says whether it is within the limit; a request over
    it is a violation the emulator answers with the platform's throttle signal and counts,
    so a test can assert that a connector never exceeded a platform's limits.
    """

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, now: float | None = None) -> tuple[bool, float]:
        """(allowed, seconds until a slot frees) for one request now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] >= self.seconds:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return False, self.seconds - (now - self._times[0])
            self._times.append(now)
            return True, 0.0

    def remaining(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            live = sum(1 for t in self._times if now - t < self.seconds)
            return max(0, self.limit - live)

    def reset(self, now: float | None = None) -> float:
        """Seconds until the oldest request in the window leaves it (0 when none is counted):
        what a platform's ``RateLimit-Reset`` header reports."""
        now = time.monotonic() if now is None else now
        with self._lock:
            live = [t for t in self._times if now - t < self.seconds]
            return self.seconds - (now - live[0]) if live else 0.0
