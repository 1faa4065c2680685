"""Client-side pacing (destinations/ratelimit.py) on a fake clock: what a platform with
burst and steady windows would count never exceeds its limits, and the platform's own
RateLimit-* view tightens the pacing when others share the account."""

from __future__ import annotations

from destinations.ratelimit import REQUESTS, RateLimiter, Window, one_window


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: Clock, *windows: Window) -> RateLimiter:
    return RateLimiter({"M": windows}, sleep=clock.sleep, clock=clock)


def sent_at(clock: Clock, pacing: RateLimiter, n: int) -> list[float]:
    times = []
    for _ in range(n):
        pacing.settle(pacing.acquire("M"))
        times.append(clock.now)
    return times


def test_requests_never_exceed_any_window():
    clock = Clock()
    times = sent_at(clock, limiter(clock, Window(3, 1.0), Window(5, 10.0)), 12)
    for window, limit in ((1.0, 3), (10.0, 5)):
        assert all(sum(1 for t in times if start <= t < start + window) <= limit for start in times)
    assert times[:3] == [0.0, 0.0, 0.0] and times[3] == 1.0 and times[5] == 10.0


def test_a_request_counts_from_its_answer():
    """A slow answer pushes the next window: the platform counted it no later than that."""
    clock = Clock()
    pacing = limiter(clock, Window(1, 1.0))
    ticket = pacing.acquire("M")
    clock.now = 0.4  # the answer took 0.4 s
    pacing.settle(ticket)
    pacing.acquire("M")
    assert clock.now == 1.4


def test_retries_the_http_layer_made_are_counted():
    clock = Clock()
    pacing = limiter(clock, Window(3, 1.0))
    pacing.settle(pacing.acquire("M"))
    pacing.record("M", 2)
    pacing.acquire("M")
    assert clock.now == 1.0


def test_the_platforms_headers_count_others_requests_and_lower_the_limit():
    clock = Clock()
    pacing = limiter(clock, Window(10, 1.0), Window(150, 60.0))
    pacing.settle(pacing.acquire("M"))
    # another integration used 146 of the minute: 3 left, the window resets in 20 s
    pacing.observe("M", limit=150, remaining=3, reset_seconds=20)
    assert sent_at(clock, pacing, 3) == [0.0, 0.0, 0.0]
    assert sent_at(clock, pacing, 1) == [20.0]
    # a limit lower than the published one replaces it
    pacing.observe("M", limit=5, remaining=None, reset_seconds=None)
    times = sent_at(clock, pacing, 6)
    assert all(sum(1 for t in times if s <= t < s + 60.0) <= 5 for s in times)


def test_nothing_remaining_pauses_the_tier_until_the_reset():
    clock = Clock()
    pacing = limiter(clock, Window(10, 1.0), Window(150, 60.0))
    pacing.observe("M", limit=150, remaining=0, reset_seconds=7)
    pacing.acquire("M")
    assert clock.now == 7.0 and pacing.waited["M"] == 7.0


def test_one_quota_for_every_request_paces_slots_by_their_answers():
    """Data Manager's kind of quota (one window for every request): two a second here, each
    request dated by its answer, so a slow answer delays the next window; no limit never waits."""
    clock = Clock()
    pacing = one_window(2, 1.0, sleep=clock.sleep, clock=clock)
    starts = []
    for answer_takes in (0.0, 0.5, 0.0, 0.0):
        with pacing.slot(REQUESTS):
            starts.append(clock.now)
            clock.now += answer_takes
    # the second answer came at 0.5, so the fourth request waits for 1.5, not 1.0
    assert starts == [0.0, 0.0, 1.0, 1.5]

    unpaced = one_window(None, sleep=clock.sleep, clock=clock)
    before = list(clock.slept)
    for _ in range(100):
        with unpaced.slot(REQUESTS):
            pass
    assert clock.slept == before
