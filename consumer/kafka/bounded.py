"""Bounded reads of a topic for the impact tools: a range of offsets per partition, fixed at start.

`plan_range` turns --from/--to (times or an offset) into [start, end) per partition, the end
captured when the tool starts, so a topic that keeps growing still gives a job that ends.
`RangeReader` reads such a range with assign() and never commits (export, diff): it touches no
consumer group. `BoundedSource` is the worker's GroupSource for replay: the replay's own group
splits the partitions, and the source says when every assigned partition has reached its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.core.records import RawRecord
from consumer.errors import BrokerUnavailable, ConfigError, KafkaClientError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.callbacks import ClientEvents
from consumer.kafka.group_source import GroupSource, Key, RebalanceCallback, raw_record
from consumer.service.health import Health

log = logging.getLogger(__name__)

#: Seconds to wait for metadata, watermarks and offsets_for_times answers.
METADATA_TIMEOUT: Final = 15.0
#: A replay member given no partition for this long has nothing to do (more members than partitions).
JOIN_GRACE: Final = 30.0


@dataclass(frozen=True, slots=True)
class Bounds:
    """Where to read: per partition, the first offset and the end (exclusive)."""

    topic: str
    ranges: Mapping[int, tuple[int, int]]

    @property
    def total(self) -> int:
        """Offsets in range (records, less any compacted away or transaction markers)."""
        return sum(max(0, end - start) for start, end in self.ranges.values())


def plan_range(
    consumer: Consumer,
    topic: str,
    *,
    from_ms: int | None = None,
    from_offset: int | None = None,
    to_ms: int | None = None,
    partition: int | None = None,
) -> Bounds:
    """[start, end) per partition: start at --from (time, via offsets_for_times) or --from-offset
    or the beginning; end at --to (time) or the high watermark seen now."""
    partitions = _partitions(consumer, topic)
    if partition is not None:
        if partition not in partitions:
            msg = f"{topic} has no partition {partition} (it has {len(partitions)})"
            raise ConfigError(msg)
        partitions = [partition]
    ranges: dict[int, tuple[int, int]] = {}
    starts = _offsets_at(consumer, topic, partitions, from_ms) if from_ms is not None else {}
    ends = _offsets_at(consumer, topic, partitions, to_ms) if to_ms is not None else {}
    for p in partitions:
        low, high = _watermarks(consumer, topic, p)
        start = starts.get(p, low)
        if from_offset is not None:
            start = max(from_offset, low)
        end = min(ends.get(p, high), high)
        ranges[p] = (start, max(start, end))
    return Bounds(topic, ranges)


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT)
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot read metadata of {topic}: {exc.args[0].str()}") from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        detail = "does not exist" if found is None or not found.partitions else found.error.str()
        raise ConfigError(f"topic {topic!r} {detail}")
    return sorted(found.partitions)


def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=METADATA_TIMEOUT
        )
    except KafkaException as exc:
        msg = f"cannot read the offsets of {topic}[{partition}]: {exc.args[0].str()}"
        raise BrokerUnavailable(msg) from exc
    return int(low), int(high)


def _offsets_at(consumer: Consumer, topic: str, partitions: list[int], ms: int) -> dict[int, int]:
    """The first offset with a timestamp at or after `ms`; absent when no record is that late."""
    asked = [TopicPartition(topic, p, ms) for p in partitions]
    try:
        found = consumer.offsets_for_times(asked, timeout=METADATA_TIMEOUT)
    except KafkaException as exc:
        msg = f"cannot look up offsets by time in {topic}: {exc.args[0].str()}"
        raise BrokerUnavailable(msg) from exc
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


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
                    if err.code() != KafkaError._PARTITION_EOF:
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


class BoundedSource(GroupSource):
    """The replay group's subscription, read from `starts` to `ends` (captured when replay began).

    A partition the group has committed offsets for continues from them (a resumed run); one it
    has not starts at `starts`. A partition is finished at its end offset (a record at or past it,
    or the partition-EOF event at the high watermark): it is paused, and its records past the end
    are never handed out. The loop stops once `done()`. `gate`, when given, says how many
    records may be read now (the --rate token bucket).
    """

    def __init__(
        self,
        consumer: Consumer,
        bounds: Bounds,
        events: ClientEvents,
        health: Health,
        gate: Callable[[int], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(consumer, bounds.topic, events, health)
        self._bounds = bounds
        self._gate = gate
        self._monotonic = monotonic
        #: Since when this member holds no partition (at start, or after all were moved away).
        self._empty_since = monotonic()
        self._assigned: set[int] = set()
        self._finished: set[int] = set()

    def subscribe(
        self, on_assign: RebalanceCallback, on_revoke: RebalanceCallback, on_lost: RebalanceCallback
    ) -> None:
        def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            consumer.incremental_assign(self._positions(partitions))
            on_assign(consumer, partitions)
            self._assigned.update(tp.partition for tp in partitions)
            for tp in partitions:
                start, end = self._bounds.ranges.get(tp.partition, (0, 0))
                if start >= end:
                    self._finish(tp.partition)

        def revoked(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            on_revoke(consumer, partitions)
            self._forget(partitions)

        def lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            on_lost(consumer, partitions)
            self._forget(partitions)

        super().subscribe(assigned, revoked, lost)

    def _positions(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Where each newly assigned partition starts: the run's committed offset, else `starts`."""
        committed = self.consumer.committed(partitions, timeout=METADATA_TIMEOUT)
        out = []
        for tp in committed:
            start, _end = self._bounds.ranges.get(tp.partition, (0, 0))
            out.append(
                TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else start)
            )
        return out

    def _forget(self, partitions: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in partitions}
        self._assigned -= gone
        self._finished -= gone
        if not self._assigned:
            self._empty_since = self._monotonic()

    def _finish(self, partition: int) -> None:
        if partition in self._assigned and partition not in self._finished:
            self._finished.add(partition)
            self.consumer.pause([TopicPartition(self.topic, partition)])

    def poll(self, batch_size: int, timeout: float) -> list[RawRecord]:
        if self._gate is not None:
            batch_size = self._gate(batch_size)
            if batch_size <= 0:
                time.sleep(timeout)  # the token bucket is empty: wait one poll interval
                return []
        # A partition-EOF event finishes its partition inside super().poll, after the records
        # before it in the same batch: those are in range, so only earlier finishes drop records.
        finished = frozenset(self._finished)
        records = super().poll(batch_size, timeout)
        ranges = self._bounds.ranges
        kept: list[RawRecord] = []
        for r in records:
            if r.partition in finished:
                continue
            if r.offset >= ranges.get(r.partition, (0, 0))[1]:
                self._finish(r.partition)
                continue
            kept.append(r)
        return kept

    def _consume_error(self, error: KafkaError, message: Message) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            partition = message.partition()
            end = self._bounds.ranges.get(partition or 0, (0, 0))[1]
            if partition is not None and (message.offset() or 0) >= end:
                self._finish(partition)
            return
        super()._consume_error(error, message)

    def done(self) -> bool:
        """Every assigned partition read to its end; or no partition held for JOIN_GRACE (more
        members than partitions, or this member's partitions all moved to others)."""
        if not self._assigned:
            return self._monotonic() - self._empty_since > JOIN_GRACE
        return self._assigned <= self._finished

    def resume(self, keys: Iterable[Key]) -> None:
        """Never resume a finished partition (releasing backpressure would fetch past its end)."""
        super().resume(k for k in keys if k[1] not in self._finished)
