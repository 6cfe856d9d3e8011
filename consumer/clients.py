"""Builds Consumer, Producer and AdminClient from Settings, and creates our topics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import (
    NewTopic,  # typed there; confluent_kafka.admin re-exports it untyped
)

from consumer import config
from consumer.config import Settings
from consumer.errors import ConfigError

log = logging.getLogger(__name__)
_Client = TypeVar("_Client", Consumer, Producer)


@dataclass(frozen=True, slots=True)
class TopicResult:
    topic: str
    created: bool
    detail: str


def our_topics(settings: Settings) -> list[str]:
    """Input, decision and dead-letter topics, without duplicates (approved and rejected may share)."""
    names = [
        settings.input_topic,
        settings.approved_topic,
        settings.rejected_topic,
        settings.dlq_topic,
    ]
    return list(dict.fromkeys(names))


def create_topics(
    settings: Settings,
    topics: Iterable[str] | None = None,
    *,
    partitions: int | None = None,
    replication: int | None = None,
    timeout: float = 30.0,
) -> list[TopicResult]:
    """Create topics with the admin API; an existing topic is reported, not an error."""
    admin = AdminClient(config.admin_conf(settings))
    names = list(topics) if topics is not None else our_topics(settings)
    new = [
        NewTopic(
            name,
            num_partitions=partitions or settings.topic_partitions,
            replication_factor=replication or settings.topic_replication,
        )
        for name in names
    ]
    results: list[TopicResult] = []
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            results.append(TopicResult(name, True, "created"))
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                results.append(TopicResult(name, False, "already exists"))
            else:
                msg = f"cannot create topic {name}: {error.str()}"
                raise ConfigError(msg) from exc
    return results


def build_consumer(settings: Settings, **callbacks: object) -> Consumer:
    """The worker's consumer; `callbacks` are librdkafka callbacks such as error_cb or stats_cb."""
    return _build(Consumer, config.consumer_conf(settings, **callbacks))


def build_producer(settings: Settings, **callbacks: object) -> Producer:
    return _build(Producer, config.producer_conf(settings, **callbacks))


def _build(cls: type[_Client], conf: config.ClientConf) -> _Client:
    try:
        return cls(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        msg = f"invalid Kafka client setting: {exc}"
        raise ConfigError(msg) from exc


Headers = list[tuple[str, str | bytes | None]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]


def produce_waiting(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    headers: Headers,
    on_delivery: DeliveryCallback | None = None,
) -> None:
    """produce(), and while the local queue is full serve delivery reports until there is room.

    confluent-kafka's examples only report BufferError; we may not drop anything, so we wait.
    """
    while True:
        try:
            if on_delivery is None:
                producer.produce(topic, value=value, key=key, headers=headers)
            else:
                producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery
                )
            return
        except BufferError:
            producer.poll(0.1)
