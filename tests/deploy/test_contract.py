"""contract.py against the worker's metrics code: the names deploy/ relies on are the ones
consumer.metrics registers (a registry-level check; the real-scrape test checks /metrics)."""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from consumer.core.pipeline import Tally
from consumer.telemetry.metrics import Metrics
from tests.deploy import contract
from tests.deploy.tools import promtool_check_metrics


def _worker_registry() -> CollectorRegistry:
    """The registry as the worker builds it, with one acknowledged batch of every kind recorded."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    metrics = Metrics(registry)
    metrics.set_policy("live", "id-akar-import-closure", "2021.08+2c0c7158", 0.0)
    metrics.lag.set_assigned({("listing-created", 0)})
    metrics.lag.set_reading(
        {("listing-created", 0): 12, ("listing-created", 1): 3},
        {("listing-created", 0): 100, ("listing-created", 1): 7},
        {("listing-created", 0): 112, ("listing-created", 1): 10},
    )
    metrics.record(
        Tally(
            decisions=Counter(
                {
                    ("rejected", "fashion_textile"): 2,
                    ("review", "fashion_textile"): 1,
                    ("approved", "none"): 3,
                }
            ),
            rejections=Counter({("IMPORT_CLOSED_CATEGORY", "akar-fashion-textile"): 2}),
            reviews=Counter({("HS_CODE_UNCLASSIFIED", "permendag-31-2023-review-no-hs-code"): 1}),
            dead_letters=Counter({"truncated": 1}),
            event_times_ms=[1_700_000_000_000],
            shadow_decisions=Counter({("rejected", "crafts"): 1}),
            disagreements=Counter({("approved", "rejected", "akar-crafts"): 1}),
        ),
        acked_at_ms=1_700_000_000_500,
    )
    return registry


def _families() -> dict[str, tuple[str, frozenset[str]]]:
    """Sample name (as exposed) -> (type, label names), counters as name_total."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for family in _worker_registry().collect():
        labels = frozenset(k for s in family.samples for k in s.labels) - {"le"}
        name = family.name + "_total" if family.type == "counter" else family.name
        out[name] = (family.type, labels)
    return out


class TestWorkerMetrics:
    def test_every_contract_metric_is_registered_with_its_type_and_labels(self) -> None:
        families = _families()
        for metric in contract.WORKER_METRICS + contract.PROCESS_METRICS:
            assert metric.name in families, f"the worker does not export {metric.name}"
            kind, labels = families[metric.name]
            assert kind == metric.kind, metric.name
            assert labels == set(metric.labels), metric.name

    def test_the_worker_exports_no_import_closure_series_the_contract_lacks(self) -> None:
        """A new series belongs in contract.py before dashboards or alerts may use it."""
        ours = {name for name in _families() if name.startswith("import_closure_")}
        assert ours == {m.name for m in contract.WORKER_METRICS}

    def test_exposition_passes_promtool_check_metrics(self) -> None:
        exposition = generate_latest(_worker_registry()).decode()
        assert promtool_check_metrics(exposition) == ""
