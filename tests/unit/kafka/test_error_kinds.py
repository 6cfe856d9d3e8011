"""not_authorized: the ACL an authorization error lacks, in the words of the docs' ACL table."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from consumer.kafka.error_kinds import not_authorized, refused_output


class TestNotAuthorized:
    def test_names_operation_resource_type_and_name(self) -> None:
        error = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
        assert (
            not_authorized(error, topic="t", topic_operation="Write")
            == "not authorized: Write on topic t (TOPIC_AUTHORIZATION_FAILED)"
        )

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            (KafkaError.GROUP_AUTHORIZATION_FAILED, "Read on group g"),
            (KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "Write on transactional-id g-w1"),
            (KafkaError.TOPIC_AUTHORIZATION_FAILED, "Read on topic t"),
        ],
    )
    def test_each_resource_type_of_the_table(self, code: int, expected: str) -> None:
        found = not_authorized(KafkaError(code), topic="t", group="g", transactional_id="g-w1")
        assert found is not None
        assert found.startswith(f"not authorized: {expected} (")

    def test_no_producer_id_means_no_write_on_the_topic(self) -> None:
        """KIP-679: an idempotent producer gets its id with Write on any topic; with none, the
        broker answers CLUSTER_AUTHORIZATION_FAILED although no cluster ACL is needed."""
        error = KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED)
        assert not_authorized(error, topic="d", topic_operation="Write") == (
            "not authorized: Write on topic d (CLUSTER_AUTHORIZATION_FAILED)"
        )
        assert not_authorized(error, topic="d") is None  # a reader's cluster error is not that

    def test_other_errors_and_unknown_resources_are_none(self) -> None:
        assert not_authorized(KafkaError(KafkaError._TRANSPORT), topic="t") is None
        assert not_authorized(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED), topic="t") is None


def test_a_refused_output_names_the_write_acl() -> None:
    line = refused_output("d", KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert line.startswith("d: not authorized: Write on topic d (TOPIC_AUTHORIZATION_FAILED): ")
