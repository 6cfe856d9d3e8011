"""Every import_closure_* series, on an injected registry. Updated per batch, never per message."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from itertools import accumulate

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from consumer.core.pipeline import Tally
from consumer.core.records import PartitionKey

# Decision latency runs from event_time, so it includes upstream delay: buckets reach minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _LagCollector(Collector):
    """The lag series, read at scrape time from the lag monitor's last reading of the group.

    One reading (committed and end offsets of every partition of the input topic) feeds both the
    per-worker series (the partitions assigned to this worker) and the group series (every
    partition, owned or not). A failed read keeps the last reading: the series stay while the
    broker is away, and import_closure_lag_age_seconds says how old they are.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        #: The clock of the age; the monitor reads it when a reading starts.
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._assigned: frozenset[PartitionKey] = frozenset()
        self._lag: dict[PartitionKey, int] = {}
        self._committed: dict[PartitionKey, int] = {}
        self._end: dict[PartitionKey, int] = {}
        self._read_at = monotonic()  # before the first reading: the age since the start
        self._failures = 0

    def set_assigned(self, assigned: Set[PartitionKey]) -> None:
        frozen = frozenset(assigned)
        with self._lock:
            self._assigned = frozen

    def set_reading(
        self,
        lag: Mapping[PartitionKey, int],
        committed: Mapping[PartitionKey, int],
        end: Mapping[PartitionKey, int],
        started: float | None = None,
    ) -> None:
        """A new reading; `started` (by `monotonic`) is when asking the broker began, so the
        age never claims offsets newer than they are. Default: now."""
        read_at = self.monotonic() if started is None else started
        with self._lock:
            self._lag, self._committed, self._end = dict(lag), dict(committed), dict(end)
            self._read_at = read_at

    def read_failed(self) -> None:
        with self._lock:
            self._failures += 1

    def assigned_total(self) -> int:
        """Committed lag summed over the assigned partitions (the progress log line's figure)."""
        with self._lock:
            return sum(self._lag.get(tp, 0) for tp in self._assigned)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            assigned = sorted(tp for tp in self._assigned if tp in self._lag)
            lag, committed, end = self._lag, self._committed, self._end
            age = self.monotonic() - self._read_at
            failures = self._failures
        mine = GaugeMetricFamily(
            "import_closure_consumer_lag",
            "Per partition assigned to this worker: end offset (high watermark) minus the group's "
            "committed offset, i.e. input not yet decided and committed (in-flight work "
            "included), as an admin client or KEDA sees it. Read every lag_interval seconds; the "
            "last value is kept while the broker is unreachable (see import_closure_lag_age_seconds).",
            labels=["topic", "partition"],
        )
        for tp in assigned:
            mine.add_metric([tp[0], str(tp[1])], lag[tp])
        yield mine
        yield from _per_partition(
            "import_closure_group_lag",
            "Per partition of the input topic, owned or not: end offset minus the group's "
            "committed offset (the low watermark where the group has no commit). Every worker "
            "reports every partition: take max by (topic, partition).",
            lag,
        )
        yield from _per_partition(
            "import_closure_group_committed_offset",
            "Per partition of the input topic: the group's committed offset (-1001: none), as "
            "last read. A committed offset that stops while lag grows is a stalled partition.",
            committed,
        )
        yield from _per_partition(
            "import_closure_group_end_offset",
            "Per partition of the input topic: the end offset (high watermark), as last read; "
            "its rate is the input rate.",
            end,
        )
        yield GaugeMetricFamily(
            "import_closure_lag_age_seconds",
            "Seconds since the lag series were last read from the broker (since the start "
            "before the first reading): about lag_interval normally, growing while the broker "
            "is unreachable.",
            value=age,
        )
        yield CounterMetricFamily(
            "import_closure_lag_read_failures",
            "Lag readings that failed (no broker answer within the timeout): the last reading "
            "was kept.",
            value=failures,
        )


