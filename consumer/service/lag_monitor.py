"""The lag monitor: a thread that reads the group's committed lag on its own timer.

Lag is read apart from the worker's loop because the loop is exactly what stops in the incidents
lag must show: it blocks on a full producer queue when the output is throttled, and it has no
partitions to report while a dead member's are not yet reassigned. The monitor reads every
partition of the input topic (so a partition with no live owner still shows its backlog) and
keeps the last reading when the broker does not answer.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from consumer.errors import BrokerUnavailable
from consumer.kafka.lag import GroupReading
from consumer.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


class GroupOffsets(Protocol):
    """Where readings come from: kafka.lag.GroupOffsetsReader, or a fake in tests."""

    def read(self) -> GroupReading:
        """One reading; BrokerUnavailable when the broker does not answer in time."""

    def close(self) -> None: ...


class LagMonitor:
    """Reads `offsets` every `interval` seconds into `metrics` until stopped; closes it at the end."""

    def __init__(self, offsets: GroupOffsets, metrics: Metrics, interval: float) -> None:
        self._offsets = offsets
        self._metrics = metrics
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def refresh(self) -> bool:
        """One reading into the metrics; False (last reading kept) when the broker did not answer.
        An outage is logged once when it starts and once when it ends."""
        started = self._metrics.lag.monotonic()
        try:
            reading = self._offsets.read()
        except BrokerUnavailable as exc:
            self._metrics.lag.read_failed()
            if not self._failing:
                log.warning(
                    "lag not readable; keeping the last reading", extra={"detail": str(exc)}
                )
            self._failing = True
            return False
        self._metrics.lag.set_reading(reading.lag(), reading.committed, reading.end, started)
        if self._failing:
            log.info("lag readable again")
        self._failing = False
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lag-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.refresh()
                if self._stop.wait(self._interval):
                    return
        finally:
            self._offsets.close()

    def stop(self, timeout: float = 30.0) -> None:
        """Ends the thread after its current reading (each call in it is bounded by a timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
