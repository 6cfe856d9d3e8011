"""Reads a bounded range (kafka/ranges.py) with assign(): no group join, no commit, so no group's
offsets move. What export and diff read a topic with."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from consumer.core.records import RawRecord
from consumer.errors import KafkaClientError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.messages import raw_record
from consumer.kafka.ranges import Bounds

log = logging.getLogger(__name__)

#: Not errors of the read: end of a partition, and the placeholder group's coordinator lookup.
#: confluent-kafka's Consumer needs a group.id and librdkafka then looks up its coordinator even
#: though assign() never uses it; without Describe on that group the lookup fails with
#: GROUP_AUTHORIZATION_FAILED, which must not stop a reader that needs only Read on the topic.
_NOT_OURS = frozenset({KafkaError._PARTITION_EOF, KafkaError.GROUP_AUTHORIZATION_FAILED})


class RangeReader:
    """Reads a Bounds with assign(): no group join, no commit, so no group's offsets move."""

    def __init__(self, consumer: Consumer, bounds: Bounds, count: int | None = None) -> None:
        self._consumer = consumer
        self.bounds = bounds
        self._count = count

    def records(self, batch: int = 500, timeout: float = 1.0) -> Iterator[RawRecord]:
        """Every record in range, partition by partition interleaved as the broker sends them."""
        ranges = self.bounds.ranges
        todo = {p: end for p, (start, end) in ranges.items() if start < end}
        left = self._count
        if not todo or left == 0:
            return
        topic = self.bounds.topic
        self._consumer.assign([TopicPartition(topic, p, ranges[p][0]) for p in sorted(todo)])
        while todo:
            messages = self._consumer.consume(num_messages=batch, timeout=timeout)
            for m in messages:
                err = m.error()
                if err is not None:
                    if err.code() not in _NOT_OURS:
                        _consume_error(err, topic)
                    continue
                p, offset = cast(int, m.partition()), cast(int, m.offset())
                end = todo.get(p)
                if end is None or offset >= end:
                    continue
                yield raw_record(m)
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
            self._finish(todo)

    def _finish(self, todo: dict[int, int]) -> None:
        """Drop partitions whose position passed their end (the last offsets may be markers)."""
        topic = self.bounds.topic
        positions = self._consumer.position([TopicPartition(topic, p) for p in todo])
        for tp in positions:
            if tp.offset >= 0 and tp.offset >= todo[tp.partition]:
                del todo[tp.partition]
        if todo:
            return
        self._consumer.unassign()

    def close(self) -> None:
        self._consumer.close()


def _consume_error(error: KafkaError, topic: str) -> None:
    if kafka_errors.stops_worker(error) or not error.retriable():
        msg = f"{topic}: cannot consume: {kafka_errors.describe(error)}"
        raise KafkaClientError(msg)
    log.warning("consume error", extra={"detail": kafka_errors.describe(error)})
