"""produce-sample's shell: encodes generated listings (and malformed values) and produces them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.records import Headers
from consumer.core.sample import SampleSpec, generate, malformed
from consumer.errors import BrokerUnavailable, DeliveryError, KafkaClientError
from consumer.kafka import client_conf
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.clients import BROKER_TIMEOUT, QuietClientLog, broker_metadata, produce_waiting


@dataclass(frozen=True, slots=True)
class Produced:
    total: int
    bad: int
    seconds: float


def produce_samples(
    settings: Settings,
    topic: str,
    *,
    count: int,
    seed: int = 1,
    rate: float | None = None,
    bad_fraction: float = 0.0,
    spec: SampleSpec | None = None,
    timeout: float = BROKER_TIMEOUT,
) -> Produced:
    """Produce `count` messages, `bad_fraction` of them malformed; waits until all are acknowledged.

    `timeout` bounds both waits for the broker: to answer before the first message, and to
    acknowledge the last ones after it; either running out raises BrokerUnavailable.
    """
    codec = AvroCodec()
    rng = random.Random(seed ^ 0x5EED)
    # event_time follows the production schedule, so decision latency measures real waiting.
    spec = spec or SampleSpec(
        base_time_ms=int(time.time() * 1000), step_ms=1000.0 / rate if rate else 0.0
    )
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None and not failures:
            failures.append(error.str())

    conf = client_conf.plain_producer_conf(settings, on_delivery=delivered, logger=QuietClientLog())
    producer = Producer(conf)
    # Without this, messages for a broker that is not there wait in the queue until flush().
    broker_metadata(producer, conf, timeout)
    _check_authorized(producer, topic, timeout)
    started = time.monotonic()
    bad = 0
    listings = generate(seed, spec)
    for n in range(count):
        listing = next(listings)
        value = codec.encode_listing(listing)
        if bad_fraction and rng.random() < bad_fraction:
            value = malformed(rng, value)
            bad += 1
        headers: Headers = (("traceparent", f"00-{n:032x}-{seed:016x}-01".encode()),)
        produce_waiting(producer, topic, value, listing.listing_id.encode(), headers)
        producer.poll(0)
        if rate:
            _pace(started, n + 1, rate)
    unacknowledged = producer.flush(timeout)
    if unacknowledged:
        cause = f" (first error: {failures[0]})" if failures else ""
        producer.purge()  # drop them now rather than have librdkafka retry them at exit
        msg = (
            f"{topic}: {unacknowledged} of {count} messages not acknowledged within "
            f"{timeout:g}s{cause}"
        )
        raise BrokerUnavailable(msg)
    if failures:
        msg = f"{topic}: producing samples failed: {failures[0]}"
        raise DeliveryError(msg)
    return Produced(count, bad, time.monotonic() - started)


def _check_authorized(producer: Producer, topic: str, timeout: float) -> None:
    """Say now when the topic is not ours to write: producing would end in a fatal idempotence
    error (no producer id without Write on some topic) that names no topic."""
    try:
        found = producer.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException:
        return  # the broker just answered; the first produce reports what this would have
    if found is not None and found.error is not None:
        missing = kafka_errors.not_authorized(found.error, topic=topic, topic_operation="Write")
        if missing is not None:
            raise KafkaClientError(f"{topic}: cannot produce: {missing}")


def _pace(started: float, sent: int, rate: float) -> None:
    ahead = sent / rate - (time.monotonic() - started)
    if ahead > 0:
        time.sleep(ahead)
