"""The client boundary's conversions: a consumed Message into a RawRecord, confluent_kafka's
TopicPartition lists into PartitionKeys and back, and `topic[partition]` names for log fields.

Past this module nothing sees a Message or a TopicPartition: the loop and the core work with
RawRecord and PartitionKey, which tests can build without a broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from confluent_kafka import Message, TopicPartition

from consumer.core.records import Headers, PartitionKey, RawRecord


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
        tuple(cast(Headers, m.headers() or ())),
    )


def partition_keys(partitions: Iterable[TopicPartition]) -> list[PartitionKey]:
    """The keys of `partitions`, in the client's order."""
    return [(tp.topic, tp.partition) for tp in partitions]


def topic_partitions(keys: Iterable[PartitionKey]) -> list[TopicPartition]:
    """TopicPartitions (no offset) of `keys`, sorted."""
    return [TopicPartition(t, p) for t, p in sorted(keys)]


def partition_names(keys: Iterable[PartitionKey]) -> list[str]:
    """`topic[partition]` labels for log fields."""
    return [f"{topic}[{partition}]" for topic, partition in keys]
