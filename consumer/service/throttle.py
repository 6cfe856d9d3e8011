"""Throttle for repeated log lines: during an outage the same failure repeats many times a second.

The first event of a kind passes; repeats within `interval` are counted, and the next one after
the interval passes carrying that count, so a log stays readable and still says how often.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable

#: Kinds remembered at once; a stream of ever-new kinds must not grow memory.
MAX_KINDS = 512
_NUMBERS = re.compile(r"\d+")


class Throttle:
    """Decides which events of a kind to let through; the clock is injected for tests."""

    __slots__ = ("_clock", "_interval", "_seen")

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        #: kind -> [time the last admitted one passed, repeats suppressed since]
        self._seen: dict[Hashable, list[float]] = {}

    def admit(self, kind: Hashable) -> int | None:
        """None to suppress this event; else how many of its kind were suppressed before it."""
        now = self._clock()
        state = self._seen.get(kind)
        if state is not None and now - state[0] < self._interval:
            state[1] += 1
            return None
        if state is None and len(self._seen) >= MAX_KINDS:
            self._seen.clear()
        self._seen[kind] = [now, 0]
        return 0 if state is None else int(state[1])


def shape(text: str) -> str:
    """A log text with its numbers blanked, so `after 3ms` and `after 5ms` count as one kind."""
    return _NUMBERS.sub("#", text)
