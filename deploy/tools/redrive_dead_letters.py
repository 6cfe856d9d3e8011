#!/usr/bin/env python3
"""Re-drive dead letters: copy records of the dead-letter topic back to the topic they came from.

Run it with the worker's virtualenv and the worker's connection settings (IMPORT_CLOSURE_* or
--config), after the cause has been fixed (docs/operations.md, "Re-driving dead letters"):

    .venv/bin/python deploy/tools/redrive_dead_letters.py --group redrive-2026-11-29 --dry-run
    .venv/bin/python deploy/tools/redrive_dead_letters.py --group redrive-2026-11-29 \\
        --error-code unknown_schema_id

Each dead letter is produced to its ic.source.topic with its original key, value and headers (the
ic.error.* / ic.source.* / ic.worker.id headers the worker added are dropped). The tool reads the
dead-letter topic to its current end as consumer group --group and commits only after every copy is
acknowledged, so a second run with the same group re-drives only newer dead letters; a crash
before the commit re-drives the same records again (the worker's decisions are idempotent by id).
Records skipped by --error-code are committed past too: use a fresh group for each fix.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from consumer import config
from consumer.core import deadletter
from consumer.kafka import client_conf

#: Headers the worker adds to a dead letter; everything else is the original record's.
ADDED_HEADERS = frozenset(
    {
        deadletter.ERROR_CODE,
        deadletter.ERROR_MESSAGE,
        deadletter.SOURCE_TOPIC,
        deadletter.SOURCE_PARTITION,
        deadletter.SOURCE_OFFSET,
        deadletter.SOURCE_TIMESTAMP,
        deadletter.WORKER_ID,
    }
)


@dataclass(frozen=True, slots=True)
class Redrive:
    """What to produce for one dead letter."""

    code: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]


Headers = Sequence[tuple[str, str | bytes | None]]


def _text(raw: str | bytes | None) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")


def plan(
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    *,
    default_topic: str,
    to_topic: str | None = None,
) -> Redrive:
    """The original record behind a dead letter, addressed to its source topic (or `to_topic`)."""
    ours = {name: _text(raw) for name, raw in headers if name in ADDED_HEADERS}
    original = [(name, raw) for name, raw in headers if name not in ADDED_HEADERS]
    code = ours.get(deadletter.ERROR_CODE) or "unknown"
    source = ours.get(deadletter.SOURCE_TOPIC)
    return Redrive(code, to_topic or source or default_topic, key, value, original)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, help="consumer group of this re-drive")
    parser.add_argument("--config", type=Path, help="worker config YAML (else IMPORT_CLOSURE_*)")
    parser.add_argument("--dlq-topic", help="dead-letter topic (default: the worker's dlq_topic)")
    parser.add_argument("--to-topic", help="produce here instead of each record's source topic")
    parser.add_argument(
        "--error-code",
        action="append",
        default=[],
        help="re-drive only this ic.error.code (repeatable); the others are skipped",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count by error code; produce and commit nothing"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to reach the end")
    return parser


@dataclass
class Tally:
    """Dead letters seen and re-driven, by error code; delivery failures."""

    seen: Counter[str] = field(default_factory=Counter)
    redriven: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def delivered(self, err: KafkaError | None, msg: Message) -> None:
        """Delivery callback: never raises, records the failure for main() to report."""
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")


def copy_to_end(
    consumer: Consumer, producer: Producer | None, args: argparse.Namespace, default_topic: str
) -> Tally:
    """Read the subscribed dead-letter topic to the end of every assigned partition, producing
    each selected record with `producer` (None: count only). TimeoutError past args.timeout."""
    tally = Tally()
    assigned: set[int] = set()
    at_end: set[int] = set()
    deadline = time.monotonic() + args.timeout
    while not assigned or at_end < assigned:
        if time.monotonic() > deadline:
            text = f"not at the end of the dead-letter topic after {args.timeout:.0f}s"
            raise TimeoutError(text)
        assigned = {tp.partition for tp in consumer.assignment()}
        for msg in consumer.consume(num_messages=500, timeout=0.5):
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(err)
                at_end.add(msg.partition() or 0)
                continue
            at_end.discard(msg.partition() or 0)
            raw = msg.headers() or []
            headers = list(raw.items()) if isinstance(raw, dict) else raw
            record = plan(msg.key(), msg.value(), headers, default_topic=default_topic,
                          to_topic=args.to_topic)  # fmt: skip
            tally.seen[record.code] += 1
            if producer is None or (args.error_code and record.code not in args.error_code):
                continue
            producer.produce(record.topic, record.value, record.key, headers=record.headers,
                             on_delivery=tally.delivered)  # fmt: skip
            producer.poll(0)
            tally.redriven[record.code] += 1
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = config.load(config_file=args.config)
    consumer = Consumer(
        client_conf.plain_consumer_conf(
            settings,
            **{
                "group.id": args.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "enable.partition.eof": True,  # tells us when each partition is read to its end
            },
        )
    )
    producer = None if args.dry_run else Producer(client_conf.producer_conf(settings))
    try:
        consumer.subscribe([args.dlq_topic or settings.dlq_topic])
        tally = copy_to_end(consumer, producer, args, settings.input_topic)
        if producer is not None:
            remaining = producer.flush(args.timeout)
            if remaining or tally.failures:
                print(f"redrive: {remaining} undelivered; {tally.failures[:5]}", file=sys.stderr)
                return 1
            if tally.seen:  # nothing read means no position to commit
                consumer.commit(asynchronous=False)  # only after every copy was acknowledged
    except (TimeoutError, KafkaException) as exc:
        print(f"redrive: {exc}", file=sys.stderr)
        return 1
    finally:
        consumer.close()
    if not tally.seen:
        print("no dead letters past this group's committed offsets")
    for code in sorted(tally.seen):
        print(f"{code}: {tally.seen[code]} dead letters, {tally.redriven[code]} re-driven")
    return 0


if __name__ == "__main__":
    sys.exit(main())
