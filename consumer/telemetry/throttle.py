"""Throttle for repeated log lines: during an outage the same failure repeats many times a second.

The first event of a kind passes; repeats within `interval` are counted, and the next one after
the interval passes carrying that count, so a log stays readable and still says how often.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Hashable
from typing import Any

#: Throttled warnings keep the logger name they had when the client callbacks (kafka/callbacks.py)
#: owned them, so the `logger` field of these lines did not change when they moved here.
log = logging.getLogger("consumer.kafka.callbacks")

#: A repeated warning or client log line is written at most once per this many seconds.
THROTTLE_INTERVAL = 30.0
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


class Warnings:
    """The process's throttled warnings: what may repeat every loop turn during an outage (a
    client error, a refused shadow decision, a held batch) is logged once per kind and interval.

    One per process, shared by the client callbacks, the source, the deliveries and the loop: one
    Throttle, so a kind is one kind wherever it is reported from.
    """

    __slots__ = ("_throttle",)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._throttle = Throttle(THROTTLE_INTERVAL, clock)

    def admit(self, kind: Hashable) -> int | None:
        """For a caller that logs on its own logger: None to suppress, else the count suppressed."""
        return self._throttle.admit(kind)

    def warn(self, event: str, detail: str) -> None:
        """A warning that may repeat every turn during an outage: once per interval."""
        self.log(logging.WARNING, event, ("event", event), {"detail": detail})

    def log(self, level: int, event: str, kind: Hashable, fields: dict[str, Any]) -> None:
        """One line per `kind` and interval, carrying the number suppressed since the last one."""
        suppressed = self._throttle.admit(kind)
        if suppressed is None:
            return
        if suppressed:
            fields["suppressed"] = suppressed
        log.log(level, event, extra=fields)