def _per_partition(
    name: str, documentation: str, values: Mapping[PartitionKey, int]
) -> Iterator[GaugeMetricFamily]:
    family = GaugeMetricFamily(name, documentation, labels=["topic", "partition"])
    for (topic, partition), value in sorted(values.items()):
        family.add_metric([topic, str(partition)], value)
    yield family


def _go_float(bound: float) -> str:
    """Bucket label as Prometheus clients write it ("0.005", "1.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class BatchHistogram(Collector):
    """A histogram fed a whole batch of observations at once.

    prometheus_client's Histogram.observe takes a lock per call; with tens of thousands of
    decisions a second that is measurable, so buckets are counted in plain Python and added in
    one locked step per batch. Exposed like any histogram (_bucket, _sum, _count).
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # last slot: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        counts = [0] * len(self._counts)
        total = 0.0
        bounds = self._bounds
        for v in values:
            counts[bisect_left(bounds, v)] += 1  # bucket `le` includes its bound
            total += v
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = list(accumulate(counts))
        buckets = [(_go_float(b), c) for b, c in zip(self._bounds, cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], buckets, total)
        yield family


#: The outcome label values of import_closure_events_total; decisions are labelled outcome.lower().
_EVENT_OUTCOMES = ("approved", "rejected", "review", "dead_lettered")


