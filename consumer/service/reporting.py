"""What the loop reports besides metrics: its assignment (for the lag series), work in flight, a
dead-letter summary and a progress heartbeat. Lag itself is read by the lag monitor's thread."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Set

from consumer.core.records import PartitionKey
from consumer.core.summary import RunSummary
from consumer.telemetry.metrics import Metrics

log = logging.getLogger("consumer.worker")

#: How often the dead-letter and progress intervals are checked (seconds).
REPORT_INTERVAL = 2.0
#: How often the dead-letter rate is summarised in the log (seconds).
DLQ_SUMMARY_INTERVAL = 30.0


class Reporter:
    """Runs at the end of each loop turn; does its work only when an interval has passed."""

    def __init__(
        self,
        metrics: Metrics,
        summary: RunSummary,
        progress_interval: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._metrics = metrics
        self._summary = summary
        self._progress_interval = progress_interval
        self._monotonic = monotonic
        now = monotonic()
        self._last_report = 0.0
        self._dlq_window: Counter[str] = Counter()
        self._dlq_start = now
        self._progress_start = now
        self._progress_counts: dict[str, int] = {}

    def dead_letters(self, codes: Counter[str]) -> None:
        self._dlq_window.update(codes)

    def report(self, assigned: Set[PartitionKey], in_flight: int, paused: bool) -> None:
        now = self._monotonic()
        if now - self._last_report < REPORT_INTERVAL:
            return
        self._last_report = now
        self._metrics.in_flight.set(in_flight)
        if now - self._dlq_start >= DLQ_SUMMARY_INTERVAL:
            self.log_dead_letters()
        interval = self._progress_interval
        if interval and now - self._progress_start >= interval:
            self._log_progress(now, len(assigned), in_flight, paused)

    def assigned(self, assigned: Set[PartitionKey]) -> None:
        """The partitions whose lag this worker reports, whenever the assignment changes."""
        self._metrics.lag.set_assigned(assigned)

    def log_dead_letters(self) -> None:
        now = self._monotonic()
        if self._dlq_window:
            log.warning(
                "dead letters in the last interval",
                extra={
                    "seconds": round(now - self._dlq_start),
                    "by_code": dict(self._dlq_window),
                    "total": sum(self._dlq_window.values()),
                },
            )
        self._dlq_window.clear()
        self._dlq_start = now

    def _log_progress(self, now: float, assigned: int, in_flight: int, paused: bool) -> None:
        """A heartbeat line, so a quiet log still says the worker is at work and how fast."""
        counts = dict(self._summary.outcomes)
        seconds = now - self._progress_start
        rates = {
            outcome: round((n - self._progress_counts.get(outcome, 0)) / seconds, 1)
            for outcome, n in sorted(counts.items())
        }
        log.info(
            "progress",
            extra={
                "seconds": round(seconds),
                "events_per_second": rates,
                "lag": self._metrics.lag.assigned_total(),
                "in_flight": in_flight,
                "assigned_partitions": assigned,
                "paused": paused,
            },
        )
        self._progress_start = now
        self._progress_counts = counts
