"""The client boundary: Messages become RawRecords, TopicPartitions become PartitionKeys and back."""

from __future__ import annotations

from confluent_kafka import TIMESTAMP_CREATE_TIME, Message, TopicPartition

from consumer.core.records import RawRecord
from consumer.kafka.messages import partition_keys, partition_names, raw_record, topic_partitions


class TestRawRecord:
    def test_every_field_is_copied_and_headers_become_a_tuple(self) -> None:
        """The core gets an immutable copy, with headers in the one Headers shape."""
        message = Message(
            topic="in",
            partition=3,
            offset=42,
            key=b"k",
            value=b"v",
            headers=[("traceparent", b"00-1-2-01"), ("empty", None)],
            timestamp=(TIMESTAMP_CREATE_TIME, 1_700_000_000_000),
        )
        assert raw_record(message) == RawRecord(
            "in",
            3,
            42,
            1_700_000_000_000,
            b"k",
            b"v",
            (("traceparent", b"00-1-2-01"), ("empty", None)),
        )

    def test_a_message_without_timestamp_or_headers(self) -> None:
        """librdkafka's TIMESTAMP_NOT_AVAILABLE becomes None; no headers, an empty tuple."""
        record = raw_record(Message(topic="in", partition=0, offset=1, value=b"v"))
        assert (record.timestamp_ms, record.headers) == (None, ())


class TestPartitions:
    def test_keys_keep_the_clients_order(self) -> None:
        """Rebalance callbacks hear partitions as librdkafka listed them (the log lines keep that order)."""
        partitions = [TopicPartition("in", 2), TopicPartition("in", 0)]
        assert partition_keys(partitions) == [("in", 2), ("in", 0)]

    def test_topic_partitions_are_sorted(self) -> None:
        """Sorted, so calls to the client are the same whatever order a set iterates in."""
        tps = topic_partitions({("in", 2), ("in", 0)})
        assert [(tp.topic, tp.partition) for tp in tps] == [("in", 0), ("in", 2)]

    def test_names_for_log_fields(self) -> None:
        """Partitions go into log fields as `topic[partition]`."""
        assert partition_names([("in", 2), ("out", 0)]) == ["in[2]", "out[0]"]
