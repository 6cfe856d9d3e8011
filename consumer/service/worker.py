"""The processing loop: poll, decide, hand results to the delivery, account for durable work.

The delivery guarantee lives behind the Delivery protocol (consumer/delivery/), the input behind
the Source protocol (kafka/source.py): the loop branches on neither the mode nor the source.
Rebalance callbacks forward to the delivery; backpressure reads its in-flight count.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from consumer.config.settings import Settings
from consumer.core.pipeline import DeadLettered, Decider, Tally
from consumer.core.records import PartitionKey, RawRecord
from consumer.core.summary import RunSummary
from consumer.delivery import Delivery, spans
from consumer.errors import KafkaClientError, SchemaSourceUnavailable
from consumer.kafka.faults import Faults
from consumer.kafka.messages import partition_names
from consumer.kafka.source import JOIN_GRACE, Source
from consumer.service.clock import Clock, SystemClock
from consumer.service.policy_watch import Policies
from consumer.service.reporting import Reporter
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings

log = logging.getLogger(__name__)

#: Back-off while the schema registry is unreachable (seconds).
REGISTRY_RETRY_DELAY = 1.0
#: How long a bounded run (--until-idle) goes on while Kafka refuses its credentials or TLS
#: before it fails: long enough for a broker that is still loading its SCRAM users.
CONNECT_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Where the loop reports to: metrics, readiness and liveness, throttled warnings."""

    metrics: Metrics
    health: Health
    warnings: Warnings


class PolicyUpdates(Protocol):
    """Where changed policies come from (service/policy_watch.py): None while nothing changed."""

    def take(self) -> Policies | None: ...


