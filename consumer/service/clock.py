"""Time as a parameter: the shell asks a Clock, so tests control time instead of waiting for it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (stamped into decisions and metrics)."""

    def monotonic(self) -> float:
        """Seconds for measuring intervals; never jumps."""


class SystemClock:
    """The production clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
