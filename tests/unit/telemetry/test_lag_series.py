"""The lag series: one reading of the group feeds the worker's partitions and the whole topic;
the last reading stays through failed reads, and its age says how old it is."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from consumer.telemetry.metrics import Metrics

T = "listing-created"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _series(registry: CollectorRegistry, name: str) -> dict[int, float]:
    return {
        int(s.labels["partition"]): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def _read(metrics: Metrics, committed: dict[int, int], end: dict[int, int]) -> None:
    lag = {(T, p): end[p] - committed[p] for p in end}
    metrics.lag.set_reading(
        lag, {(T, p): c for p, c in committed.items()}, {(T, p): e for p, e in end.items()}
    )


class TestLagSeries:
    def test_worker_lag_covers_its_assigned_partitions_and_group_lag_every_partition(
        self, registry: CollectorRegistry, clock: Clock
    ) -> None:
        """A partition nobody owns still has a group series with its backlog."""
        metrics = Metrics(registry, monotonic=clock)
        metrics.lag.set_assigned({(T, 0), (T, 1)})
        _read(metrics, {0: 90, 1: 100, 2: 5}, {0: 100, 1: 100, 2: 505})
        assert _series(registry, "import_closure_consumer_lag") == {0: 10, 1: 0}
        assert _series(registry, "import_closure_group_lag") == {0: 10, 1: 0, 2: 500}
        assert _series(registry, "import_closure_group_committed_offset") == {0: 90, 1: 100, 2: 5}
        assert _series(registry, "import_closure_group_end_offset") == {0: 100, 1: 100, 2: 505}

    def test_a_failed_read_keeps_every_series_and_the_age_grows(
        self, registry: CollectorRegistry, clock: Clock
    ) -> None:
        """A broker outage: lag stays at its last known value instead of vanishing."""
        metrics = Metrics(registry, monotonic=clock)
        metrics.lag.set_assigned({(T, 0)})
        clock.now += 1
        _read(metrics, {0: 10}, {0: 60})
        assert registry.get_sample_value("import_closure_lag_age_seconds") == 0
        clock.now += 45
        metrics.lag.read_failed()
        metrics.lag.read_failed()
        assert _series(registry, "import_closure_consumer_lag") == {0: 50}
        assert _series(registry, "import_closure_group_lag") == {0: 50}
        assert registry.get_sample_value("import_closure_lag_age_seconds") == 45
        assert registry.get_sample_value("import_closure_lag_read_failures_total") == 2

    def test_age_counts_from_the_start_until_the_first_reading(
        self, registry: CollectorRegistry, clock: Clock
    ) -> None:
        metrics = Metrics(registry, monotonic=clock)
        clock.now += 7
        assert registry.get_sample_value("import_closure_lag_age_seconds") == 7
        assert metrics.lag.assigned_total() == 0

    def test_revoked_partitions_leave_the_worker_series_but_not_the_group_series(
        self, registry: CollectorRegistry, clock: Clock
    ) -> None:
        metrics = Metrics(registry, monotonic=clock)
        metrics.lag.set_assigned({(T, 0), (T, 1)})
        _read(metrics, {0: 0, 1: 0}, {0: 3, 1: 4})
        assert metrics.lag.assigned_total() == 7
        metrics.lag.set_assigned({(T, 1)})
        assert _series(registry, "import_closure_consumer_lag") == {1: 4}
        assert _series(registry, "import_closure_group_lag") == {0: 3, 1: 4}
        assert metrics.lag.assigned_total() == 4

    def test_an_assigned_partition_not_yet_read_has_no_series(
        self, registry: CollectorRegistry, clock: Clock
    ) -> None:
        """Never a made-up 0: the series appears with the first reading that includes it."""
        metrics = Metrics(registry, monotonic=clock)
        metrics.lag.set_assigned({(T, 0), (T, 5)})
        _read(metrics, {0: 1}, {0: 2})
        assert _series(registry, "import_closure_consumer_lag") == {0: 1}
