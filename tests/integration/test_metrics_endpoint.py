"""The metrics endpoint's counters equal what was processed; probes behave."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from consumer.codec import AvroCodec
from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from consumer.policy import bundled_policy_text
from tests.integration.conftest import Topics, start_worker
from tests.integration.scrape import samples, status
from tests.waiting import drain, wait_until

pytestmark = pytest.mark.integration

#: The bundled policy plus a review rule, so all three outcomes occur: cross-border listings outside
#: the closed clusters go to people.
REVIEW_RULE = """
  - id: review-other-imports
    effect: review
    reason: CROSS_BORDER_OTHER
    message: Cross-border listing outside the closed clusters; check it by hand
    when:
      cross_border: true
      cluster_not_in: [fashion_textile, culinary, crafts]
"""


class TestMetricsEndpoint:
    def test_counters_equal_processed_work(self, topics: Topics, tmp_path: Path) -> None:
        """events, decisions, rejections, reviews and dead letters on /metrics match the output
        topics; REVIEW decisions count as review, and their reasons only in reviews_total."""
        s = topics.settings
        count = 1500
        produced = produce_samples(
            s,
            s.input_topic,
            count=count,
            seed=4,
            bad_fraction=0.05,
            spec=SampleSpec(base_time_ms=1_700_000_000_000),
        )
        policy_file = tmp_path / "policy-with-review.yaml"
        policy_file.write_text(bundled_policy_text().rstrip("\n") + "\n" + REVIEW_RULE)
        worker = start_worker(topics, tmp_path, IMPORT_CLOSURE_POLICY=str(policy_file))
        try:
            wait_until(lambda: status(f"{worker.base_url}/readyz") == 200, 60, "readiness")
            assert status(f"{worker.base_url}/healthz") == 200

            def total() -> float:
                worker.assert_running()
                got = samples(worker.base_url)
                return sum(
                    v for (name, _l), v in got.items() if name == "import_closure_events_total"
                )

            wait_until(lambda: total() == count, 60, f"{count} events counted")
            metrics = samples(worker.base_url)
        finally:
            worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            raise
        assert worker.process.returncode == 0

        codec = AvroCodec()
        decisions = [
            codec.decode_decision(r.value or b"")
            for r in drain(topics.client_conf(), s.approved_topic)
        ]
        dead = drain(topics.client_conf(), s.dlq_topic)

        def m(name: str, **labels: str) -> float:
            return metrics.get((name, frozenset(labels.items())), 0.0)

        for outcome in ("APPROVED", "REJECTED", "REVIEW"):
            want = sum(d.outcome == outcome for d in decisions)
            assert want > 0, outcome
            assert m("import_closure_events_total", outcome=outcome.lower()) == want
        assert m("import_closure_events_total", outcome="dead_lettered") == len(dead) > 0
        assert len(dead) <= produced.bad  # a corrupted body may still decode: it is then decided
        for outcome in ("REJECTED", "REVIEW"):
            for cluster in {d.cluster or "none" for d in decisions}:
                want = sum(
                    d.outcome == outcome and (d.cluster or "none") == cluster for d in decisions
                )
                labels = {"outcome": outcome.lower(), "cluster": cluster}
                assert m("import_closure_decisions_total", **labels) == want
        for outcome, series, other in (
            ("REJECTED", "import_closure_rejections_total", "import_closure_reviews_total"),
            ("REVIEW", "import_closure_reviews_total", "import_closure_rejections_total"),
        ):
            reasons = [
                (r.code, r.rule_id) for d in decisions if d.outcome == outcome for r in d.reasons
            ]
            for code, rule in set(reasons):
                assert m(series, reason=code, rule_id=rule) == reasons.count((code, rule))
                assert m(other, reason=code, rule_id=rule) == 0
        codes = [r.headers["ic.error.code"].decode() for r in dead]
        for code in set(codes):
            assert m("import_closure_dead_letters_total", error_code=code) == codes.count(code)
        assert m("import_closure_decision_latency_seconds_count") == len(decisions)
        assert m("import_closure_assigned_partitions") == 3
        assert m("import_closure_rebalances_total", event="assigned") >= 1
        assert m("import_closure_commit_failures_total") == 0
        assert m("import_closure_last_progress_timestamp_seconds") > 0
        policy = [
            labels
            for (name, labels), v in metrics.items()
            if name == "import_closure_policy_info" and v == 1
        ]
        assert dict(policy[0])["policy"] == "id-akar-import-closure"
        assert m("import_closure_batch_duration_seconds_count") >= 1
