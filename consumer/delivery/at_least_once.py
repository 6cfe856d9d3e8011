"""At-least-once: an input offset is stored (and so auto-committed) only when every output of that
input, and of every earlier input of its partition, has been acknowledged by the broker.

Revocation waits for the revoked partitions' outputs and commits synchronously; a lost partition
is not committed (its new owner redoes the work, so a decision may appear twice after a crash).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence, Set

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.core.pipeline import Result, Tally, tally
from consumer.core.records import PartitionKey
from consumer.delivery import Span, by_partition
from consumer.delivery.ledger import OffsetLedger
from consumer.delivery.outputs import Outputs
from consumer.kafka.faults import Faults
from consumer.telemetry.metrics import Metrics

log = logging.getLogger(__name__)


class AtLeastOnce:
    """The Delivery for `processing_guarantee: at-least-once` (the default)."""

    def __init__(
        self,
        consumer: Callable[[], Consumer],
        outputs: Outputs,
        faults: Faults,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        #: The current consumer: a new one after a fenced membership (kafka/membership.py).
        self._consumer = consumer
        self._outputs = outputs
        self._faults = faults
        self._metrics = metrics
        self._monotonic = monotonic
        self._ledger: OffsetLedger[Tally] = OffsetLedger()

    def submit(
        self, results: Sequence[Result], consumed: Mapping[PartitionKey, Span] | None = None
    ) -> None:
        for (topic, partition), (first, last, group) in by_partition(results, consumed).items():
            count = self._outputs.count(group)
            # A chunk of no outputs is done at once: its offsets commit in order with the rest.
            chunk = self._ledger.open(topic, partition, first, last, count, tally(group))
            if group:
                self._outputs.send(group, chunk)

    def service(self, owned: Set[PartitionKey]) -> list[Tally]:
        self._outputs.resend_failed(owned)
        self._outputs.poll(0)
        return self._store_done(owned)[1]

    def in_flight(self) -> int:
        return self._ledger.in_flight()

    def idle(self) -> bool:
        return not self._ledger.pending() and not self._outputs.retrying

    def revoke(
        self, partitions: Set[PartitionKey], owned: Set[PartitionKey], timeout: float
    ) -> list[Tally]:
        self._drain(partitions, owned, timeout)
        offsets, done = self._store_done(owned)
        self._commit_sync({tp: o for tp, o in offsets.items() if tp in partitions} or None)
        self._forget(partitions)
        return done

    def lose(self, partitions: Set[PartitionKey], owned: Set[PartitionKey]) -> None:
        self._forget(partitions)

    def shutdown(self, owned: Set[PartitionKey], timeout: float) -> list[Tally]:
        delivered = self._drain(None, owned, timeout)
        done = self._store_done(owned)[1]
        self._faults.raise_first()
        if not delivered:
            log.warning(
                "shutdown timeout: undelivered work stays uncommitted and will be re-processed",
                extra={"in_flight": self._ledger.in_flight()},
            )
        self._commit_sync(None)
        return done

    def close(self) -> None:
        self._outputs.flush(5)

    def _store_done(self, owned: Set[PartitionKey]) -> tuple[dict[PartitionKey, int], list[Tally]]:
        """Store offsets of finished work for the auto-committer."""
        offsets, finished = self._ledger.pop_done()
        mine = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in owned]
        if mine:
            self._consumer().store_offsets(offsets=mine)
        return offsets, [chunk.payload for chunk in finished]

    def _drain(
        self, partitions: Set[PartitionKey] | None, owned: Set[PartitionKey], timeout: float
    ) -> bool:
        """Serve delivery reports until the given partitions' (or all) outputs are acknowledged."""
        deadline = self._monotonic() + timeout
        while True:
            self._outputs.resend_failed(owned)
            if self._ledger.in_flight(partitions) == 0:
                return True
            remaining = deadline - self._monotonic()
            if remaining <= 0 or self._faults.first is not None:
                return False
            self._outputs.poll(min(0.1, remaining))

    def _commit_sync(self, offsets: dict[PartitionKey, int] | None) -> None:
        """Synchronous commit of stored offsets (or the given ones); failures are counted, not raised."""
        try:
            if offsets:
                tps = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
                self._consumer().commit(offsets=tps, asynchronous=False)
            else:
                self._consumer().commit(asynchronous=False)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError._NO_OFFSET:
                self._metrics.commit_failures.inc()
                log.warning("offset commit failed", extra={"detail": error.str()})

    def _forget(self, partitions: Set[PartitionKey]) -> None:
        dropped = self._ledger.forget(partitions)
        if dropped:
            log.warning(
                "gave up unfinished work",
                extra={"chunks": len(dropped), "outputs": sum(c.remaining for c in dropped)},
            )
