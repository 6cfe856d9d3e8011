"""BoundedSource, replay's group source, against an autospec consumer: what it hands out, when it is done."""

from __future__ import annotations

from typing import Any
from unittest.mock import create_autospec

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from consumer.errors import RebalanceError
from consumer.kafka.bounded_source import BoundedSource
from consumer.kafka.membership import GroupMember
from consumer.kafka.ranges import Bounds
from consumer.kafka.source import JOIN_GRACE
from consumer.telemetry.health import Health
from consumer.telemetry.throttle import Warnings

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
    kwargs = {} if monotonic is None else {"monotonic": monotonic}
    health = Health(stall_timeout=60)
    bounds = Bounds(TOPIC, ranges)
    source = BoundedSource(GroupMember(lambda: consumer), bounds, health, Warnings(), **kwargs)
    noop = lambda _keys: None  # noqa: E731
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

    def test_a_partition_starts_at_its_committed_offset_else_at_the_range_start(self) -> None:
        """A resumed run continues where it stopped; a new one starts where --from said."""
        consumer = create_autospec(Consumer, instance=True, spec_set=True)
        consumer.committed.return_value = [
            TopicPartition(TOPIC, 0, 7),
            TopicPartition(TOPIC, 1, -1001),
        ]
        bounds = Bounds(TOPIC, {0: (2, 10), 1: (3, 10)})
        source = BoundedSource(
            GroupMember(lambda: consumer), bounds, Health(stall_timeout=60), Warnings()
        )
        source.subscribe(lambda _k: None, lambda _k: None, lambda _k: None)
        on_assign = consumer.subscribe.call_args.kwargs["on_assign"]
        on_assign(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])
        [assigned] = consumer.incremental_assign.call_args.args
        assert [(tp.partition, tp.offset) for tp in assigned] == [(0, 7), (1, 3)]

    def test_an_empty_range_is_finished_as_soon_as_it_is_assigned(self) -> None:
        """Nothing to read in a partition: it is paused at once and counts as done."""
        source, consumer = assigned_source({0: (5, 5)})
        consumer.pause.assert_called_once_with([TopicPartition(TOPIC, 0)])
        assert source.done()

    def test_a_finished_partition_is_never_resumed(self) -> None:
        """Releasing backpressure must not fetch past a partition's end."""
        source, consumer = assigned_source({0: (0, 10), 1: (0, 10)})
        consumer.consume.side_effect = [[eof(0, 10)]]
        source.poll(100, 0.1)
        source.resume([(TOPIC, 0), (TOPIC, 1)])
        consumer.resume.assert_called_once_with([TopicPartition(TOPIC, 1)])

    def test_the_loops_callbacks_are_behind_the_same_rebalance_boundary(self) -> None:
        """The bounded source wraps the group source, and so its rebalance error handling."""
        consumer = create_autospec(Consumer, instance=True, spec_set=True)
        bounds = Bounds(TOPIC, {0: (0, 10)})
        source = BoundedSource(
            GroupMember(lambda: consumer), bounds, Health(stall_timeout=60), Warnings()
        )

        def fails(_keys: object) -> None:
            raise ValueError("boom")

        source.subscribe(lambda _k: None, fails, lambda _k: None)
        on_revoke = consumer.subscribe.call_args.kwargs["on_revoke"]
        with pytest.raises(RebalanceError, match="on_revoke failed: boom"):
            on_revoke(consumer, [TopicPartition(TOPIC, 0)])
