"""Exactly-once: decisions, dead letters and input offsets of many batches commit in one Kafka
transaction (KIP-98), the offsets with the consumer's group metadata so a zombie is fenced
(KIP-447). A read_committed reader of the outputs sees each input's output exactly once.

The loop follows confluent-kafka-python's examples/eos-transactions.py: begin, produce, send the
offsets, commit; an abortable error aborts and rewinds the consumer to the committed offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence, Set

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from consumer import kafka_errors
from consumer.client_events import ClientEvents
from consumer.delivery import Key
from consumer.delivery.at_least_once import _by_partition
from consumer.delivery.outputs import Outputs
from consumer.errors import KafkaClientError
from consumer.metrics import Metrics
from consumer.offsets import Chunk
from consumer.pipeline import DeadLettered, Result, Tally, tally

log = logging.getLogger(__name__)

#: Seconds allowed for each transactional call before it counts as failed (then it is retried
#: if retriable, else the transaction is aborted).
CALL_TIMEOUT = 30.0
#: How many times a retriable commit is tried before the transaction is aborted instead.
COMMIT_ATTEMPTS = 3


class ExactlyOnce:
    """The Delivery for `processing_guarantee: exactly-once`."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        outputs: Outputs,
        events: ClientEvents,
        metrics: Metrics,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._outputs = outputs
        self._events = events
        self._metrics = metrics
        self._interval = interval
        self._monotonic = monotonic
        self._tallies: list[Tally] = []
        self._produced = 0  # outputs in the open transaction
        self._next: dict[Key, int] = {}  # next offset to commit, per partition, in this transaction
        self._opened_at: float | None = None
        #: Records the broker refused for reasons of their own: dead-lettered when they come back.
        self._refused: dict[tuple[str, int, int], tuple[str, str]] = {}
        # Fences any earlier producer with our transactional.id and aborts its open transaction.
        self._call(producer.init_transactions, "init_transactions")

    def submit(self, results: Sequence[Result]) -> None:
        if self._opened_at is None:
            self._call(lambda _timeout: self._producer.begin_transaction(), "begin_transaction")
            self._opened_at = self._monotonic()
        if self._refused:
            results = [self._instead(r) for r in results]
        for (topic, partition), group in _by_partition(results).items():
            first, last = group[0].record.offset, group[-1].record.offset
            chunk = Chunk(topic, partition, first, last, len(group), tally(group))
            self._outputs.send(group, chunk)
            self._tallies.append(chunk.payload)
            self._produced += len(group)
            self._next[(topic, partition)] = last + 1

    def service(self, owned: Set[Key]) -> list[Tally]:
        self._outputs.poll(0)
        if self._opened_at is None or self._monotonic() - self._opened_at < self._interval:
            return []
        return self._commit(owned)

    def in_flight(self) -> int:
        return self._produced

    def idle(self) -> bool:
        return self._opened_at is None

    def revoke(self, partitions: Set[Key], owned: Set[Key], timeout: float) -> list[Tally]:
        # The whole transaction commits before the partitions go: its offsets are still ours.
        return self._commit(owned) if self._opened_at is not None else []

    def lose(self, partitions: Set[Key], owned: Set[Key]) -> None:
        # Offsets of a lost partition can no longer be committed: the open transaction goes.
        if self._opened_at is not None:
            self._abort(owned - set(partitions), "partitions lost")

    def shutdown(self, owned: Set[Key], timeout: float) -> list[Tally]:
        return self._commit(owned) if self._opened_at is not None else []

    def close(self) -> None:
        self._producer.flush(5)

    def _instead(self, result: Result) -> Result:
        r = result.record
        found = self._refused.pop((r.topic, r.partition, r.offset), None)
        return result if found is None else DeadLettered(r, found[0], found[1])

    def _commit(self, owned: Set[Key]) -> list[Tally]:
        """Commit the open transaction with its offsets; on an abortable error, abort and rewind."""
        started = self._monotonic()
        offsets = [
            TopicPartition(t, p, o) for (t, p), o in sorted(self._next.items()) if (t, p) in owned
        ]
        self._producer.flush(CALL_TIMEOUT)  # every delivery report of the transaction is in
        if self._outputs.retrying:
            self._abort(owned, "an output was refused or not delivered")
            return []
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                if offsets:
                    self._producer.send_offsets_to_transaction(
                        offsets, self._consumer.consumer_group_metadata(), CALL_TIMEOUT
                    )
                self._producer.commit_transaction(CALL_TIMEOUT)
                break
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.txn_requires_abort():
                    self._abort(owned, kafka_errors.describe(error))
                    return []
                if not error.retriable() or attempt == COMMIT_ATTEMPTS:
                    raise KafkaClientError(_fatal(error)) from exc
        done = self._tallies
        self._reset()
        self._metrics.transactions.labels("committed").inc()
        self._metrics.transaction_duration.observe(self._monotonic() - started)
        return done

    def _reset(self) -> None:
        self._tallies = []
        self._produced = 0
        self._next.clear()
        self._opened_at = None

    def _abort(self, owned: Set[Key], why: str) -> None:
        """Abort the open transaction and rewind every owned partition to its committed offset."""
        self._call(self._producer.abort_transaction, "abort_transaction")
        for record, code, message in self._outputs.take_refused():
            self._refused[(record.topic, record.partition, record.offset)] = (code, message)
        self._reset()
        self._metrics.transactions.labels("aborted").inc()
        self._events.throttled("transaction aborted, rewinding to committed offsets", why)
        tps = [TopicPartition(t, p) for t, p in sorted(owned)]
        if not tps:
            return
        for tp in self._consumer.committed(tps, timeout=CALL_TIMEOUT):
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, start))

    def _call(self, call: Callable[[float], object], name: str) -> None:
        """A transactional call; fencing and fatal errors stop the worker with one line."""
        try:
            call(CALL_TIMEOUT)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            raise KafkaClientError(f"{name}: {_fatal(error)}") from exc


def _fatal(error: KafkaError) -> str:
    if error.code() in kafka_errors.FENCING:
        return f"fenced by a newer instance of this worker: {kafka_errors.describe(error)}"
    return kafka_errors.describe(error)
