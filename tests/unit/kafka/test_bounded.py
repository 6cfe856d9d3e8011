"""BoundedSource, replay's group source, against an autospec consumer: what it hands out, when it is done."""

from __future__ import annotations

from typing import Any
from unittest.mock import create_autospec

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from prometheus_client import CollectorRegistry

from consumer.kafka.bounded import JOIN_GRACE, BoundedSource, Bounds
from consumer.kafka.callbacks import ClientEvents
from consumer.service.health import Health
from consumer.service.metrics import Metrics

TOPIC = "in"


def record(partition: int, offset: int) -> Message:
    return Message(topic=TOPIC, partition=partition, offset=offset, value=b"v", key=None)


def eof(partition: int, offset: int) -> Message:
    error = KafkaError(KafkaError._PARTITION_EOF)
    return Message(topic=TOPIC, partition=partition, offset=offset, error=error)


def assigned_source(
    ranges: dict[int, tuple[int, int]], monotonic: Any = None
) -> tuple[BoundedSource, Any]:
    """A source subscribed and assigned every partition of `ranges`, none committed yet."""
    consumer = create_autospec(Consumer, instance=True, spec_set=True)
    consumer.committed.side_effect = lambda tps, timeout: [
        TopicPartition(tp.topic, tp.partition, -1001) for tp in tps
    ]
    health = Health(stall_timeout=60)
    events = ClientEvents(Metrics(CollectorRegistry()), health)
    kwargs = {} if monotonic is None else {"monotonic": monotonic}
    source = BoundedSource(consumer, Bounds(TOPIC, ranges), events, health, **kwargs)
    noop = lambda _c, _p: None  # noqa: E731
    source.subscribe(noop, noop, noop)
    on_assign = consumer.subscribe.call_args.kwargs["on_assign"]
    on_assign(consumer, [TopicPartition(TOPIC, p) for p in ranges])
    return source, consumer


class TestBoundedSource:
    def test_records_before_their_partitions_eof_in_one_batch_are_kept(self) -> None:
        """The EOF event comes after a partition's last records, often in the same consume():
        it finishes the partition, but the records before it are still handed out."""
        source, consumer = assigned_source({0: (0, 10), 1: (0, 5)})
        consumer.consume.side_effect = [[record(0, 8), record(1, 4), record(0, 9), eof(0, 10)]]
        got = source.poll(100, 0.1)
        assert [(r.partition, r.offset) for r in got] == [(0, 8), (1, 4), (0, 9)]
        assert not source.done()  # partition 1 has had no EOF yet
        consumer.pause.assert_called_once_with([TopicPartition(TOPIC, 0)])

    def test_records_at_or_past_the_end_finish_the_partition(self) -> None:
        """The end captured at start bounds the run: later records are not handed out."""
        source, consumer = assigned_source({0: (0, 10)})
        consumer.consume.side_effect = [[record(0, 9), record(0, 10), record(0, 11)]]
        got = source.poll(100, 0.1)
        assert [r.offset for r in got] == [9]
        assert source.done()

    def test_a_finished_partition_hands_out_nothing_more(self) -> None:
        """Records still queued for a partition finished in an earlier poll are dropped."""
        source, consumer = assigned_source({0: (0, 10)})
        consumer.consume.side_effect = [[eof(0, 10)], [record(0, 9)]]
        assert source.poll(100, 0.1) == []
        assert source.done()
        assert source.poll(100, 0.1) == []

    def test_a_member_whose_partitions_all_moved_away_ends_after_the_grace(self) -> None:
        """Another member of the run took over its partitions: nothing is left for this one."""
        now = [0.0]
        source, consumer = assigned_source({0: (0, 10)}, monotonic=lambda: now[0])
        on_revoke = consumer.subscribe.call_args.kwargs["on_revoke"]
        now[0] = 100.0
        on_revoke(consumer, [TopicPartition(TOPIC, 0)])
        assert not source.done()
        now[0] = 100.0 + JOIN_GRACE + 1
        assert source.done()
