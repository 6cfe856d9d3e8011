"""A real Prometheus scrapes a worker deciding a real workload: series, recording rules, lint.

Part of the workload waits in the input topic before the worker starts; the rest is produced at a
steady rate while Prometheus scrapes every second, so every counter rises across several scrapes
and rate() over the rules' windows has at least two distinct samples to work with.
"""

from __future__ import annotations

import math
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from consumer.codec import AvroCodec
from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from tests.deploy import contract
from tests.deploy.prometheus_server import PrometheusServer, running_prometheus
from tests.deploy.tools import DEPLOY, promtool_check_metrics
from tests.integration.conftest import Topics, WorkerProcess, start_worker
from tests.integration.scrape import samples
from tests.waiting import drain, wait_until

pytestmark = pytest.mark.integration

RULES = DEPLOY / "prometheus" / "rules.yaml"
#: The rules and the dashboard group by namespace; a Kubernetes pod monitor would add it.
NAMESPACE = "integration-test"
JOB = contract.JOB
SELECTOR = f'job="{JOB}", namespace="{NAMESPACE}"'
POLICY_ID = "id-akar-import-closure"

COUNT = 3000
#: Waiting in the topic before the worker starts: the worker begins with a backlog.
BACKLOG = 1000
#: Events per second for the rest: 2000 events take about 4 s, i.e. four or more scrapes.
RATE = 500.0
BAD_FRACTION = 0.05
#: Outcomes the bundled policy produces; it has no review rule, so `review` stays at 0 (but exists).
OUTCOMES = ("approved", "rejected", "dead_lettered")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _number(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def _by_label(prom: PrometheusServer, expr: str, label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): _number(s) for s in prom.query(expr)}


def _scalar(prom: PrometheusServer, expr: str) -> float:
    result = prom.query(expr)
    assert len(result) == 1, f"{expr}: expected one series, got {result}"
    return _number(result[0])


def _wait_for(
    prom: PrometheusServer, worker: WorkerProcess, expr: str, seconds: float = 30
) -> list[dict[str, Any]]:
    """prom.wait_for, but failing at once with the worker's log if the worker has exited."""

    def answered() -> list[dict[str, Any]]:
        worker.assert_running()
        return prom.query(expr)

    return wait_until(answered, seconds, f"a result for {expr}", interval=0.5)


def _recording_rules(prom: PrometheusServer) -> list[dict[str, Any]]:
    return [r for g in prom.rule_groups() for r in g["rules"] if r["type"] == "recording"]


def _stop(worker: WorkerProcess) -> int:
    """SIGTERM and wait for a graceful exit; its exit code."""
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.communicate(timeout=10)
        raise AssertionError("worker ignored SIGTERM:\n" + worker.logs()[-3000:]) from None
    return int(worker.process.returncode)


