"""`import-closure run`: the Kafka worker, until a signal stops it (or --until-idle)."""

from __future__ import annotations

import argparse
import dataclasses
import threading
from pathlib import Path

from consumer.cli.exit_codes import EXIT_OK
from consumer.cli.options import add_common, positive_float
from consumer.config import Settings
from consumer.service.run import run_worker


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "run",
        help="run the Kafka worker",
        description="Consume listing-created, decide, produce decisions and dead letters.",
    )
    add_common(parser)
    parser.add_argument(
        "--policy",
        type=Path,
        help="policy or policy set YAML, or bundled:NAME (default: IMPORT_CLOSURE_POLICY or bundled)",
    )
    parser.add_argument(
        "--until-idle",
        type=positive_float,
        metavar="SECONDS",
        help="exit 0 once the assignment had no new input for SECONDS and all work is committed",
    )
    parser.add_argument(
        "--create-topics", action="store_true", default=None, help="create the topics on start"
    )
    parser.add_argument(
        "--summary", action="store_true", help="print a run summary to standard output at exit"
    )
    parser.add_argument(
        "--print-metrics",
        action="store_true",
        help="print the final Prometheus exposition to standard output at exit",
    )


def handle(
    settings: Settings,
    args: argparse.Namespace,
    stop: threading.Event,
    reload: threading.Event,
) -> int:
    """`stop` and `reload` are set by the process's signal handlers (main installs them)."""
    if args.policy is not None:
        settings = dataclasses.replace(settings, policy=args.policy)
    if args.create_topics:
        settings = dataclasses.replace(settings, create_topics=True)
    result = run_worker(settings, stop, reload=reload, until_idle=args.until_idle)
    if args.summary:
        print(result.summary_text())
    if args.print_metrics:
        print(result.metrics_text, end="")
    return EXIT_OK
