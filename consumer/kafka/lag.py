"""Consumer lag as operators and autoscalers read it: the group's committed lag, read from the
broker by GroupOffsetsReader (the lag monitor's thread), for every partition of the input topic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from consumer.core.records import PartitionKey
from consumer.errors import BrokerUnavailable


@dataclass(frozen=True, slots=True)
class GroupReading:
    """One reading of the group on the input topic: for every partition, the group's committed
    offset (negative: none) and the low and end offsets (the end is the high watermark)."""

    committed: Mapping[PartitionKey, int]
    low: Mapping[PartitionKey, int]
    end: Mapping[PartitionKey, int]

    def lag(self) -> dict[PartitionKey, int]:
        """Committed lag of every partition read (see `committed_lag`)."""
        return {
            tp: committed_lag(end, self.committed.get(tp, -1), self.low.get(tp, 0))
            for tp, end in self.end.items()
        }


def committed_lag(end: int, committed: int, low: int) -> int:
    """End offset minus the group's committed offset: what an admin client, kafka-exporter and
    KEDA's Kafka scaler call lag. Without a commit, or with one below the low watermark (deleted
    by retention), the group starts at the low watermark (auto.offset.reset=earliest), so that is
    where the backlog starts."""
    start = max(committed, low) if committed >= 0 else max(low, 0)
    return max(0, end - start)


class GroupOffsetsReader:
    """Reads a GroupReading with a consumer of its own that never subscribes (so it never joins
    the group): committed offsets by OffsetFetch, end offsets by ListOffsets, each call bounded
    by `timeout`. Used from the lag monitor's thread only, so the worker's loop never waits on it.
    """

    def __init__(self, consumer: Consumer, topic: str, timeout: float) -> None:
        self._consumer = consumer
        self._topic = topic
        self._timeout = timeout

    def read(self) -> GroupReading:
        """The group's offsets on every partition of the topic; BrokerUnavailable when the broker
        does not answer within the timeout (or answers with an error)."""
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=self._timeout)
            topic = metadata.topics.get(self._topic)
            if topic is None or topic.error is not None or not topic.partitions:
                detail = topic.error if topic is not None else "not in the metadata"
                msg = f"{self._topic}: cannot read partitions for lag: {detail}"
                raise BrokerUnavailable(msg)
            tps = [TopicPartition(self._topic, p) for p in sorted(topic.partitions)]
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in self._consumer.committed(tps, timeout=self._timeout)
            }
            low: dict[PartitionKey, int] = {}
            end: dict[PartitionKey, int] = {}
            for tp in tps:
                # Asked of the broker (cached=False): a timeout raises, it never returns None.
                found = self._consumer.get_watermark_offsets(tp, timeout=self._timeout)
                low[(tp.topic, tp.partition)], end[(tp.topic, tp.partition)] = found
        except KafkaException as exc:
            msg = f"{self._topic}: cannot read the group's offsets for lag: {exc}"
            raise BrokerUnavailable(msg) from exc
        return GroupReading(committed, low, end)

    def close(self) -> None:
        self._consumer.close()
