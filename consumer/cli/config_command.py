"""`import-closure config`: the effective settings as JSON, secrets redacted.

Named config_command so that it is not mistaken for the consumer.config package it prints.
"""

from __future__ import annotations

import argparse
import json

from consumer.cli.exit_codes import EXIT_OK
from consumer.cli.options import add_common
from consumer.config import Settings, settings_help


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "config",
        help="print the effective configuration, secrets redacted",
        description="Print the effective settings as JSON, secrets as ***.\n"
        "An unknown or invalid Kafka or Schema Registry property exits 2 with its name.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(parser)


def handle(settings: Settings) -> int:
    """main has loaded and checked the settings: an invalid one has already exited 2."""
    print(json.dumps(settings.redacted(), indent=2, sort_keys=True))
    return EXIT_OK
