"""Client-side pacing for platforms that publish request rate limits.

A platform that counts requests in windows (Klaviyo: a 1-second burst and a 1-minute
steady window per account) answers 429 to the request that crosses a limit. Honouring
Retry-After after the fact recovers, but every 429 is a violation the platform counts
against the account. A connector paces itself instead: before each request it waits
until every window of the endpoint's tier has room.

Windows are sliding logs of the requests we made, which is never looser than a platform's
fixed windows. The platform's own view (``RateLimit-Remaining`` / ``RateLimit-Reset``,
which can be lower than ours when another integration shares the account) tightens it:
:meth:`RateLimiter.observe` pauses a tier until the platform says its window resets.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """At most ``limit`` requests in any ``seconds``."""

    limit: int
    seconds: float


class _Log:
    """The times of the requests made in one window."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more request fits."""
        while self.times and now - self.times[0] >= self.window.seconds:
            self.times.popleft()
        if len(self.times) < self.window.limit:
            return 0.0
        return self.window.seconds - (now - self.times[-self.window.limit])


class RateLimiter:
    """Waits before each request until every window of its tier has room.

    ``tiers`` maps a tier name to its windows, e.g. ``{"M": (Window(10, 1), Window(150, 60))}``.
    ``sleep`` and ``clock`` are injectable so tests can run without real waits.
    """

    def __init__(
        self,
        tiers: Mapping[str, tuple[Window, ...]],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logs = {name: [_Log(window) for window in windows] for name, windows in tiers.items()}
        self._paused_until: dict[str, float] = {}
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        #: seconds spent waiting, per tier (a connector may report it)
        self.waited: dict[str, float] = dict.fromkeys(tiers, 0.0)

    @property
    def tiers(self) -> list[str]:
        return list(self._logs)

    def acquire(self, tier: str, requests: int = 1) -> None:
        """Block until ``requests`` more requests of ``tier`` fit every window, and count them."""
        for _ in range(requests):
            self._acquire_one(tier)

    def _acquire_one(self, tier: str) -> None:
        logs = self._logs[tier]
        while True:
            with self._lock:
                now = self._clock()
                wait = max([log.wait(now) for log in logs] + [self._paused_until.get(tier, 0.0) - now])
                if wait <= 0:
                    for log in logs:
                        log.times.append(now)
                    return
            self.waited[tier] += wait
            self._sleep(wait)

    def record(self, tier: str, requests: int) -> None:
        """Count requests made without :meth:`acquire` (retries the HTTP layer made on its own)."""
        with self._lock:
            now = self._clock()
            for log in self._logs[tier]:
                log.times.extend([now] * requests)

    def observe(self, tier: str, *, limit: int | None, remaining: int | None, reset_seconds: float | None) -> None:
        """The platform's view of the tier's steady (longest) window after a response: a
        lower limit than ours replaces ours; with nothing remaining, no request of this tier
        is made until the window resets."""
        with self._lock:
            steady = max(self._logs[tier], key=lambda log: log.window.seconds)
            if limit is not None and 0 < limit < steady.window.limit:
                steady.window = Window(limit, steady.window.seconds)
            if remaining is not None and reset_seconds is not None and remaining <= 0:
                until = self._clock() + max(0.0, reset_seconds)
                self._paused_until[tier] = max(self._paused_until.get(tier, 0.0), until)
