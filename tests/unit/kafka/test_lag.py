"""Committed lag: end offset minus the group's committed offset, read apart from the loop."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumer.errors import BrokerUnavailable
from consumer.kafka.lag import GroupOffsetsReader, committed_lag

TP = ("t", 0)


@pytest.mark.parametrize(
    ("end", "committed", "low", "expected"),
    [
        (100, 60, 0, 40),
        (100, -1001, 0, 100),
        (100, -1001, 30, 70),
        (100, 10, 30, 70),
        (100, 100, 0, 0),
        (0, -1001, 0, 0),
    ],
    ids=[
        "end-minus-committed",
        "no-commit-counts-from-the-low-watermark",
        "no-commit-after-retention",
        "commit-below-the-low-watermark",
        "caught-up",
        "empty-partition",
    ],
)
def test_committed_lag(end: int, committed: int, low: int, expected: int) -> None:
    assert committed_lag(end, committed, low) == expected


class _Partition:
    def __init__(self) -> None:
        self.error = None


class _Topic:
    def __init__(self, partitions: int) -> None:
        self.error = None
        self.partitions = {p: _Partition() for p in range(partitions)}


class _Metadata:
    def __init__(self, topic: str, partitions: int) -> None:
        self.topics = {topic: _Topic(partitions)}


class FakeLagConsumer:
    """librdkafka's consumer as far as GroupOffsetsReader uses it; `down` makes every call time
    out as it does with no broker."""

    def __init__(self, committed: dict[int, int], ends: dict[int, int]) -> None:
        self.committed_offsets = committed
        self.ends = ends
        self.down = False
        self.timeouts: list[float] = []

    def _call(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    def list_topics(self, topic: str, timeout: float) -> _Metadata:
        self._call(timeout)
        return _Metadata(topic, len(self.ends))

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self._call(timeout)
        return [
            TopicPartition(tp.topic, tp.partition, self.committed_offsets[tp.partition])
            for tp in tps
        ]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self._call(timeout)
        return 0, self.ends[tp.partition]


class TestGroupOffsetsReader:
    def test_reads_every_partition_with_the_timeout(self) -> None:
        fake = FakeLagConsumer({0: 5, 1: -1001}, {0: 8, 1: 3})
        reading = GroupOffsetsReader(fake, "t", timeout=2.5).read()  # type: ignore[arg-type]
        assert reading.lag() == {("t", 0): 3, ("t", 1): 3}
        assert reading.committed == {("t", 0): 5, ("t", 1): -1001}
        assert set(fake.timeouts) == {2.5}

    def test_no_broker_is_broker_unavailable(self) -> None:
        fake = FakeLagConsumer({0: 5}, {0: 8})
        fake.down = True
        with pytest.raises(BrokerUnavailable, match=r"t: cannot read the group's offsets"):
            GroupOffsetsReader(fake, "t", timeout=1).read()  # type: ignore[arg-type]
