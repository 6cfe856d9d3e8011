"""`import-closure topics create`: create the input, decision and dead-letter topics."""

from __future__ import annotations

import argparse

from consumer.cli.exit_codes import EXIT_OK, broker_unavailable
from consumer.cli.options import add_common, add_timeout, positive_int
from consumer.config import Settings
from consumer.errors import BrokerUnavailable
from consumer.kafka.clients import create_topics


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    topics = sub.add_parser("topics", help="manage the service's topics")
    # type(topics) is main's parser class, so `topics create` errors read like every command's.
    actions = topics.add_subparsers(
        dest="topics_command", required=True, metavar="ACTION", parser_class=type(topics)
    )
    create = actions.add_parser("create", help="create input, decision and dead-letter topics")
    add_common(create)
    create.add_argument("--partitions", type=positive_int, help="partitions per topic (default 6)")
    create.add_argument("--replication", type=positive_int, help="replication factor (default 1)")
    add_timeout(create, "for the broker to answer and to create the topics")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 also when a topic exists with other partitions or replication: it says so, unchanged."""
    try:
        results = create_topics(
            settings, partitions=args.partitions, replication=args.replication, timeout=args.timeout
        )
    except BrokerUnavailable as exc:
        return broker_unavailable("topics create", exc)
    for result in results:
        print(f"{result.topic}: {result.detail}")
    return EXIT_OK
