"""RangeReader and plan_range against an autospec consumer: what they need of the broker's ACLs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from consumer.errors import KafkaClientError
from consumer.kafka.range_reader import RangeReader
from consumer.kafka.ranges import Bounds, plan_range

TOPIC = "in"


def consumer() -> Any:
    return create_autospec(Consumer, instance=True, spec_set=True)


class TestRangeReader:
    def test_its_placeholder_groups_failed_coordinator_lookup_does_not_stop_it(self) -> None:
        """export/diff assign partitions and never use their group: Read on the topic is enough."""
        c = consumer()
        c.consume.return_value = [
            Message(error=KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)),
            Message(topic=TOPIC, partition=0, offset=0, value=b"a"),
            Message(topic=TOPIC, partition=0, offset=1, value=b"b"),
        ]
        c.position.return_value = [TopicPartition(TOPIC, 0, 2)]
        reader = RangeReader(c, Bounds(TOPIC, {0: (0, 2)}))
        assert [r.value for r in reader.records()] == [b"a", b"b"]

    def test_a_topic_it_may_not_read_stops_it_naming_the_acl(self) -> None:
        c = consumer()
        c.consume.return_value = [
            Message(topic=TOPIC, error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
        ]
        reader = RangeReader(c, Bounds(TOPIC, {0: (0, 2)}))
        with pytest.raises(KafkaClientError, match="cannot consume: TOPIC_AUTHORIZATION_FAILED"):
            list(reader.records())


def test_plan_range_names_the_read_acl_where_metadata_hides_the_topic() -> None:
    """Without Describe the broker does not say whether the topic exists: not 'does not exist'."""
    c = consumer()
    refused = SimpleNamespace(
        error=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), partitions={}
    )
    c.list_topics.return_value = SimpleNamespace(topics={TOPIC: refused})
    with pytest.raises(KafkaClientError, match=r"^not authorized: Read on topic in \("):
        plan_range(c, TOPIC)
