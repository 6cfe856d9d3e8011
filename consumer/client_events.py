"""librdkafka's client-level callbacks: errors, statistics and commit results."""

from __future__ import annotations

import json
import logging

from confluent_kafka import KafkaError, TopicPartition

from consumer.errors import DeliveryError
from consumer.health import Health
from consumer.metrics import Metrics

log = logging.getLogger(__name__)


class ClientEvents:
    """librdkafka's client-level callbacks. Built before the clients, handed to them and to the Worker.

    Callbacks never raise: a fatal error is recorded in `fatal` and the loop raises it.
    """

    def __init__(self, metrics: Metrics, health: Health) -> None:
        self._metrics = metrics
        self._health = health
        self.fatal: BaseException | None = None

    def on_error(self, error: KafkaError) -> None:
        """Most client errors are transient (librdkafka reconnects); fatal ones stop the loop."""
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._health.broker_up = False
        if error.fatal() and self.fatal is None:
            self.fatal = DeliveryError(f"fatal Kafka client error: {error.str()}")
        log.warning("kafka client error", extra={"code": error.name(), "detail": error.str()})

    def on_stats(self, stats_json: str) -> None:
        """librdkafka statistics: readiness follows whether any broker connection is UP."""
        brokers = json.loads(stats_json).get("brokers", {}).values()
        self._health.broker_up = any(
            b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers
        )

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None or error.code() == KafkaError._NO_OFFSET:
            return
        self._metrics.commit_failures.inc()
        log.warning(
            "offset commit failed",
            extra={"detail": error.str(), "partitions": partition_names(partitions)},
        )


def partition_names(partitions: list[TopicPartition]) -> list[str]:
    """`topic[partition]` labels for log fields."""
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