class TestPrometheusScrape:
    def test_series_rules_and_exposition_against_a_real_prometheus(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """Prometheus holds the worker's final counts, equal to /metrics and to the output topics;
        every recording rule evaluates to sensible values; promtool finds nothing to lint."""
        s = topics.settings
        produce_samples(
            s,
            s.input_topic,
            count=BACKLOG,
            seed=31,
            bad_fraction=BAD_FRACTION,
            spec=SampleSpec(base_time_ms=_now_ms() - BACKLOG),  # event_time in the recent past
        )
        worker = start_worker(topics, tmp_path)
        try:
            with running_prometheus(
                tmp_path / "prometheus",
                targets=[f"127.0.0.1:{worker.http_port}"],
                rule_files=[RULES],
                target_labels={"namespace": NAMESPACE},
            ) as prom:
                try:
                    seen = self._scrape_workload(prom, worker, topics)
                except (AssertionError, TimeoutError) as exc:
                    targets = [
                        (x["scrapeUrl"], x["health"], x["lastError"]) for x in prom.targets()
                    ]
                    log = worker.logs()[-3000:]
                    msg = (
                        f"{exc}\ntargets: {targets}, worker exit code: {worker.process.poll()}"
                        + ("" if log in str(exc) else f"\n--- worker log ---\n{log}")
                        + f"\n--- prometheus log ---\n{prom.log_tail(10)}"
                    )
                    raise AssertionError(msg) from exc
        finally:
            exit_code = _stop(worker)
        assert exit_code == 0, worker.logs()[-3000:]

        codec = AvroCodec()
        decisions = [
            codec.decode_decision(r.value or b"")
            for r in drain(topics.client_conf(), s.approved_topic)
        ]
        dead = drain(topics.client_conf(), s.dlq_topic)
        assert seen["approved"] == sum(d.outcome == "APPROVED" for d in decisions)
        assert seen["rejected"] == sum(d.outcome == "REJECTED" for d in decisions)
        assert seen["dead_lettered"] == len(dead) > 0
        assert seen["latency_count"] == len(decisions)

    def _scrape_workload(
        self, prom: PrometheusServer, worker: WorkerProcess, topics: Topics
    ) -> dict[str, float]:
        """Everything checked while both processes run; returns Prometheus' final figures."""
        s = topics.settings
        _wait_for(prom, worker, f"up{{{SELECTOR}}} == 1", seconds=60)
        # The backlog decided and scraped: the counters' baseline before work flows at RATE.
        _wait_for(prom, worker, f"sum(import_closure_events_total{{{SELECTOR}}}) == {BACKLOG}", 90)
        produce_samples(
            s,
            s.input_topic,
            count=COUNT - BACKLOG,
            seed=32,
            rate=RATE,
            bad_fraction=BAD_FRACTION,
            # One event per 1000/RATE ms, so each event_time is about when it was produced.
            spec=SampleSpec(base_time_ms=_now_ms(), step_ms=1000 / RATE),
        )

        final = wait_until(
            lambda: _final_snapshot(worker), 60, f"the worker to count all {COUNT} events"
        )

        def worker_value(name: str, **labels: str) -> float:
            return final.get((name, frozenset(labels.items())), 0.0)

        decided = worker_value("import_closure_decision_latency_seconds_count")
        # The last scrape Prometheus needs: latency is recorded after every other counter.
        _wait_for(
            prom,
            worker,
            f"import_closure_decision_latency_seconds_count{{{SELECTOR}}} == {decided:.0f}"
            f" and on () sum(import_closure_events_total{{{SELECTOR}}}) == {COUNT}",
        )

        events = _by_label(prom, f"import_closure_events_total{{{SELECTOR}}}", "outcome")
        assert sum(events.values()) == COUNT
        assert events == {
            o: worker_value("import_closure_events_total", outcome=o) for o in (*OUTCOMES, "review")
        }
        assert events["review"] == 0
        decisions = _by_label(
            prom, f"sum by (outcome) (import_closure_decisions_total{{{SELECTOR}}})", "outcome"
        )
        assert decisions == {o: events[o] for o in ("approved", "rejected")}
        dead_letters = _scalar(prom, f"sum(import_closure_dead_letters_total{{{SELECTOR}}})")
        assert dead_letters == events["dead_lettered"]
        latency_count = _scalar(
            prom, f"import_closure_decision_latency_seconds_count{{{SELECTOR}}}"
        )
        assert latency_count == events["approved"] + events["rejected"] + events["review"]
        (policy,) = prom.query(f"import_closure_policy_info{{{SELECTOR}}} == 1")
        assert policy["metric"]["policy"] == POLICY_ID
        assert policy["metric"]["version"]
        assert _scalar(prom, f"import_closure_assigned_partitions{{{SELECTOR}}}") == 3
        assert _scalar(prom, f"import_closure_commit_failures_total{{{SELECTOR}}}") == 0

        self._check_recording_rules(prom, worker)

        with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=10) as response:
            exposition = response.read().decode()
        assert promtool_check_metrics(exposition) == ""

        return {**events, "latency_count": latency_count}

    def _check_recording_rules(self, prom: PrometheusServer, worker: WorkerProcess) -> None:
        """Every recording rule is healthy, keeps namespace and job, and has a sensible value."""
        # Rates over [5m] still cover the seconds in which work flowed: all outcomes are > 0.
        _wait_for(
            prom,
            worker,
            f"count(job:import_closure_events:rate5m{{{SELECTOR}}} > 0) == {len(OUTCOMES)}",
        )
        # Lag is refreshed by the worker's loop; with the input drained it reaches 0.
        _wait_for(prom, worker, f"job:import_closure_consumer_lag:sum{{{SELECTOR}}} == 0")

        def healthy() -> list[dict[str, Any]]:
            rules = _recording_rules(prom)
            return rules if all(r["health"] == "ok" for r in rules) else []

        try:
            rules = wait_until(healthy, 30, "every recording rule evaluated without error")
        except TimeoutError as exc:
            states = [(r["name"], r["health"], r.get("lastError")) for r in _recording_rules(prom)]
            raise AssertionError(f"{exc}: {states}") from exc
        assert rules, "rules.yaml loaded no recording rule"

        values: dict[str, list[float]] = {}
        for rule in rules:
            result = prom.query(f"{rule['name']}{{{SELECTOR}}}")
            assert result, f"{rule['name']} has no series"
            for sample in result:
                assert sample["metric"]["job"] == JOB, rule["name"]
                assert sample["metric"]["namespace"] == NAMESPACE, rule["name"]
            values[rule["name"]] = [_number(sample) for sample in result]

        def one(name: str) -> float:
            (v,) = values[name]
            return v

        rates = values["job:import_closure_events:rate5m"]
        assert sorted(v > 0 for v in rates) == [False] + [True] * len(OUTCOMES), rates  # review 0
        assert 0 < one("job:import_closure_dead_letter_ratio:rate5m") < 0.5
        for name in (
            "job_cluster:import_closure_reject_ratio:rate5m",
            "job_cluster:import_closure_reject_ratio:rate1h",
        ):
            ratios = [v for v in values[name] if not math.isnan(v)]
            assert ratios, f"{name}: every cluster NaN"
            assert all(0 <= v <= 1 for v in ratios), (name, ratios)
            assert any(v > 0 for v in ratios), (name, ratios)
        # No review rule in the bundled policy: every cluster's review ratio is 0, not absent.
        reviews = values["job_cluster:import_closure_review_ratio:rate1h"]
        assert [v for v in reviews if not math.isnan(v)] == [0.0] * len(reviews), reviews
        hourly = values["job_cluster:import_closure_decisions:rate1h"]
        assert all(v >= 0 for v in hourly), hourly  # a cluster seen only in the backlog has 0
        assert sum(hourly) > 0, hourly
        p50 = one("job:import_closure_decision_latency_seconds:p50_5m")
        p99 = one("job:import_closure_decision_latency_seconds:p99_5m")
        assert 0 < p50 <= p99 < 60, (p50, p99)
        assert one("job:import_closure_consumer_lag:sum") == 0
        assert one("job:import_closure_partitions:count") == 3
        assert one("job:import_closure_workers_up:count") == 1


def _final_snapshot(worker: WorkerProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The worker's /metrics once every event is counted and every decision's latency observed."""
    worker.assert_running()
    try:
        got = samples(worker.base_url)
    except OSError:
        return {}
    events = {
        dict(labels)["outcome"]: v
        for (name, labels), v in got.items()
        if name == "import_closure_events_total"
    }
    latency = got.get(("import_closure_decision_latency_seconds_count", frozenset()), 0.0)
    done = sum(events.values()) == COUNT
    decided = sum(events.values()) - events.get("dead_lettered", 0)
    return got if done and latency == decided else {}
