"""GroupSource against an autospec consumer: the rebalance boundary, and what poll hands out."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.core.records import PartitionKey
from consumer.errors import ConfigError, KafkaClientError, RebalanceError
from consumer.kafka.group_source import GroupSource
from consumer.kafka.membership import MAX_REJOINS, REJOIN_WINDOW, GroupMember
from consumer.telemetry.health import Health
from consumer.telemetry.throttle import Warnings

TOPIC = "in"


def source(**kwargs: Any) -> tuple[GroupSource, Any]:
    consumer = create_autospec(Consumer, instance=True, spec_set=True)
    health = Health(stall_timeout=60)
    group = GroupSource(GroupMember(lambda: consumer), TOPIC, health, Warnings(), **kwargs)
    return group, consumer


def client_callback(consumer: Any, name: str) -> Any:
    """The rebalance callback the source gave librdkafka at subscribe."""
    return consumer.subscribe.call_args.kwargs[name]


def record(partition: int, offset: int) -> Message:
    return Message(topic=TOPIC, partition=partition, offset=offset, value=b"v", key=None)


def failure(code: int, partition: int = 0, offset: int = 0) -> Message:
    return Message(topic=TOPIC, partition=partition, offset=offset, error=KafkaError(code))


class TestRebalanceBoundary:
    @pytest.mark.parametrize("name", ["on_assign", "on_revoke", "on_lost"])
    def test_the_loops_callbacks_get_partition_keys_in_the_clients_order(self, name: str) -> None:
        """The loop never sees a TopicPartition: each callback hears (topic, partition) keys."""
        group, consumer = source()
        heard: list[tuple[str, list[PartitionKey]]] = []
        group.subscribe(
            lambda keys: heard.append(("on_assign", keys)),
            lambda keys: heard.append(("on_revoke", keys)),
            lambda keys: heard.append(("on_lost", keys)),
        )
        partitions = [TopicPartition(TOPIC, 2), TopicPartition(TOPIC, 0)]
        client_callback(consumer, name)(consumer, partitions)
        assert heard == [(name, [(TOPIC, 2), (TOPIC, 0)])]

    @pytest.mark.parametrize("name", ["on_assign", "on_revoke", "on_lost"])
    def test_any_exception_becomes_one_rebalance_error_naming_the_callback(self, name: str) -> None:
        """librdkafka would hide the cause: the message names the callback, the cause is kept."""

        def fails(_keys: list[PartitionKey]) -> None:
            raise ValueError("boom")

        group, consumer = source()
        group.subscribe(fails, fails, fails)
        with pytest.raises(RebalanceError, match=f"^{name} failed: boom$") as raised:
            client_callback(consumer, name)(consumer, [TopicPartition(TOPIC, 0)])
        assert isinstance(raised.value.__cause__, ValueError)

    def test_it_subscribes_to_its_topic_only(self) -> None:
        """The input topic, nothing else: the outputs are never read back by the worker."""
        group, consumer = source()
        group.subscribe(lambda _k: None, lambda _k: None, lambda _k: None)
        assert consumer.subscribe.call_args.args == ([TOPIC],)


class TestPoll:
    def test_messages_become_raw_records(self) -> None:
        """Topic, partition, offset, key, value and headers are copied out of each message."""
        group, consumer = source()
        consumer.consume.return_value = [record(0, 7), record(1, 3)]
        got = group.poll(100, 0.1)
        assert [(r.topic, r.partition, r.offset, r.value) for r in got] == [
            (TOPIC, 0, 7, b"v"),
            (TOPIC, 1, 3, b"v"),
        ]

    def test_an_error_no_message_can_get_past_stops_the_loop(self) -> None:
        """A missing ACL is not logged and skipped: the worker stops with one line."""
        group, consumer = source()
        consumer.consume.return_value = [failure(KafkaError.TOPIC_AUTHORIZATION_FAILED)]
        with pytest.raises(KafkaClientError, match="in: cannot consume"):
            group.poll(100, 0.1)

    def test_a_missing_read_acl_is_named_with_its_resource(self) -> None:
        """A heartbeat's TOPIC_AUTHORIZATION_FAILED names no topic: the subscribed one lacks Read."""
        group, consumer = source(group="g1")
        consumer.consume.return_value = [
            Message(error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
        ]
        with pytest.raises(
            KafkaClientError,
            match=r"^cannot consume: not authorized: Read on topic in \(TOPIC_AUTHORIZATION_FAILED\)$",
        ):
            group.poll(100, 0.1)
        consumer.consume.return_value = [failure(KafkaError.GROUP_AUTHORIZATION_FAILED)]
        with pytest.raises(KafkaClientError, match=r"not authorized: Read on group g1 "):
            group.poll(100, 0.1)

    def test_other_consume_errors_are_logged_and_skipped(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A transient error is a throttled warning; the records around it are handed out."""
        group, consumer = source()
        consumer.consume.return_value = [record(0, 1), failure(KafkaError._TRANSPORT), record(0, 2)]
        with caplog.at_level(logging.WARNING):
            got = group.poll(100, 0.1)
        assert [r.offset for r in got] == [1, 2]
        assert [r.getMessage() for r in caplog.records] == ["consume error"]

    def test_partition_eof_goes_to_the_hook_when_there_is_one(self) -> None:
        """A bounded read asks for partition EOF; its source hears partition and offset."""
        heard: list[tuple[PartitionKey, int]] = []
        group, consumer = source(on_eof=lambda key, offset: heard.append((key, offset)))
        consumer.consume.return_value = [record(0, 9), failure(KafkaError._PARTITION_EOF, 0, 10)]
        assert [r.offset for r in group.poll(100, 0.1)] == [9]
        assert heard == [((TOPIC, 0), 10)]


class TestPartitions:
    def test_committed_offsets_are_read_by_key(self) -> None:
        """Negative where the group has committed nothing (librdkafka's convention)."""
        group, consumer = source()
        consumer.committed.return_value = [
            TopicPartition(TOPIC, 0, 42),
            TopicPartition(TOPIC, 1, -1001),
        ]
        assert group.committed([(TOPIC, 1), (TOPIC, 0)], 5.0) == {(TOPIC, 0): 42, (TOPIC, 1): -1001}

    def test_assign_at_takes_each_partition_from_its_offset(self) -> None:
        """What a bounded source does inside on_assign: start where it says, not where the group would."""
        group, consumer = source()
        group.assign_at({(TOPIC, 1): 5, (TOPIC, 0): 7})
        [assigned] = consumer.incremental_assign.call_args.args
        assert [(tp.topic, tp.partition, tp.offset) for tp in assigned] == [
            (TOPIC, 0, 7),
            (TOPIC, 1, 5),
        ]

    def test_a_subscription_is_never_done(self) -> None:
        """The live loop ends on a signal or --until-idle, never because its input ended."""
        group, _consumer = source()
        assert not group.done()


class TestStartCheck:
    def test_a_refused_password_is_said_after_one_try_not_after_the_metadata_wait(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The error callback that names the cause runs inside poll: the check serves it between
        one-second tries, so the first line says authentication, not "metadata not yet"."""
        group, consumer = source()
        health = group._health
        consumer.list_topics.side_effect = KafkaException(KafkaError(KafkaError._TRANSPORT))

        def serve_callbacks(_timeout: float) -> None:
            health.client_problem = "authentication failed: _AUTHENTICATION: SASL error"

        consumer.poll.side_effect = serve_callbacks
        with caplog.at_level(logging.WARNING):
            group.check_topic()
        assert consumer.list_topics.call_count == 1
        [line] = caplog.records
        assert line.getMessage() == "cannot connect to Kafka; retrying"
        assert line.cause.startswith("authentication failed")  # type: ignore[attr-defined]

    def test_a_missing_input_topic_is_a_setting_error(self) -> None:
        group, consumer = source()
        missing = SimpleNamespace(error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        consumer.list_topics.return_value = SimpleNamespace(topics={TOPIC: missing})
        with pytest.raises(ConfigError, match="input topic 'in' does not exist"):
            group.check_topic()


def fenced() -> Message:
    """What consume() hands out once librdkafka raised a fatal error: a static member's session
    expired (FENCED_INSTANCE_ID), and this consumer can never consume again."""
    return Message(error=KafkaError(KafkaError._FATAL, "Static consumer fenced", fatal=True))


class TestMembershipLost:
    def make(self) -> tuple[GroupSource, list[Any]]:
        built: list[Any] = []

        def build() -> Any:
            built.append(create_autospec(Consumer, instance=True, spec_set=True))
            return built[-1]

        clock = SimpleNamespace(now=0.0)
        member = GroupMember(build, monotonic=lambda: clock.now)
        group = GroupSource(member, TOPIC, Health(stall_timeout=60), Warnings())
        group.subscribe(lambda keys: None, lambda keys: None, lambda keys: None)
        self.clock = clock
        return group, built

    def test_a_fenced_consumer_is_replaced_and_the_new_one_subscribed_alike(self) -> None:
        """The worker keeps running: the next consumer joins under the same instance id, with the
        same rebalance callbacks; what came with the fatal error is dropped (its partitions were
        lost), and the old consumer is closed."""
        group, built = self.make()
        first = built[0]
        first.consume.return_value = [record(0, 1), fenced(), record(0, 2)]
        assert group.poll(100, 0.1) == []
        assert len(built) == 2
        first.close.assert_called_once_with()
        second = built[1]
        assert second.subscribe.call_args.args == ([TOPIC],)
        assert second.subscribe.call_args.kwargs == first.subscribe.call_args.kwargs
        second.consume.return_value = [record(3, 5)]
        assert [r.offset for r in group.poll(100, 0.1)] == [5]
        assert first.consume.call_count == 1

    def test_fenced_again_and_again_stops_the_worker(self) -> None:
        """Two live replicas with one worker id would fence each other for ever: the fourth
        fencing within five minutes stops the worker with one line instead."""
        group, built = self.make()
        for _ in range(MAX_REJOINS):
            built[-1].consume.return_value = [fenced()]
            group.poll(100, 0.1)
            self.clock.now += 10
        assert len(built) == MAX_REJOINS + 1
        built[-1].consume.return_value = [fenced()]
        with pytest.raises(KafkaClientError, match="another replica use this worker id"):
            group.poll(100, 0.1)
        self.clock.now += REJOIN_WINDOW
        group.poll(100, 0.1)  # long after: a rejoin again
        assert len(built) == MAX_REJOINS + 2


class TestClose:
    def test_it_leaves_the_group_before_closing(self) -> None:
        """A static member's close() does not leave the group (KIP-345): unsubscribe() first, so
        a stopped worker's partitions move at once instead of after the session."""
        group, consumer = source()
        group.close()
        assert [c[0] for c in consumer.method_calls] == ["unsubscribe", "close"]


class TestStartFromCommitted:
    def test_an_assigned_partition_starts_at_the_groups_committed_offset(self) -> None:
        """Never where this consumer last fetched: a partition lost and given straight back
        resumed after records the loop had dropped with the loss (72 inputs lost)."""
        group, consumer = source(from_committed=True)
        heard: list[list[PartitionKey]] = []
        group.subscribe(heard.append, lambda keys: None, lambda keys: None)
        consumer.committed.return_value = [
            TopicPartition(TOPIC, 2, 150),
            TopicPartition(TOPIC, 4, -1001),
        ]
        client_callback(consumer, "on_assign")(
            consumer, [TopicPartition(TOPIC, 2), TopicPartition(TOPIC, 4)]
        )
        (assigned,) = consumer.incremental_assign.call_args.args
        assert [(tp.partition, tp.offset) for tp in assigned] == [(2, 150), (4, -1001)]
        assert heard == [[(TOPIC, 2), (TOPIC, 4)]]

    def test_unreadable_committed_offsets_are_asked_again(self) -> None:
        group, consumer = source(from_committed=True)
        group.subscribe(lambda keys: None, lambda keys: None, lambda keys: None)
        consumer.committed.side_effect = [
            KafkaException(KafkaError(KafkaError._TIMED_OUT)),
            [TopicPartition(TOPIC, 0, 7)],
        ]
        client_callback(consumer, "on_assign")(consumer, [TopicPartition(TOPIC, 0)])
        (assigned,) = consumer.incremental_assign.call_args.args
        assert [(tp.partition, tp.offset) for tp in assigned] == [(0, 7)]

    def test_without_it_librdkafka_chooses(self) -> None:
        """A bounded replay assigns its own starts (bounded_source.py)."""
        group, consumer = source()
        group.subscribe(lambda keys: None, lambda keys: None, lambda keys: None)
        client_callback(consumer, "on_assign")(consumer, [TopicPartition(TOPIC, 0)])
        consumer.committed.assert_not_called()
        consumer.incremental_assign.assert_not_called()
