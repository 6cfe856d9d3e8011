"""`import-closure diff`: backtest a candidate policy against the live one (consumer/tools/diff.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from consumer.cli.exit_codes import EXIT_OK, EXIT_USAGE, broker_unavailable
from consumer.cli.options import (
    add_as_of,
    add_common,
    add_window,
    as_of_ms,
    non_negative_int,
    open_input,
    time_ms,
)
from consumer.config import Settings
from consumer.core.impact import Judge
from consumer.errors import BrokerUnavailable, ConfigError
from consumer.service.policy_watch import load_policy_file
from consumer.tools.diff import compare, compare_range, lines_input, render_json, render_text
from consumer.tools.export import RangeSpec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "diff",
        help="backtest a candidate policy: how it changes decisions",
        description="Decide every listing with the live and the candidate policy and report the "
        "decisions that change. Exit 0 when it ran, 2 on invalid input lines or an invalid policy.",
    )
    add_common(parser)
    parser.add_argument(
        "file",
        nargs="?",
        help="JSON Lines file, or - for standard input (default, without --topic)",
    )
    parser.add_argument(
        "--policy", type=Path, help="live policy YAML (default: the bundled id-akar-import-closure)"
    )
    parser.add_argument("--candidate", type=Path, required=True, help="candidate policy YAML")
    parser.add_argument("--topic", help="read listings from this topic instead of a file")
    add_window(parser, "--topic", "--topic")
    add_as_of(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    parser.add_argument(
        "--examples", type=non_negative_int, default=5, metavar="N", help="examples (default 5)"
    )
    parser.add_argument(
        "--changes",
        action="store_true",
        help="instead of a report, one JSON line per changed listing",
    )


def handle(settings: Settings | None, args: argparse.Namespace) -> int:
    """Without --topic there are no settings: a file or stdin needs no Kafka configuration."""
    live = load_policy_file(args.policy)
    candidate = load_policy_file(args.candidate)
    judge = Judge(live, candidate, as_of_ms(args.as_of, live))
    changes = sys.stdout if args.changes else None
    if settings is None:
        if args.from_time is not None or args.to_time is not None:
            raise ConfigError("--from and --to read a topic range: give --topic too")
        with open_input(args.file or "-") as stream:
            report = compare(
                lines_input(stream), judge, sys.stderr, examples=args.examples, changes=changes
            )
    else:
        if args.file is not None:
            raise ConfigError(f"give either a file ({args.file}) or --topic, not both")
        spec = RangeSpec(
            args.topic,
            from_ms=time_ms("--from", args.from_time, live.tz),
            to_ms=time_ms("--to", args.to_time, live.tz),
        )
        try:
            report = compare_range(settings, spec, judge, examples=args.examples, changes=changes)
        except BrokerUnavailable as exc:
            return broker_unavailable("diff", exc)
    if not args.changes:
        print(render_json(report) if args.format == "json" else render_text(report, judge))
    return EXIT_USAGE if report.invalid else EXIT_OK
