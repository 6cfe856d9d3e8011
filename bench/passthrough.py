"""The benchmark's baseline: copy bytes from one topic to another with the worker's client settings.

Same consumer and producer configuration as the worker (config.consumer_conf / producer_conf), same
batch size, offsets stored only after delivery; no decoding, evaluation or encoding. Prints one JSON
line: events, busy seconds (first consume to last acknowledgement) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from consumer import config
from consumer.clients import produce_waiting
from consumer.events import RawRecord
from consumer.offsets import OffsetLedger
from consumer.source import raw_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument(
        "--count", type=int, required=True, help="stop after this many acknowledged copies"
    )
    args = parser.parse_args()
    settings = config.load(group_id=args.group)
    acked = 0
    last_ack = 0.0
    consumer = Consumer(config.consumer_conf(settings))
    producer = Producer(config.producer_conf(settings))
    ledger: OffsetLedger[None] = OffsetLedger()
    consumer.subscribe([args.input])
    first = 0.0
    try:
        while acked < args.count:
            messages = consumer.consume(num_messages=settings.batch_size, timeout=0.5)
            if messages and not first:
                first = time.monotonic()
            by_partition: dict[tuple[str, int], list[RawRecord]] = {}
            for m in messages:
                if m.error() is None:
                    r = raw_record(m)
                    by_partition.setdefault((r.topic, r.partition), []).append(r)
            for (topic, partition), group in by_partition.items():
                chunk = ledger.open(
                    topic, partition, group[0].offset, group[-1].offset, len(group), None
                )
                on_delivery = _callback(chunk.ack)
                for record in group:
                    produce_waiting(
                        producer,
                        args.output,
                        record.value,
                        record.key,
                        list(record.headers),
                        on_delivery,
                    )
            producer.poll(0)
            offsets, finished = ledger.pop_done()
            if finished:
                acked += sum(c.last_offset - c.first_offset + 1 for c in finished)
                last_ack = time.monotonic()
            if offsets:
                consumer.store_offsets(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()]
                )
    finally:
        consumer.close()
    print(
        json.dumps(
            {
                "events": acked,
                "busy_seconds": round(last_ack - first, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def _callback(ack: Callable[[], None]) -> Callable[[KafkaError | None, Message], None]:
    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            ack()

    return delivered


if __name__ == "__main__":
    main()
