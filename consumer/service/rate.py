"""replay --rate: a token bucket that the source reads against and the decider spends from."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """--rate: at most `rate` decisions a second, in bursts of at most a tenth of a second's worth.

    The source reads no more records than there are tokens; the decider spends one per
    decision it publishes, so what is published never outruns the rate.
    """

    __slots__ = ("_capacity", "_last", "_monotonic", "_rate", "_tokens")

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate / 10)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._last = monotonic()

    def available(self, want: int) -> int:
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        return min(want, int(self._tokens))

    def spend(self, n: int) -> None:
        self._tokens -= n
