"""A stand-in scrape target that exposes every contract series with values that move over time.

Used where a real Prometheus needs data but the test is about deploy/ (the dashboard queries),
not about the worker. The worker's own scrape test uses the real worker instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tests.deploy import contract

# Cumulative share of observations per bucket: p50 lands in (0.05, 0.1], p99 in (0.5, 1].
_BUCKETS = (("0.05", 0.3), ("0.1", 0.6), ("0.5", 0.95), ("1", 1.0), ("+Inf", 1.0))


class ContractCollector(Collector):
    """Counters grow at (i + 1) * 10 per second for the i-th label set; gauges hold still."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()

    def collect(self) -> Iterator[Metric]:
        elapsed = self._clock() - self._start + 1.0
        for metric in contract.WORKER_METRICS + contract.PROCESS_METRICS:
            yield _family(metric, elapsed)


def _family(metric: contract.Metric, elapsed: float) -> Metric:
    label_sets = metric.examples or ((),)
    doc = f"synthetic {metric.name}"
    if metric.kind == "counter":
        counter = CounterMetricFamily(metric.name, doc, labels=metric.labels)
        for i, values in enumerate(label_sets):
            counter.add_metric(list(values), (i + 1) * 10 * elapsed)
        return counter
    if metric.kind == "histogram":
        histogram = HistogramMetricFamily(metric.name, doc, labels=metric.labels)
        count = 100 * elapsed
        buckets = [(le, share * count) for le, share in _BUCKETS]
        histogram.add_metric([], buckets, sum_value=0.2 * count)
        return histogram
    gauge = GaugeMetricFamily(metric.name, doc, labels=metric.labels)
    for i, values in enumerate(label_sets):
        gauge.add_metric(list(values), _gauge_value(metric.name, i, elapsed))
    return gauge


def _gauge_value(name: str, index: int, elapsed: float) -> float:
    if name == "import_closure_last_progress_timestamp_seconds":
        return time.time()
    if name == "import_closure_assigned_partitions":
        return 3
    if name == "process_resident_memory_bytes":
        return 120e6
    if name in ("import_closure_consumer_lag", "import_closure_group_lag"):
        return 100 * (index + 1)
    if name == "import_closure_group_end_offset":  # input arrives: 50 records/s per partition
        return round(50 * elapsed) + 100 * (index + 1)
    if name == "import_closure_group_committed_offset":
        return round(50 * elapsed)
    if name == "import_closure_lag_age_seconds":
        return 2.5
    if name == "import_closure_in_flight_messages":
        return 40
    return 1  # info-style gauges: policy_info, python_info


class SyntheticWorker:
    """Serves the collector's /metrics on 127.0.0.1 (a free port) until `close()`."""

    def __init__(self) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ContractCollector())
        server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        self._server: WSGIServer = server
        self._thread = thread
        self.address = f"127.0.0.1:{server.server_port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
