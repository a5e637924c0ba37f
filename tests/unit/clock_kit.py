"""A monotonic clock the tests move by hand, for what times scores, bans, back-offs and
rate limits."""

from __future__ import annotations


class ManualClock:
    """Seconds that pass only when a test says so (``clock.now += 5``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
