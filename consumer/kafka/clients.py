"""Builds Consumer, Producer and AdminClient from Settings, and creates our topics.

Consumer and Producer are re-exported: outside kafka/ and delivery/, client types are named
through this module, never imported from confluent_kafka.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import (
    NewTopic,  # typed there; confluent_kafka.admin re-exports it untyped
)

from consumer.config.settings import Settings
from consumer.core.records import Headers
from consumer.errors import BrokerUnavailable, ConfigError, DeliveryError, KafkaClientError
from consumer.kafka import client_conf
from consumer.kafka import error_kinds as kafka_errors

__all__ = [
    "BROKER_TIMEOUT",
    "Consumer",
    "DeliveryCallback",
    "ProduceRefused",
    "Producer",
    "QuietClientLog",
    "TopicResult",
    "broker_metadata",
    "build_consumer",
    "build_lag_consumer",
    "build_producer",
    "build_replay_consumer",
    "create_topics",
    "flush_at_exit",
    "our_topics",
    "produce_waiting",
]

log = logging.getLogger(__name__)
_Client = TypeVar("_Client", Consumer, Producer)


#: Seconds `topics create` and `produce-sample` wait for the broker unless told otherwise.
BROKER_TIMEOUT = 15.0
#: Metadata errors that mean "no broker answered", as opposed to one that answered with a refusal.
_UNREACHABLE = frozenset(
    {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN}
)


@dataclass(frozen=True, slots=True)
class TopicResult:
    topic: str
    created: bool
    detail: str


class QuietClientLog:
    """librdkafka `logger` for the tools: its lines go to DEBUG.

    Against a broker that is away librdkafka logs a connection failure every 50 ms; the tool's
    one error line says the same once. `--log-level DEBUG` shows them again.
    """

    def __init__(self) -> None:
        self._log = logging.getLogger("consumer.librdkafka")

    def log(self, level: int, msg: str, *args: object) -> None:
        self._log.debug(msg, *args, extra={"librdkafka_level": logging.getLevelName(level)})


def broker_metadata(
    client: AdminClient | Producer, conf: client_conf.ClientConf, timeout: float
) -> Any:
    """Cluster metadata (topics and their partitions), or BrokerUnavailable after `timeout` seconds."""
    try:
        return client.list_topics(timeout=timeout)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        where = conf.get("bootstrap.servers", "<no bootstrap.servers>")
        if error.code() in _UNREACHABLE:
            msg = f"no broker at {where} answered within {timeout:g}s ({error.str()})"
            raise BrokerUnavailable(msg) from exc
        msg = f"broker at {where} refused the metadata request: {error.str()}"
        raise ConfigError(msg) from exc


def our_topics(settings: Settings) -> list[str]:
    """Input, decision, dead-letter and (when set) shadow topics, without duplicates (approved and
    rejected may share)."""
    names = [
        settings.input_topic,
        settings.approved_topic,
        settings.rejected_topic,
        settings.dlq_topic,
    ]
    if settings.shadow_topic is not None:
        names.append(settings.shadow_topic)
    return list(dict.fromkeys(names))


def create_topics(
    settings: Settings,
    topics: Iterable[str] | None = None,
    *,
    partitions: int | None = None,
    replication: int | None = None,
    timeout: float = BROKER_TIMEOUT,
) -> list[TopicResult]:
    """Create the topics that do not exist; an existing one is reported, never changed.

    An existing topic whose partition count or replication differs from what was asked says so in
    its detail (Kafka can add partitions but not remove them: that is a decision for an operator).
    Waits at most `timeout` seconds in all, then raises BrokerUnavailable.
    """
    deadline = time.monotonic() + timeout
    conf = client_conf.admin_conf(settings, logger=QuietClientLog())
    admin = AdminClient(conf)
    names = list(topics) if topics is not None else our_topics(settings)
    wanted_partitions = partitions or settings.topic_partitions
    wanted_replication = replication or settings.topic_replication
    metadata = broker_metadata(admin, conf, timeout)
    results: dict[str, TopicResult] = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is not None and topic.error is None:
            results[name] = _existing(topic, wanted_partitions, wanted_replication)
    new = [
        NewTopic(name, num_partitions=wanted_partitions, replication_factor=wanted_replication)
        for name in names
        if name not in results
    ]
    if new:
        remaining = max(0.1, deadline - time.monotonic())
        futures = admin.create_topics(new, request_timeout=remaining)
        for name, future in futures.items():
            results[name] = _created(name, future, conf, deadline)
    return [results[name] for name in names]


def _existing(topic: Any, partitions: int, replication: int) -> TopicResult:
    """`topic` is confluent_kafka's TopicMetadata: partitions by id, each with its replica ids."""
    have_partitions = len(topic.partitions)
    have_replication = min((len(p.replicas) for p in topic.partitions.values()), default=0)
    differences = []
    if have_partitions != partitions:
        differences.append(f"{have_partitions} partitions (asked for {partitions})")
    if have_replication != replication:
        differences.append(f"replication {have_replication} (asked for {replication})")
    if not differences:
        return TopicResult(topic.topic, False, "already exists")
    return TopicResult(
        topic.topic, False, f"already exists with {', '.join(differences)}; not changed"
    )


