"""Client-side pacing: never send more requests in a window than a platform allows.

Retrying a 429 is the fallback; a connector that knows its platform's quota (Data
Manager: 300 requests a minute per Google Cloud project) should not hit it in the first
place. :class:`RequestPacer` is a sliding window over the connector's own requests: before
each request the connector calls :meth:`wait`, which sleeps just long enough that no
``seconds``-long window ever holds more than ``limit`` requests. It counts attempts the
caller makes, so a connector paces every call it sends (polls included).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


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
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        #: total seconds spent waiting (a connector may report it)
        self.waited = 0.0

    def wait(self) -> float:
        """Block until one more request fits in the window, record it, return the seconds waited."""
        if self.limit is None:
            return 0.0
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.seconds:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    self.waited += waited
                    return waited
                pause = self.seconds - (now - self._sent[0]) + 0.001
                self._sleep(pause)
                waited += pause
