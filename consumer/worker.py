"""The processing loop: poll, decide_batch, produce, commit; rebalance callbacks; backpressure; shutdown.

Delivery guarantee: at-least-once. An input offset is stored (and so auto-committed) only when the
output of that message and of every earlier message of its partition has been acknowledged by the
broker (see offsets.py). Revocation and shutdown wait for in-flight outputs, then commit synchronously.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer import kafka_errors
from consumer.client_events import ClientEvents, partition_names
from consumer.config import Settings
from consumer.errors import (
    ConfigError,
    KafkaClientError,
    RebalanceError,
    SchemaSourceUnavailable,
)
from consumer.events import RawRecord
from consumer.health import Health
from consumer.lag import Offsets, partition_lag
from consumer.metrics import Metrics
from consumer.offsets import OffsetLedger
from consumer.outputs import Outputs
from consumer.pipeline import Decider, Result, Tally, tally
from consumer.summary import RunSummary

log = logging.getLogger(__name__)

Clock = Callable[[], float]
#: How often lag is refreshed and the dead-letter summary logged (seconds).
REPORT_INTERVAL = 2.0
DLQ_SUMMARY_INTERVAL = 30.0
#: --until-idle waits this long for a first assignment before it counts idle time (seconds).
JOIN_GRACE = 30.0
#: Back-off while the schema registry is unreachable (seconds).
REGISTRY_RETRY_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class Telemetry:
    metrics: Metrics
    health: Health
    events: ClientEvents


Callback = Callable[["Worker", Consumer, list[TopicPartition]], None]


def _wrap_rebalance_errors(callback: Callback) -> Callback:
    """Any exception in a rebalance callback becomes one RebalanceError naming the callback."""

    @functools.wraps(callback)
    def wrapped(worker: Worker, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            callback(worker, consumer, partitions)
        except Exception as exc:  # wrap and re-raise: librdkafka would otherwise hide the cause
            msg = f"{callback.__name__.lstrip('_')} failed: {exc}"
            raise RebalanceError(msg) from exc

    return wrapped


class Worker:
    """Owns the loop and the callbacks; every collaborator arrives through the constructor."""

    def __init__(
        self,
        settings: Settings,
        consumer: Consumer,
        outputs: Outputs,
        decider: Decider,
        telemetry: Telemetry,
        stop: threading.Event,
        clock: Clock = time.time,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._outputs = outputs
        self._decider = decider
        self._metrics = telemetry.metrics
        self._health = telemetry.health
        self._stop = stop
        self._clock = clock
        self._ledger: OffsetLedger[Tally] = OffsetLedger()
        self._assigned: set[tuple[str, int]] = set()
        self._paused = False
        self._ever_assigned = False
        self._events = telemetry.events
        self._last_input = time.monotonic()
        self._last_report = 0.0
        self._dlq_window: Counter[str] = Counter()
        self._dlq_window_start = time.monotonic()
        self.summary = RunSummary(started=time.monotonic())
        self._progress_start = time.monotonic()
        self._progress_counts: dict[str, int] = {}
        self._lag_total = 0

    # ---- the loop ----

    def run(self, until_idle: float | None = None) -> RunSummary:
        """Process until stop is set (signal) or, with until_idle, until the input has been quiet that long."""
        self._check_input_topic()
        self._consumer.subscribe(
            [self._settings.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._metrics.last_progress.set(self._clock())
        log.info(
            "worker started",
            extra={"topic": self._settings.input_topic, "group": self._settings.group_id},
        )
        try:
            while not self._stop.is_set():
                self._turn()
                if until_idle is not None and self._idle_for(until_idle):
                    log.info("input idle, stopping", extra={"idle_seconds": until_idle})
                    break
            self._shutdown()
        finally:
            self._health.stopping = True
            self._consumer.close()
        return self.summary

    def _check_input_topic(self) -> None:
        """A missing input topic is a setting error: say so at start instead of idling silently."""
        topic = self._settings.input_topic
        try:
            metadata = self._consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            log.warning("cannot read topic metadata yet; continuing", extra={"detail": str(exc)})
            return
        found = metadata.topics.get(topic)
        missing = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
        if found is not None and found.error is not None and found.error.code() in missing:
            msg = (
                f"input topic {topic!r} does not exist (create it with `import-closure topics "
                f"create`, or start with `run --create-topics`)"
            )
            raise ConfigError(msg)

    def _turn(self) -> None:
        self._health.beat()
        if self._events.fatal is not None:
            raise self._events.fatal
        self._outputs.resend_failed(self._assigned)
        self._apply_backpressure()
        messages = self._consumer.consume(
            num_messages=self._settings.batch_size,
            timeout=0.1 if self._paused else self._settings.poll_timeout,
        )
        if self._events.fatal is not None:
            raise self._events.fatal
        records = self._records(messages)
        if records:
            self._last_input = time.monotonic()
            self.summary.first_input = self.summary.first_input or self._last_input
            self._process(records)
        self._outputs.poll(0)
        self._store_done()
        self._report()

    def _records(self, messages: list[Message]) -> list[RawRecord]:
        records: list[RawRecord] = []
        for m in messages:
            err = m.error()
            if err is not None:
                self._consume_error(err, m.topic())
                continue
            records.append(raw_record(m))
        if records:
            self._health.broker_up = True  # a fetch arrived: a broker answered
        return records

    def _consume_error(self, error: KafkaError, topic: str | None) -> None:
        """Fatal, authorization and fencing errors stop the worker; the rest are logged, throttled."""
        if kafka_errors.stops_worker(error):
            where = f"{topic}: " if topic else ""
            msg = f"{where}cannot consume: {kafka_errors.describe(error)}"
            raise KafkaClientError(msg)
        if error.code() in kafka_errors.AUTHENTICATION:
            self._health.client_problem = f"authentication failed: {kafka_errors.describe(error)}"
        self._events.report(logging.WARNING, "consume error", error)

    def _process(self, records: list[RawRecord]) -> None:
        started = time.perf_counter()
        results = self._decide(records)
        self._metrics.batch_duration.observe(time.perf_counter() - started)
        by_partition: dict[tuple[str, int], list[Result]] = {}
        for result in results:
            r = result.record
            by_partition.setdefault((r.topic, r.partition), []).append(result)
        for (topic, partition), group in by_partition.items():
            chunk = self._ledger.open(
                topic,
                partition,
                group[0].record.offset,
                group[-1].record.offset,
                len(group),
                tally(group),
            )
            self._dlq_window.update(chunk.payload.dead_letters)
            self._outputs.send(group, chunk)

    def _decide(self, records: list[RawRecord]) -> list[Result]:
        """Decide a batch; while the schema registry is away, wait and retry rather than dead-letter."""
        while True:
            try:
                return self._decider.decide(records, int(self._clock() * 1000))
            except SchemaSourceUnavailable as exc:
                log.warning(
                    "schema registry unavailable, retrying batch", extra={"detail": str(exc)}
                )
                self._outputs.poll(REGISTRY_RETRY_DELAY)
                if self._stop.is_set():
                    raise

    def _apply_backpressure(self) -> None:
        """Stop fetching while too much output is unacknowledged (e.g. the broker is away)."""
        in_flight = self._ledger.in_flight()
        limit = self._settings.max_in_flight
        if not self._paused and in_flight >= limit:
            self._consumer.pause(self._tps(self._assigned))
            self._paused = True
            log.warning("backpressure: pausing fetch", extra={"in_flight": in_flight})
        elif self._paused and in_flight < limit // 2:
            self._consumer.resume(self._tps(self._assigned))
            self._paused = False
            log.info("backpressure released: resuming fetch", extra={"in_flight": in_flight})
        if self._paused:
            self._outputs.poll(0.1)

    def _store_done(self) -> dict[tuple[str, int], int]:
        """Store offsets of finished work for the auto-committer; count it in metrics."""
        offsets, finished = self._ledger.pop_done()
        if finished:
            now_ms = int(self._clock() * 1000)
            for chunk in finished:
                self._metrics.record(chunk.payload, now_ms)
                self.summary.add(chunk.payload)
            self.summary.last_ack = time.monotonic()
            self._metrics.last_progress.set(self._clock())  # progress = acknowledged work
            self._health.broker_up = True
        if offsets:
            owned = [
                TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in self._assigned
            ]
            if owned:
                self._consumer.store_offsets(offsets=owned)
        return offsets

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._last_report < REPORT_INTERVAL:
            return
        self._last_report = now
        self._refresh_lag()
        if now - self._dlq_window_start >= DLQ_SUMMARY_INTERVAL:
            self._log_dead_letter_summary(now)
        interval = self._settings.progress_interval
        if interval and now - self._progress_start >= interval:
            self._log_progress(now)

    def _log_progress(self, now: float) -> None:
        """A heartbeat line, so a quiet log still says the worker is at work and how fast."""
        counts = dict(self.summary.outcomes)
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
                "lag": self._lag_total,
                "in_flight": self._ledger.in_flight(),
                "assigned_partitions": len(self._assigned),
                "paused": self._paused,
            },
        )
        self._progress_start = now
        self._progress_counts = counts

    def _log_dead_letter_summary(self, now: float) -> None:
        if self._dlq_window:
            log.warning(
                "dead letters in the last interval",
                extra={
                    "seconds": round(now - self._dlq_window_start),
                    "by_code": dict(self._dlq_window),
                    "total": sum(self._dlq_window.values()),
                },
            )
        self._dlq_window.clear()
        self._dlq_window_start = now

    def _refresh_lag(self) -> None:
        """Lag of every assigned partition from local positions and cached watermarks (no I/O)."""
        known: dict[tuple[str, int], Offsets] = {}
        if self._assigned:
            for tp in self._consumer.position(self._tps(self._assigned)):
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                known[(tp.topic, tp.partition)] = Offsets(tp.offset, low, high)
        lag = partition_lag(known, self._events.partition_stats, self._assigned)
        self._lag_total = sum(lag.values())
        self._metrics.set_lag(lag)

    def _idle_for(self, seconds: float) -> bool:
        """Quiet for `seconds` since the last input or assignment, with all work acknowledged.

        Before the first assignment the clock does not run (joining a group can take longer than
        the idle time), unless no partition arrives within JOIN_GRACE: then this worker has none
        to wait for (more workers than partitions).
        """
        now = time.monotonic()
        if not self._ever_assigned and now - self.summary.started < max(seconds, JOIN_GRACE):
            return False
        quiet = now - self._last_input >= seconds
        return quiet and not self._ledger.pending() and not self._outputs.retrying

    # ---- rebalance callbacks: exceptions are wrapped so the loop sees one typed error ----

    @_wrap_rebalance_errors
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Joined (possibly with no partitions, when replicas outnumber partitions): ready."""
        self._assigned.update((tp.topic, tp.partition) for tp in partitions)
        self._last_input = time.monotonic()  # a new assignment restarts the idle clock
        self._ever_assigned = True
        self._metrics.rebalances.labels("assigned").inc()
        self._metrics.assigned_partitions.set(len(self._assigned))
        self._health.joined = True
        if self._paused and partitions:
            consumer.pause(partitions)
        log.info("partitions assigned", extra={"partitions": partition_names(partitions)})

    @_wrap_rebalance_errors
    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish and commit the revoked partitions' in-flight work before giving them up."""
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._metrics.rebalances.labels("revoked").inc()
        self._drain(revoked, self._settings.shutdown_timeout)
        offsets = self._store_done()
        self._commit_sync({tp: o for tp, o in offsets.items() if tp in revoked} or None, consumer)
        self._release(revoked)
        log.info("partitions revoked", extra={"partitions": partition_names(partitions)})

    @_wrap_rebalance_errors
    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Lost partitions already belong to someone else: do not commit; their new owner redoes the work."""
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._metrics.rebalances.labels("lost").inc()
        self._health.joined = False  # the group dropped us; ready again at the next assignment
        self._release(lost)
        log.warning("partitions lost", extra={"partitions": partition_names(partitions)})

    def _release(self, partitions: set[tuple[str, int]]) -> None:
        dropped = self._ledger.forget(partitions)
        if dropped:
            log.warning(
                "gave up unfinished work",
                extra={"chunks": len(dropped), "outputs": sum(c.remaining for c in dropped)},
            )
        self._assigned -= partitions
        self._metrics.assigned_partitions.set(len(self._assigned))
        self._metrics.set_lag({})

    def _drain(self, partitions: set[tuple[str, int]] | None, timeout: float) -> bool:
        """Serve delivery reports until the given partitions' (or all) outputs are acknowledged."""
        deadline = time.monotonic() + timeout
        while True:
            self._outputs.resend_failed(self._assigned)
            if self._ledger.in_flight(partitions) == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._events.fatal is not None:
                return False
            self._outputs.poll(min(0.1, remaining))

    def _commit_sync(self, offsets: dict[tuple[str, int], int] | None, consumer: Consumer) -> None:
        """Synchronous commit of stored offsets (or the given ones); failures are counted, not raised."""
        try:
            if offsets:
                consumer.commit(offsets=self._tps_at(offsets), asynchronous=False)
            else:
                consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError._NO_OFFSET:
                self._metrics.commit_failures.inc()
                log.warning("offset commit failed", extra={"detail": error.str()})

    def _shutdown(self) -> None:
        """Stop fetching, deliver in-flight work, commit, within the shutdown timeout."""
        timeout = self._settings.shutdown_timeout
        log.info(
            "shutting down",
            extra={"in_flight": self._ledger.in_flight(), "timeout_seconds": timeout},
        )
        self._health.stopping = True
        if self._assigned:
            self._consumer.pause(self._tps(self._assigned))
        delivered = self._drain(None, timeout * 0.8)
        self._store_done()
        if self._events.fatal is not None:
            raise self._events.fatal
        if not delivered:
            log.warning(
                "shutdown timeout: undelivered work stays uncommitted and will be re-processed",
                extra={"in_flight": self._ledger.in_flight()},
            )
        self._commit_sync(None, self._consumer)
        self._log_dead_letter_summary(time.monotonic())

    @staticmethod
    def _tps(keys: set[tuple[str, int]]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(keys)]

    @staticmethod
    def _tps_at(offsets: dict[tuple[str, int], int]) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]


def raw_record(m: Message) -> RawRecord:
    """Copy a consumed message out of librdkafka's object; the core never sees a Message."""
    ts_type, ts = m.timestamp()
    # A message without error always has topic, partition and offset; the stubs allow None.
    return RawRecord(
        cast(str, m.topic()),
        cast(int, m.partition()),
        cast(int, m.offset()),
        ts if ts_type else None,
        m.key(),
        m.value(),
        tuple(cast(list[tuple[str, bytes | None]], m.headers() or ())),
    )
