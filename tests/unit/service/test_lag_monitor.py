"""The lag monitor: readings go to the metrics, a failed one keeps the last and is logged once."""

from __future__ import annotations

import logging
import threading

import pytest
from prometheus_client import CollectorRegistry

from consumer.errors import BrokerUnavailable
from consumer.kafka.lag import GroupReading
from consumer.service.lag_monitor import LagMonitor
from consumer.telemetry.metrics import Metrics

T = "listing-created"


class FakeOffsets:
    """GroupOffsets serving a script of readings (None: the broker does not answer)."""

    def __init__(self, script: list[GroupReading | None]) -> None:
        self.script = script
        self.reads = 0
        self.closed = False
        self.read_twice = threading.Event()

    def read(self) -> GroupReading:
        self.reads += 1
        if self.reads >= 2:
            self.read_twice.set()
        step = self.script[min(self.reads, len(self.script)) - 1]
        if step is None:
            msg = f"{T}: cannot read the group's offsets for lag: timed out"
            raise BrokerUnavailable(msg)
        return step

    def close(self) -> None:
        self.closed = True


def _reading(committed: int, end: int) -> GroupReading:
    return GroupReading({(T, 0): committed}, {(T, 0): 0}, {(T, 0): end})


def _group_lag(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("import_closure_group_lag", {"topic": T, "partition": "0"})


class TestLagMonitor:
    def test_outage_keeps_the_last_reading_and_logs_start_and_end_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        registry = CollectorRegistry()
        offsets = FakeOffsets([_reading(10, 50), None, None, _reading(60, 70)])
        monitor = LagMonitor(offsets, Metrics(registry), interval=1.0)
        with caplog.at_level(logging.INFO, logger="consumer.service.lag_monitor"):
            assert monitor.refresh()
            assert _group_lag(registry) == 40
            assert not monitor.refresh()
            assert not monitor.refresh()
            assert _group_lag(registry) == 40
            assert monitor.refresh()
        assert _group_lag(registry) == 10
        assert registry.get_sample_value("import_closure_lag_read_failures_total") == 2
        assert [r.getMessage() for r in caplog.records] == [
            "lag not readable; keeping the last reading",
            "lag readable again",
        ]

    def test_thread_reads_on_its_timer_and_closes_the_reader_when_stopped(self) -> None:
        offsets = FakeOffsets([_reading(0, 5)])
        monitor = LagMonitor(offsets, Metrics(CollectorRegistry()), interval=0.01)
        monitor.start()
        try:
            assert offsets.read_twice.wait(5), "the monitor read once and stopped"
        finally:
            monitor.stop()
        assert offsets.closed
