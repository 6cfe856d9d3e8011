"""`import-closure acls`: print the kafka-acls commands that grant a principal what the
configured commands need (docs/operations.md, "Least privilege"); connects to nothing."""

from __future__ import annotations

import argparse

from consumer.cli.exit_codes import EXIT_OK
from consumer.cli.options import add_common
from consumer.config import Settings
from consumer.errors import ConfigError
from consumer.tools.acls import SERVICE_COMMANDS, commands_for, kafka_acls_lines, resolved


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "acls",
        help="print the kafka-acls commands for the ACLs the commands need",
        description="Print one kafka-acls.sh --add line per ACL that the given commands need "
        "with the current settings (group, topics, transactional id, delivery guarantee). "
        "Connects to nothing.",
    )
    add_common(parser)
    parser.add_argument(
        "--principal", default="User:import-closure", help="default: User:import-closure"
    )
    parser.add_argument(
        "--for",
        dest="commands",
        action="append",
        metavar="COMMAND",
        help="run, replay, 'replay --dry-run', export, 'diff --topic', 'topics create', "
        f"produce-sample (repeatable; default: {', '.join(SERVICE_COMMANDS)})",
    )
    parser.add_argument("--topic", help="the topic export and diff read (default: the input topic)")


def handle(settings: Settings, args: argparse.Namespace) -> int:
    try:
        commands = commands_for(settings, args.commands or SERVICE_COMMANDS)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    bootstrap = str(settings.kafka.get("bootstrap.servers", "BROKERS"))
    print(f"# {', '.join(commands)} for {args.principal}")
    for line in kafka_acls_lines(
        resolved(settings, commands, args.topic), args.principal, bootstrap
    ):
        print(line)
    return EXIT_OK
