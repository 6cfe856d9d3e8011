"""Metrics: per-batch tallies land in the right series, on an injected registry."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from consumer.core.pipeline import Tally
from consumer.telemetry.metrics import Metrics


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


class TestMetrics:
    def test_tally_counts_events_decisions_rejections_and_dead_letters(
        self, registry: CollectorRegistry
    ) -> None:
        """One record() call adds a whole chunk's counts under low-cardinality labels."""
        metrics = Metrics(registry)
        tally = Tally(
            decisions=Counter({("approved", "none"): 3, ("rejected", "culinary"): 2}),
            rejections=Counter({("IMPORT_CLOSED_CATEGORY", "akar-culinary"): 2}),
            dead_letters=Counter({"corrupt": 1}),
            event_times_ms=[1000, 1500, 2000, 2000, 2000],
        )
        metrics.record(tally, acked_at_ms=3000)
        value = registry.get_sample_value
        assert value("import_closure_events_total", {"outcome": "approved"}) == 3
        assert value("import_closure_events_total", {"outcome": "rejected"}) == 2
        assert value("import_closure_events_total", {"outcome": "dead_lettered"}) == 1
        assert (
            value("import_closure_decisions_total", {"outcome": "rejected", "cluster": "culinary"})
            == 2
        )
        assert (
            value(
                "import_closure_rejections_total",
                {"reason": "IMPORT_CLOSED_CATEGORY", "rule_id": "akar-culinary"},
            )
            == 2
        )
        assert value("import_closure_dead_letters_total", {"error_code": "corrupt"}) == 1
        assert value("import_closure_decision_latency_seconds_count") == 5
        assert value("import_closure_decision_latency_seconds_sum") == pytest.approx(
            2 + 1.5 + 1 + 1 + 1
        )

    def test_review_is_its_own_outcome_and_its_reasons_are_not_rejections(
        self, registry: CollectorRegistry
    ) -> None:
        """A REVIEW decision counts as outcome review (not rejected), and its reasons land in
        import_closure_reviews_total, so rejections_total keeps meaning "why it was refused"."""
        metrics = Metrics(registry)
        tally = Tally(
            decisions=Counter(
                {("review", "fashion"): 4, ("rejected", "fashion"): 1, ("approved", "none"): 2}
            ),
            rejections=Counter({("IMPORT_CLOSED_CATEGORY", "akar-fashion"): 1}),
            reviews=Counter({("NEEDS_HS_CODE", "review-no-hs"): 4}),
            event_times_ms=[0] * 7,
        )
        metrics.record(tally, acked_at_ms=0)
        value = registry.get_sample_value
        events = {
            outcome: value("import_closure_events_total", {"outcome": outcome})
            for outcome in ("approved", "rejected", "review", "dead_lettered")
        }
        assert events == {"approved": 2, "rejected": 1, "review": 4, "dead_lettered": 0}
        assert (
            value("import_closure_decisions_total", {"outcome": "review", "cluster": "fashion"})
            == 4
        )
        review = {"reason": "NEEDS_HS_CODE", "rule_id": "review-no-hs"}
        assert value("import_closure_reviews_total", review) == 4
        assert value("import_closure_rejections_total", review) is None
        rejection = {"reason": "IMPORT_CLOSED_CATEGORY", "rule_id": "akar-fashion"}
        assert value("import_closure_rejections_total", rejection) == 1

    def test_event_counters_exist_at_zero_before_any_work(
        self, registry: CollectorRegistry
    ) -> None:
        """rate() over a fresh worker works because every outcome series exists from the start."""
        Metrics(registry)
        for outcome in ("approved", "rejected", "review", "dead_lettered"):
            assert (
                registry.get_sample_value("import_closure_events_total", {"outcome": outcome}) == 0
            )

    def test_policy_info_names_only_the_current_policy_of_each_role(
        self, registry: CollectorRegistry
    ) -> None:
        """After a reload only the new version of that role is reported; the other role stays."""
        metrics = Metrics(registry)
        metrics.set_policy("live", "p", "1+aaaa", 100.0)
        metrics.set_policy("shadow", "q", "7+cccc", 100.0)
        metrics.set_policy("live", "p", "2+bbbb", 250.0)

        def info(policy: str, version: str, role: str) -> float | None:
            labels = {"policy": policy, "version": version, "role": role}
            return registry.get_sample_value("import_closure_policy_info", labels)

        assert info("p", "2+bbbb", "live") == 1
        assert info("p", "1+aaaa", "live") is None
        assert info("q", "7+cccc", "shadow") == 1
        changed = registry.get_sample_value(
            "import_closure_policy_last_change_timestamp_seconds", {"role": "live"}
        )
        assert changed == 250.0

    def test_shadow_tallies_become_shadow_series(self, registry: CollectorRegistry) -> None:
        metrics = Metrics(registry)
        t = Tally()
        t.shadow_decisions[("rejected", "crafts")] = 3
        t.shadow_decisions[("review", "crafts")] = 1
        t.disagreements[("approved", "rejected", "r-crafts")] = 2
        t.disagreements[("rejected", "review", "r-crafts-review")] = 1
        metrics.record(t, 0)
        assert (
            registry.get_sample_value(
                "import_closure_shadow_decisions_total", {"outcome": "review", "cluster": "crafts"}
            )
            == 1
        )
        to_review = {"live": "rejected", "shadow": "review", "rule_id": "r-crafts-review"}
        assert (
            registry.get_sample_value("import_closure_shadow_disagreements_total", to_review) == 1
        )
        assert (
            registry.get_sample_value(
                "import_closure_shadow_decisions_total",
                {"outcome": "rejected", "cluster": "crafts"},
            )
            == 3
        )
        labels = {"live": "approved", "shadow": "rejected", "rule_id": "r-crafts"}
        assert registry.get_sample_value("import_closure_shadow_disagreements_total", labels) == 2


class TestBatchHistogram:
    @pytest.mark.parametrize(
        ("values", "le", "expected"),
        [
            ([0.005], "0.005", 1),
            ([0.0051], "0.005", 0),
            ([0.0051], "0.01", 1),
            ([1000.0], "900.0", 0),
            ([1000.0], "+Inf", 1),
        ],
        ids=["on-bound", "just-above", "next-bucket", "beyond-last", "inf"],
    )
    def test_buckets_are_cumulative_and_include_their_bound(
        self, registry, values, le, expected
    ) -> None:
        """Same bucket semantics as prometheus_client's Histogram: le is inclusive, counts cumulative."""
        metrics = Metrics(registry)
        metrics.decision_latency.observe_many(values)
        assert (
            registry.get_sample_value("import_closure_decision_latency_seconds_bucket", {"le": le})
            == expected
        )

    def test_batches_add_up(self, registry: CollectorRegistry) -> None:
        """Two batches give the count and sum of all their observations."""
        metrics = Metrics(registry)
        metrics.decision_latency.observe_many([0.1, 0.2])
        metrics.decision_latency.observe_many([0.3])
        assert registry.get_sample_value("import_closure_decision_latency_seconds_count") == 3
        assert registry.get_sample_value(
            "import_closure_decision_latency_seconds_sum"
        ) == pytest.approx(0.6)
