"""Bounded ranges of a topic for the impact tools: an offset range per partition, fixed at start.

`plan_range` turns --from/--to (times or an offset) into [start, end) per partition, the end
captured when the tool starts, so a topic that keeps growing still gives a job that ends. The
range is read by a RangeReader (export, diff: no group) or a BoundedSource (replay: its own group).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from confluent_kafka import Consumer, KafkaException, TopicPartition

from consumer.errors import BrokerUnavailable, ConfigError, KafkaClientError
from consumer.kafka import error_kinds as kafka_errors

#: Seconds to wait for metadata, watermarks, committed offsets and offsets_for_times answers.
METADATA_TIMEOUT: Final = 15.0


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
    if found is not None and found.error is not None:
        # Without Describe the broker hides whether the topic exists: say what is missing.
        missing = kafka_errors.not_authorized(found.error, topic=topic)
        if missing is not None:
            raise KafkaClientError(missing)
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