class Metrics:
    """One object holding every series; pass a fresh CollectorRegistry in tests."""

    def __init__(
        self, registry: CollectorRegistry, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.events = PromCounter(
            "import_closure_events",
            "Input events whose outcome was acknowledged by the broker, by outcome: approved, "
            "rejected, review (sent to people) or dead_lettered.",
            ["outcome"],
            registry=registry,
        )
        self.decisions = PromCounter(
            "import_closure_decisions",
            "Acknowledged decisions by outcome and product cluster (none when no cluster matched).",
            ["outcome", "cluster"],
            registry=registry,
        )
        self.rejections = PromCounter(
            "import_closure_rejections",
            "Acknowledged rejection reasons (of rejected decisions only) by reason code and rule id.",
            ["reason", "rule_id"],
            registry=registry,
        )
        self.reviews = PromCounter(
            "import_closure_reviews",
            "Acknowledged review reasons (why a decision was sent to people) by reason code and "
            "rule id.",
            ["reason", "rule_id"],
            registry=registry,
        )
        self.dead_letters = PromCounter(
            "import_closure_dead_letters",
            "Acknowledged dead-letter records by error code.",
            ["error_code"],
            registry=registry,
        )
        self.decision_latency = BatchHistogram(
            "import_closure_decision_latency_seconds",
            "Time from the listing's event_time to the broker's acknowledgement of its decision.",
            LATENCY_BUCKETS,
        )
        registry.register(self.decision_latency)
        self.batch_duration = Histogram(
            "import_closure_batch_duration_seconds",
            "Time to decode, evaluate and encode one consumed batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "import_closure_assigned_partitions",
            "Partitions of the input topic currently assigned to this worker.",
            registry=registry,
        )
        self.rebalances = PromCounter(
            "import_closure_rebalances",
            "Rebalance callbacks by event: assigned, revoked or lost.",
            ["event"],
            registry=registry,
        )
        self.commit_failures = PromCounter(
            "import_closure_commit_failures",
            "Offset commits the broker did not accept.",
            registry=registry,
        )
        self.policy_info = Gauge(
            "import_closure_policy_info",
            "The policies in use: always 1, identified by their labels (role live or shadow).",
            ["policy", "version", "role"],
            registry=registry,
        )
        self.policy_reloads = PromCounter(
            "import_closure_policy_reloads",
            "Policy file changes by result: applied, rejected (invalid or unreadable, the "
            "previous policy stays), unchanged (a SIGHUP found nothing new).",
            ["role", "result"],
            registry=registry,
        )
        self.policy_last_change = Gauge(
            "import_closure_policy_last_change_timestamp_seconds",
            "Unix time at which the policy in use was loaded (at start or by a reload).",
            ["role"],
            registry=registry,
        )
        self.policy_file_rejected = Gauge(
            "import_closure_policy_file_rejected",
            "1 while the policy file holds a change that was rejected (the previous policy is "
            "still enforced), else 0.",
            ["role"],
            registry=registry,
        )
        self.shadow_decisions = PromCounter(
            "import_closure_shadow_decisions",
            "Decisions the shadow policy would have made on acknowledged live decisions, by "
            "outcome and its cluster.",
            ["outcome", "cluster"],
            registry=registry,
        )
        self.shadow_disagreements = PromCounter(
            "import_closure_shadow_disagreements",
            "Acknowledged live decisions the shadow policy decides otherwise (outcome or set of "
            "reasons), by both outcomes, once under each rule that makes the difference.",
            ["live", "shadow", "rule_id"],
            registry=registry,
        )
        self.last_progress = Gauge(
            "import_closure_last_progress_timestamp_seconds",
            "Unix time at which the worker last had output acknowledged by the broker (or started).",
            registry=registry,
        )
        self.transactions = PromCounter(
            "import_closure_transactions",
            "Kafka transactions ended, by result (exactly-once mode only).",
            ["result"],
            registry=registry,
        )
        self.transaction_duration = Histogram(
            "import_closure_transaction_duration_seconds",
            "Time to flush, send the offsets of and commit one transaction (exactly-once mode).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._policy_labels: dict[str, tuple[str, str, str]] = {}
        self.in_flight = Gauge(
            "import_closure_in_flight_messages",
            "Input records this worker has consumed whose output the broker has not yet "
            "acknowledged (so not yet committed): part of import_closure_consumer_lag.",
            registry=registry,
        )
        self.lag = _LagCollector(monotonic)
        registry.register(self.lag)
        for outcome in _EVENT_OUTCOMES:
            self.events.labels(outcome)  # present at 0 from the start, so rate() works at once
        for event in ("assigned", "revoked", "lost"):
            self.rebalances.labels(event)
        for result in ("committed", "aborted"):
            self.transactions.labels(result)

    def set_policy(self, role: str, policy: str, version: str, loaded_at: float) -> None:
        """The policy of `role` in use from now on: its old info series goes."""
        old = self._policy_labels.pop(role, None)
        if old is not None:
            self.policy_info.remove(*old)
        self._policy_labels[role] = (policy, version, role)
        self.policy_info.labels(policy, version, role).set(1)
        self.policy_last_change.labels(role).set(loaded_at)
        self.policy_file_rejected.labels(role).set(0)
        for result in ("applied", "rejected", "unchanged"):
            self.policy_reloads.labels(role, result)

    def record(self, tally: Tally, acked_at_ms: int) -> None:
        """Add one acknowledged tally: one labels() lookup per distinct label set, not per message."""
        events: Counter[str] = Counter()
        for (outcome, cluster), n in tally.decisions.items():
            self.decisions.labels(outcome, cluster).inc(n)
            events[outcome] += n
        for (reason, rule_id), n in tally.rejections.items():
            self.rejections.labels(reason, rule_id).inc(n)
        for (reason, rule_id), n in tally.reviews.items():
            self.reviews.labels(reason, rule_id).inc(n)
        for (outcome, cluster), n in tally.shadow_decisions.items():
            self.shadow_decisions.labels(outcome, cluster).inc(n)
        for (live, shadow, rule_id), n in tally.disagreements.items():
            self.shadow_disagreements.labels(live, shadow, rule_id).inc(n)
        for code, n in tally.dead_letters.items():
            self.dead_letters.labels(code).inc(n)
            events["dead_lettered"] += n
        for outcome, n in events.items():
            self.events.labels(outcome).inc(n)
        self._observe_latencies(acked_at_ms, tally.event_times_ms)

    def _observe_latencies(self, acked_at_ms: int, event_times_ms: Iterable[int]) -> None:
        self.decision_latency.observe_many(
            max(0.0, (acked_at_ms - event_ms) / 1000.0) for event_ms in event_times_ms
        )
