"""Client-side pacing: never send more requests in a window than a platform allows.

Retrying a 429 is the fallback; a connector that knows its platform's quota (Data
Manager: 300 requests a minute per Google Cloud project) should not hit it in the first
place. :class:`RequestPacer` is a sliding window over the connector's own requests: each
request runs inside ``with pacer.slot():``, which first sleeps just long enough that no
``seconds``-long window holds more than ``limit`` requests.

The platform counts a request when it arrives, somewhere between our sending it and our
reading the answer. A slot is therefore dated when the answer is read (the latest moment
the platform can have counted it), so network delays never make two windows disagree.
Retries urllib3 makes inside one request are paced by their own back-off, not here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RequestPacer:
    """At most ``limit`` requests in any ``seconds``-long window (``limit`` None: no pacing)."""

    def __init__(
        self,
        limit: int | None,
        seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a pacer allows at least one request per window")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        #: one [time] cell per request in the window: the start, then the end once answered
        self._slots: deque[list[float]] = deque()
        self._lock = threading.Lock()
        #: total seconds spent waiting (a connector may report it)
        self.waited = 0.0

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Wait for room in the window, hold it while the request runs; yields the seconds waited."""
        if self.limit is None:
            yield 0.0
            return
        cell, waited = self._take()
        try:
            yield waited
        finally:
            with self._lock:
                cell[0] = self._clock()

    def _take(self) -> tuple[list[float], float]:
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                # cells are dated by their answers, which may come back out of order
                self._slots = deque(c for c in self._slots if now - c[0] < self.seconds)
                if len(self._slots) < self.limit:  # type: ignore[operator]
                    cell = [now]
                    self._slots.append(cell)
                    self.waited += waited
                    return cell, waited
                pause = self.seconds - (now - min(c[0] for c in self._slots)) + 0.001
            pause = max(pause, 0.001)
            self._sleep(pause)
            waited += pause
