"""`import-closure produce-sample`: produce seeded sample listings (and optionally malformed ones)."""

from __future__ import annotations

import argparse

from consumer.cli.exit_codes import EXIT_OK, broker_unavailable
from consumer.cli.options import add_common, add_timeout, fraction, positive_float, positive_int
from consumer.config import Settings
from consumer.errors import BrokerUnavailable
from consumer.kafka.sample_producer import produce_samples


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "produce-sample",
        help="produce realistic ListingCreated events",
        description="Produce seeded sample listings (and optionally malformed messages).",
    )
    add_common(parser)
    parser.add_argument("--count", type=positive_int, required=True, help="number of messages")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--rate", type=positive_float, help="messages per second (default: as fast as possible)"
    )
    parser.add_argument(
        "--bad-fraction", type=fraction, default=0.0, help="share of malformed messages, 0..1"
    )
    parser.add_argument("--topic", help="target topic (default: the input topic)")
    add_timeout(parser, "for the broker to answer at the start and to acknowledge at the end")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    topic = args.topic or settings.input_topic
    try:
        produced = produce_samples(
            settings,
            topic,
            count=args.count,
            seed=args.seed,
            rate=args.rate,
            bad_fraction=args.bad_fraction,
            timeout=args.timeout,
        )
    except BrokerUnavailable as exc:
        return broker_unavailable("produce-sample", exc)
    print(
        f"produced {produced.total} messages to {topic} ({produced.bad} malformed) "
        f"in {produced.seconds:.1f}s"
    )
    return EXIT_OK