class Worker:
    """Owns the loop and the callbacks; every collaborator arrives through the constructor."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        delivery: Delivery,
        decider: Decider,
        telemetry: Telemetry,
        faults: Faults,
        stop: threading.Event,
        clock: Clock | None = None,
        *,
        policies: PolicyUpdates | None = None,
    ) -> None:
        self._settings = settings
        self._source = source
        self._delivery = delivery
        self._decider = decider
        self._policies = policies
        self._metrics = telemetry.metrics
        self._health = telemetry.health
        self._warnings = telemetry.warnings
        self._faults = faults
        self._stop = stop
        self._clock = clock or SystemClock()
        now = self._clock.monotonic()
        self._assigned: set[PartitionKey] = set()
        #: Partitions revoked or lost during the current poll (see _turn).
        self._released: set[PartitionKey] = set()
        self._paused = False
        self._ever_assigned = False
        self._last_input = now
        #: Partitions held back while the schema registry is away, and when to try them again.
        self._held: set[PartitionKey] = set()
        self._held_until = 0.0
        self.summary = RunSummary(started=now)
        self._reporter = Reporter(
            self._metrics, self.summary, settings.progress_interval, self._clock.monotonic
        )

    def run(self, until_idle: float | None = None) -> RunSummary:
        """Process until stop is set (signal) or, with until_idle, until the input has been quiet that long."""
        self._source.check_topic()
        self._source.subscribe(self._on_assign, self._on_revoke, self._on_lost)
        self._metrics.last_progress.set(self._clock.now())
        log.info(
            "worker started",
            extra={"topic": self._settings.input_topic, "group": self._settings.group_id},
        )
        try:
            while not self._stop.is_set():
                self._turn()
                if until_idle is not None and self._idle_for(until_idle):
                    self._ensure_joined()
                    log.info("input idle, stopping", extra={"idle_seconds": until_idle})
                    break
                if self._source.done() and self._delivery.idle():  # a bounded source (replay)
                    self._ensure_joined()
                    log.info("input read to its end, stopping")
                    break
            self._shutdown()
        finally:
            self._health.stopping = True
            self._source.close()
            self._delivery.close()
        return self.summary

    def _turn(self) -> None:
        self._health.beat()
        self._faults.raise_first()
        self._release_held()
        self._apply_backpressure()
        if self._policies is not None and (change := self._policies.take()) is not None:
            # between two batches: the next one and all after it under the new policies
            self._decider = self._decider.replaced(change.live, change.shadow)
        self._released.clear()
        records = self._source.poll(
            self._settings.batch_size, 0.1 if self._paused else self._settings.poll_timeout
        )
        self._faults.raise_first()
        if self._released and records:
            records = self._without_released(records)
        if records:
            self._last_input = self._clock.monotonic()
            self.summary.first_input = self.summary.first_input or self._last_input
            self._process(records)
        self._account(self._delivery.service(self._assigned))
        self._reporter.report(self._assigned, self._delivery.in_flight(), self._paused)

    def _without_released(self, records: list[RawRecord]) -> list[RawRecord]:
        """Drop what was fetched before a revocation inside this same poll.

        A poll fetches in chunks, and the rebalance callback can run between two of them: the
        records of the first chunk then belong to partitions whose in-flight work the revocation
        has just committed. Deciding them would write outputs whose offsets can no longer be
        committed, and the partition's next owner (or this worker, if the partition comes back)
        decides them again from the committed offset: a duplicate in exactly-once (seen in CI: 32
        decisions, one chunk, twice). Not deciding them loses nothing: that is where the next
        owner starts.
        """
        released = self._released
        return [r for r in records if (r.topic, r.partition) not in released]

    def _process(self, records: list[RawRecord]) -> None:
        started = self._clock.monotonic()
        try:
            results = self._decider.decide(records, int(self._clock.now() * 1000))
        except SchemaSourceUnavailable as exc:
            self._hold(records, exc)
            return
        self._metrics.batch_duration.observe(self._clock.monotonic() - started)
        self._reporter.dead_letters(Counter(r.code for r in results if isinstance(r, DeadLettered)))
        self._delivery.submit(results, spans(records))  # offsets cover records without output

    def _hold(self, records: Sequence[RawRecord], exc: SchemaSourceUnavailable) -> None:
        """Registry away: pause these partitions, rewind them to this batch, retry later.

        The loop keeps turning meanwhile, so the group, the probes and other partitions are served.
        """
        first: dict[PartitionKey, int] = {}
        for r in records:
            first.setdefault((r.topic, r.partition), r.offset)
        self._source.pause(first)
        self._source.seek(first)
        self._held.update(first)
        self._held_until = self._clock.monotonic() + REGISTRY_RETRY_DELAY
        self._warnings.warn("schema registry unavailable, batch held", str(exc))

    def _release_held(self) -> None:
        if self._held and self._clock.monotonic() >= self._held_until:
            keys = self._held & self._assigned
            self._held.clear()
            if not self._paused:
                self._source.resume(keys)

    def _account(self, done: list[Tally]) -> None:
        """Durable work: counted in metrics and the summary, and it is progress."""
        if not done:
            return
        now_ms = int(self._clock.now() * 1000)
        for t in done:
            self._metrics.record(t, now_ms)
            self.summary.add(t)
        self.summary.last_ack = self._clock.monotonic()
        self._metrics.last_progress.set(self._clock.now())
        self._health.broker_up = True

    def _apply_backpressure(self) -> None:
        """Stop fetching while too much output is unacknowledged (e.g. the broker is away)."""
        in_flight = self._delivery.in_flight()
        limit = self._settings.max_in_flight
        if not self._paused and in_flight >= limit:
            self._source.pause(self._assigned)
            self._paused = True
            log.warning("backpressure: pausing fetch", extra={"in_flight": in_flight})
        elif self._paused and in_flight < limit // 2:
            self._source.resume(self._assigned - self._held)
            self._paused = False
            log.info("backpressure released: resuming fetch", extra={"in_flight": in_flight})
        if self._paused:
            self._account(self._delivery.service(self._assigned))

    def _idle_for(self, seconds: float) -> bool:
        """Quiet for `seconds` since the last input or assignment, with all work durable.

        Before the first assignment the clock does not run (joining a group can take longer than
        the idle time), unless no partition arrives within JOIN_GRACE: then this worker has none
        to wait for (more workers than partitions).
        """
        now = self._clock.monotonic()
        if not self._ever_assigned:
            waited = now - self.summary.started
            if self._health.client_problem is not None and waited >= max(seconds, CONNECT_GRACE):
                return True  # refused credentials or TLS: _ensure_joined says so and fails
            if waited < max(seconds, JOIN_GRACE):
                return False
        quiet = now - self._last_input >= seconds
        return quiet and not self._held and self._delivery.idle()

    def _ensure_joined(self) -> None:
        """A bounded run that never joined its group did none of its work: that must not end like
        success (exit 0 after "input idle"), but with the reason, e.g. a refused password."""
        health = self._health
        if self._ever_assigned or (health.joined and health.client_problem is None):
            return
        bootstrap = self._settings.kafka.get("bootstrap.servers", "<no bootstrap.servers>")
        if health.client_problem is not None:
            cause = health.client_problem
        elif not health.broker_up:
            cause = "no broker answered"
        else:
            cause = "the group coordinator did not take this member in"
        msg = (
            f"stopped without ever joining group {self._settings.group_id} at {bootstrap}: {cause}"
        )
        raise KafkaClientError(msg)

    def _shutdown(self) -> None:
        """Stop fetching, make in-flight work durable, within the shutdown timeout."""
        timeout = self._settings.shutdown_timeout
        log.info(
            "shutting down",
            extra={"in_flight": self._delivery.in_flight(), "timeout_seconds": timeout},
        )
        self._health.stopping = True
        self._source.pause(self._assigned)
        self._account(self._delivery.shutdown(self._assigned, timeout * 0.8))
        self._reporter.log_dead_letters()

    # ---- rebalance callbacks: the source calls them inside poll and wraps their exceptions ----

    def _on_assign(self, partitions: list[PartitionKey]) -> None:
        """Joined (possibly with no partitions, when replicas outnumber partitions): ready."""
        self._assigned.update(partitions)
        self._last_input = self._clock.monotonic()  # a new assignment restarts the idle clock
        self._ever_assigned = True
        self._metrics.rebalances.labels("assigned").inc()
        self._assignment_changed()
        self._health.joined = True
        if self._paused and partitions:
            self._source.pause(partitions)
        log.info("partitions assigned", extra={"partitions": partition_names(partitions)})

    def _on_revoke(self, partitions: list[PartitionKey]) -> None:
        """Finish and commit the revoked partitions' in-flight work before giving them up."""
        revoked = set(partitions)
        self._metrics.rebalances.labels("revoked").inc()
        owned = frozenset(self._assigned)
        done = self._delivery.revoke(revoked, owned, self._settings.shutdown_timeout)
        self._account(done)
        self._release(revoked)
        log.info("partitions revoked", extra={"partitions": partition_names(partitions)})

    def _on_lost(self, partitions: list[PartitionKey]) -> None:
        """Lost partitions already belong to someone else: do not commit; their new owner redoes the work."""
        lost = set(partitions)
        self._metrics.rebalances.labels("lost").inc()
        self._health.joined = False  # the group dropped us; ready again at the next assignment
        self._delivery.lose(lost, frozenset(self._assigned))
        self._release(lost)
        log.warning("partitions lost", extra={"partitions": partition_names(partitions)})

    def _release(self, partitions: set[PartitionKey]) -> None:
        self._assigned -= partitions
        self._released |= partitions
        self._held -= partitions
        self._assignment_changed()

    def _assignment_changed(self) -> None:
        """The assignment changes only in the rebalance callbacks: the gauges follow it there."""
        self._metrics.assigned_partitions.set(len(self._assigned))
        self._reporter.assigned(self._assigned)