def _created(name: str, future: Any, conf: client_conf.ClientConf, deadline: float) -> TopicResult:
    where = conf.get("bootstrap.servers", "<no bootstrap.servers>")
    try:
        future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError as exc:
        msg = f"creating topic {name}: no answer from the broker at {where} in time"
        raise BrokerUnavailable(msg) from exc
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:  # created by someone else meanwhile
            return TopicResult(name, False, "already exists")
        if error.code() in _UNREACHABLE:
            msg = f"creating topic {name}: no answer from the broker at {where} ({error.str()})"
            raise BrokerUnavailable(msg) from exc
        missing = kafka_errors.not_authorized(error, topic=name, topic_operation="Create")
        if missing is not None:  # the deployment's to fix, as for the worker: exit 1
            raise KafkaClientError(f"cannot create topic {name}: {missing}") from exc
        msg = f"cannot create topic {name}: {error.str()}"
        raise ConfigError(msg) from exc
    return TopicResult(name, True, "created")


def build_consumer(settings: Settings, **callbacks: object) -> Consumer:
    """The worker's consumer; `callbacks` are librdkafka callbacks such as error_cb or stats_cb."""
    return _build(Consumer, client_conf.consumer_conf(settings, **callbacks))


def build_replay_consumer(settings: Settings, **callbacks: object) -> Consumer:
    """The consumer of a replay run (config.replay_settings): the worker's, plus partition EOF."""
    return _build(Consumer, client_conf.replay_consumer_conf(settings, **callbacks))


def build_lag_consumer(settings: Settings) -> Consumer:
    """A consumer of the worker's group that only reads its offsets (the lag monitor's): never
    subscribes, so never joins; commits nothing; its own client.id; its log lines at DEBUG, since
    in a broker outage it would repeat what the worker's own clients already say."""
    conf = client_conf.plain_consumer_conf(
        settings,
        client_id=f"{settings.worker_id}-lag",
        enable_auto_commit=False,
        logger=QuietClientLog(),
    )
    return _build(Consumer, conf)


def build_producer(settings: Settings, **callbacks: object) -> Producer:
    return _build(Producer, client_conf.producer_conf(settings, **callbacks))


def _build(cls: type[_Client], conf: client_conf.ClientConf) -> _Client:
    try:
        return cls(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        msg = f"invalid Kafka client setting: {exc}"
        raise ConfigError(msg) from exc


DeliveryCallback = Callable[[KafkaError | None, Message], None]


class ProduceRefused(DeliveryError):
    """produce() refused a record at once (librdkafka knows the topic is unauthorized or
    missing, the producer is fatal, or its transaction must be aborted first); `error` says which."""

    def __init__(self, topic: str, error: KafkaError) -> None:
        super().__init__(kafka_errors.refused_output(topic, error))
        self.topic = topic
        self.error = error

    @property
    def abortable(self) -> bool:
        """The open transaction failed; aborting it lets the same records be produced again."""
        error = self.error
        return not error.fatal() and (
            error.txn_requires_abort() or error.code() == KafkaError._STATE
        )


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
    Any other refusal raises ProduceRefused, which names the topic.
    """
    # produce() takes a list or a dict of headers, not a tuple
    as_list: list[tuple[str, str | bytes | None]] = list(headers)
    while True:
        try:
            if on_delivery is None:
                producer.produce(topic, value=value, key=key, headers=as_list)
            else:
                producer.produce(
                    topic, value=value, key=key, headers=as_list, on_delivery=on_delivery
                )
            return
        except BufferError:
            producer.poll(0.1)
        except KafkaException as exc:
            raise ProduceRefused(topic, exc.args[0]) from exc


def flush_at_exit(producer: Producer, timeout: float) -> None:
    """flush() on the way out. A producer in a fatal state (e.g. its transactional id refused)
    raises instead: the error that put it there is the one being reported, not this one."""
    try:
        producer.flush(timeout)
    except KafkaException:
        log.debug("flush of a failed producer failed", exc_info=True)
