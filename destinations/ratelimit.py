"""Client-side pacing for platforms that publish request rate limits.

A platform that counts requests in windows (Klaviyo: a 1-second burst and a 1-minute
steady window per account) answers 429 to the request that crosses a limit. Honouring
Retry-After after the fact recovers, but every 429 is a violation the platform counts
against the account. A connector paces itself instead: before each request it waits
until every window of the endpoint's tier has room.

Windows are sliding logs of the requests we made, which is never looser than a platform's
fixed windows. A request is logged when it is sent and logged again, later, when its
answer arrives (:meth:`RateLimiter.settle`): the platform counted it somewhere in between,
so measuring the next wait from the answer keeps network delays from squeezing two
requests into one of the platform's windows. The platform's own view (``RateLimit-Remaining`` / ``RateLimit-Reset``,
which can be lower than ours when another integration shares the account) tightens it:
:meth:`RateLimiter.observe` pauses a tier until the platform says its window resets.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

#: waits shorter than this are none (float rounding must not spin a sleep loop forever)
_EPSILON = 1e-6


@dataclass(frozen=True)
class Window:
    """At most ``limit`` requests in any ``seconds``."""

    limit: int
    seconds: float


class Ticket:
    """One request's place in its tier's windows: the time it counts from."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class _Log:
    """The requests made in one window."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.tickets: deque[Ticket] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more request fits."""
        expiry = self.window.seconds - _EPSILON
        if any(now - ticket.at >= expiry for ticket in self.tickets):
            self.tickets = deque(ticket for ticket in self.tickets if now - ticket.at < expiry)
        if len(self.tickets) < self.window.limit:
            return 0.0
        latest = sorted(ticket.at for ticket in self.tickets)[-self.window.limit]
        return self.window.seconds - (now - latest)


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

    def acquire(self, tier: str) -> Ticket:
        """Block until one more request of ``tier`` fits every window, and count it. Hand
        the ticket to :meth:`settle` when the answer arrives."""
        logs = self._logs[tier]
        while True:
            with self._lock:
                now = self._clock()
                wait = max([log.wait(now) for log in logs] + [self._paused_until.get(tier, 0.0) - now])
                if wait <= _EPSILON:
                    ticket = Ticket(now)
                    for log in logs:
                        log.tickets.append(ticket)
                    return ticket
            self.waited[tier] += wait
            self._sleep(wait)

    @contextmanager
    def slot(self, tier: str) -> Iterator[None]:
        """One request of ``tier``: wait for room, then count it from when its answer arrived."""
        ticket = self.acquire(tier)
        try:
            yield
        finally:
            self.settle(ticket)

    def settle(self, ticket: Ticket) -> None:
        """The answer arrived: the request counts from now (the platform counted it no later)."""
        with self._lock:
            ticket.at = max(ticket.at, self._clock())

    def record(self, tier: str, requests: int) -> None:
        """Count requests made without :meth:`acquire` (retries the HTTP layer made on its own)."""
        with self._lock:
            now = self._clock()
            for _ in range(requests):
                ticket = Ticket(now)
                for log in self._logs[tier]:
                    log.tickets.append(ticket)

    def observe(self, tier: str, *, limit: int | None, remaining: int | None, reset_seconds: float | None) -> None:
        """The platform's view of the tier's steady (longest) window after a response.

        A lower limit than ours replaces ours. Fewer requests remaining than we counted
        means others use the account too: their requests are counted as ours, leaving the
        window when the platform says it resets; none remaining pauses the tier until then.
        """
        with self._lock:
            steady = max(self._logs[tier], key=lambda log: log.window.seconds)
            if limit is not None and 0 < limit < steady.window.limit:
                steady.window = Window(limit, steady.window.seconds)
            if remaining is None or reset_seconds is None:
                return
            now = self._clock()
            steady.wait(now)  # drop what has left the window
            unseen = steady.window.limit - len(steady.tickets) - max(0, remaining)
            if unseen > 0:
                at = min(now, now + reset_seconds - steady.window.seconds)
                steady.tickets.extend(Ticket(at) for _ in range(unseen))
            if remaining <= 0:
                self._paused_until[tier] = max(self._paused_until.get(tier, 0.0), now + max(0.0, reset_seconds))


#: the tier of a platform that publishes one quota for every request (:func:`one_window`)
REQUESTS = "requests"


def one_window(limit: int | None, seconds: float = 60.0, **clock: Callable[..., object]) -> RateLimiter:
    """A limiter for one quota on every request (Data Manager: 300 a minute per project),
    used as ``with limiter.slot(REQUESTS):``; ``limit`` None paces nothing (a tier with no
    window never waits)."""
    if limit is not None and limit < 1:
        raise ValueError("a rate limit allows at least one request per window")
    return RateLimiter({REQUESTS: (Window(limit, seconds),) if limit is not None else ()}, **clock)  # type: ignore[arg-type]
