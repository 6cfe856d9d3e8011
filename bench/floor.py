"""The benchmark's floor: the cheapest correct copy of one topic to another.

Batch consume, produce the same value, key and headers, store each batch's offsets once all its
copies are acknowledged, nothing else per message. Same client configuration as the worker
(client_conf.consumer_conf / producer_conf, so the same owned keys and any overrides in the
environment) and the same batch size. With --naive it is instead the loop a first version would
be: poll one message, decode it with fastavro, evaluate, encode with fastavro, produce.

Prints one JSON line: events, busy seconds (first consume to last acknowledgement), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import deque
from collections.abc import Callable
from io import BytesIO

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from fastavro import schemaless_reader, schemaless_writer

from consumer import config
from consumer.codec import LISTING_CREATED, AvroCodec, BundledSchemas
from consumer.codec.records import decision_record, listing_from_record
from consumer.codec.resolution import strip_logical_types
from consumer.core.records import SourceRef, make_decision
from consumer.kafka import client_conf
from consumer.policy import bundled_policy_text, compile_policy, evaluate, load_policy

_SOURCE_REF = "id.marketplace.importclosure.v1.SourceRef"


class _Batch:
    """One consumed batch: its last offset per partition, and copies not yet acknowledged."""

    __slots__ = ("offsets", "pending")

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}
        self.pending = 0


class _Acks:
    """Acknowledged copies, counted by the delivery callbacks."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--count", type=int, required=True, help="stop after this many copies")
    parser.add_argument("--naive", action="store_true", help="poll-one-message fastavro loop")
    args = parser.parse_args()
    settings = config.load(group_id=args.group)
    consumer = Consumer(client_conf.consumer_conf(settings))
    producer = Producer(client_conf.producer_conf(settings))
    consumer.subscribe([args.input])
    run = _naive if args.naive else _copy
    try:
        first, last, acked = run(consumer, producer, args.output, args.count, settings.batch_size)
    finally:
        consumer.close()
    print(
        json.dumps(
            {
                "events": acked,
                "busy_seconds": round(last - first, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def _copy(
    consumer: Consumer, producer: Producer, output: str, count: int, batch_size: int
) -> tuple[float, float, int]:
    batches: deque[_Batch] = deque()
    acks = _Acks()
    first = last = 0.0
    produce = producer.produce
    while acks.count < count:
        messages = consumer.consume(num_messages=batch_size, timeout=0.1)
        if messages:
            first = first or time.monotonic()
            batch = _Batch()
            delivered = _acker(batch, acks)  # one closure per batch, not per message
            offsets = batch.offsets
            for m in messages:
                if m.error() is not None:
                    continue
                batch.pending += 1
                offsets[(m.topic(), m.partition())] = m.offset()  # type: ignore[index, assignment]
                while True:
                    try:
                        produce(
                            output, m.value(), m.key(), headers=m.headers(), on_delivery=delivered
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)
            batches.append(batch)
        producer.poll(0)
        stored: dict[tuple[str, int], int] = {}
        while batches and batches[0].pending == 0:
            stored.update(batches.popleft().offsets)
        if stored:
            # the next offset to read; only batches whose every copy is acknowledged, in order
            consumer.store_offsets(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in stored.items()]
            )
            last = time.monotonic()
    return first, last, acks.count


def _acker(batch: _Batch, acks: _Acks) -> Callable[[KafkaError | None, Message], None]:
    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            raise RuntimeError(error.str())
        batch.pending -= 1
        acks.count += 1

    return delivered


def _naive(
    consumer: Consumer, producer: Producer, output: str, count: int, _batch_size: int
) -> tuple[float, float, int]:
    """poll() one message at a time; fastavro decode, evaluate, make_decision, fastavro encode.

    Its offset is stored from the delivery callback (reports arrive in order per partition).
    """
    codec = AvroCodec()
    policy = compile_policy(load_policy(bundled_policy_text()))
    reader = strip_logical_types(BundledSchemas.load()[LISTING_CREATED].parsed)
    writer = codec._decision_schema
    header = codec._decision_header
    acks = _Acks()
    first = last = 0.0
    while acks.count < count:
        producer.poll(0)
        m = consumer.poll(0.1)
        if m is None or m.error() is not None:
            continue
        first = first or time.monotonic()
        stream = BytesIO(m.value())  # type: ignore[arg-type]
        stream.seek(10)
        listing = listing_from_record(schemaless_reader(stream, reader, None))  # type: ignore[arg-type]
        decision = make_decision(
            listing,
            evaluate(listing, policy),
            policy=policy.policy_id,
            policy_version=policy.version,
            decided_at_ms=int(time.time() * 1000),
            source=SourceRef(m.topic(), m.partition(), m.offset()),  # type: ignore[arg-type]
        )
        record = decision_record(decision)
        record["source"] = (_SOURCE_REF, record["source"])
        out = BytesIO()
        out.write(header)
        schemaless_writer(out, writer, record)

        def delivered(error: KafkaError | None, _message: Message, source: Message = m) -> None:
            if error is not None:
                raise RuntimeError(error.str())
            consumer.store_offsets(message=source)
            acks.count += 1

        while True:
            try:
                producer.produce(
                    output, out.getvalue(), decision.listing_id.encode(), on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.1)
        last = time.monotonic()
    return first, last, acks.count


if __name__ == "__main__":
    main()
