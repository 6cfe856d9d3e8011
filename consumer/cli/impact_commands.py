"""The impact tools' subcommands: `export`, `diff` and `replay`, their options and handlers.

cli.py registers them with `add_commands` and calls a handler with the parsed arguments; the
tool modules (export.py, diff.py, replay.py) stay free of argparse, so bench and tests call them
directly.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from consumer.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    TIME_HELP,
    add_as_of,
    add_common,
    as_of_ms,
    broker_unavailable,
    non_negative_int,
    open_input,
    positive_float,
    positive_int,
    time_ms,
)
from consumer.config.settings import Settings
from consumer.core.impact import ImpactReport, Judge
from consumer.errors import BrokerUnavailable, ConfigError
from consumer.service.policy_watch import load_policy_file
from consumer.service.replay import ReplayOptions, run_replay
from consumer.tools.diff import compare, lines_input, render_json, render_text, topic_input
from consumer.tools.export import KINDS, RangeSpec, export, kind_of, open_range, reading_codec


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """export, diff and replay, in the order `import-closure --help` lists them."""
    _add_export(sub)
    _add_diff(sub)
    _add_replay(sub)


def _add_export(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "export",
        help="write a bounded range of a topic as JSON Lines",
        description="Decode a topic's records (either wire format) to JSON Lines on stdout: "
        "listings as `check` reads them, decisions as their JSON form, dead letters as key, "
        "value (base64) and headers. Stops at the end offsets seen at start (or --to, --count).",
    )
    add_common(parser)
    parser.add_argument("--topic", required=True, help="topic to read")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        help="what the topic holds (default: told by its name in the settings)",
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from", dest="from_time", metavar="TIME", help=TIME_HELP + " (start)")
    start.add_argument(
        "--from-offset", type=non_negative_int, metavar="N", help="first offset to read"
    )
    parser.add_argument("--to", dest="to_time", metavar="TIME", help=TIME_HELP + " (end)")
    parser.add_argument("--count", type=positive_int, help="stop after N records")
    parser.add_argument(
        "--partition", type=non_negative_int, metavar="P", help="read only partition P"
    )
    parser.add_argument(
        "--with-meta", action="store_true", help="add topic, partition, offset and timestamp"
    )


def _add_diff(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    _add_window(parser, "--topic", "--topic")
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


def _add_replay(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "replay",
        help="re-decide listings on the input topic with the live policy and publish",
        description="A bounded job in its own group <group_id>.replay.<RUN>: re-decides the input "
        "topic from --from to the end offsets seen at start (or --to), publishes the decisions "
        "(mode REPLAY, header ic.replay) and exits 0. Re-running a name resumes it; processes with "
        "the same name split the partitions.",
    )
    add_common(parser)
    parser.add_argument(
        "--policy", type=Path, help="live policy YAML (default: IMPORT_CLOSURE_POLICY or bundled)"
    )
    _add_window(parser, "start", "end")
    add_as_of(parser)
    parser.add_argument("--name", help="run name (default: the policy version)")
    parser.add_argument(
        "--changed-only",
        action="store_true",
        help="publish only decisions that differ from what --baseline decides",
    )
    parser.add_argument(
        "--baseline", type=Path, help="the policy to compare with (old policy YAML)"
    )
    parser.add_argument("--rate", type=positive_float, help="at most N decisions per second")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="publish nothing; print the diff report against --baseline",
    )
    parser.add_argument(
        "--http-port", type=non_negative_int, help="serve /metrics and probes on this port"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _add_window(parser: argparse.ArgumentParser, start: str, end: str) -> None:
    """--from and --to of diff and replay (export's --from excludes --from-offset)."""
    parser.add_argument("--from", dest="from_time", metavar="TIME", help=f"{TIME_HELP} ({start})")
    parser.add_argument("--to", dest="to_time", metavar="TIME", help=f"{TIME_HELP} ({end})")


def export_command(settings: Settings, args: argparse.Namespace) -> int:
    kind = kind_of(settings, args.topic, args.kind)
    spec = RangeSpec(
        args.topic,
        from_ms=time_ms("--from", args.from_time),
        from_offset=args.from_offset,
        to_ms=time_ms("--to", args.to_time),
        partition=args.partition,
        count=args.count,
    )
    try:
        reader = open_range(settings, spec)
    except BrokerUnavailable as exc:
        return broker_unavailable("export", exc)
    try:
        done = export(reader, kind, reading_codec(settings), sys.stdout, with_meta=args.with_meta)
    finally:
        reader.close()
    print(
        f"exported {done.records} records of {args.topic} ({done.undecodable} undecodable)",
        file=sys.stderr,
    )
    return EXIT_OK


def diff_command(settings: Settings | None, args: argparse.Namespace) -> int:
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
            report = _compare_range(settings, spec, judge, examples=args.examples, changes=changes)
        except BrokerUnavailable as exc:
            return broker_unavailable("diff", exc)
    if not args.changes:
        print(render_json(report) if args.format == "json" else render_text(report, judge))
    return EXIT_USAGE if report.invalid else EXIT_OK


def replay_command(
    settings: Settings, args: argparse.Namespace, stop_on_signals: Callable[[], threading.Event]
) -> int:
    """`stop_on_signals` (the cli's) installs the process's signal handlers once the run starts."""
    if args.changed_only != (args.baseline is not None) and not args.dry_run:
        raise ConfigError("--changed-only and --baseline go together")
    if args.dry_run and args.baseline is None:
        raise ConfigError("--dry-run prints the diff report against --baseline: give it")
    policy = load_policy_file(args.policy or settings.policy)
    baseline = None if args.baseline is None else load_policy_file(args.baseline)
    tz = policy.tz
    from_ms, to_ms = time_ms("--from", args.from_time, tz), time_ms("--to", args.to_time, tz)
    as_of = as_of_ms(args.as_of, policy)
    if args.dry_run:
        assert baseline is not None
        spec = RangeSpec(settings.input_topic, from_ms=from_ms, to_ms=to_ms)
        judge = Judge(baseline, policy, as_of)
        try:
            report = _compare_range(settings, spec, judge)
        except BrokerUnavailable as exc:
            return broker_unavailable("replay", exc)
        print(render_text(report, judge))
        return EXIT_OK
    options = ReplayOptions(
        name=args.name or policy.version,
        from_ms=from_ms,
        to_ms=to_ms,
        as_of_ms=as_of,
        baseline=baseline if args.changed_only else None,
        rate=args.rate,
        http_port=args.http_port,
        progress=not args.no_progress,
    )
    stop = stop_on_signals()
    try:
        result = run_replay(settings, policy, stop, options)
    except BrokerUnavailable as exc:
        return broker_unavailable("replay", exc)
    print(result.summary_text())
    return EXIT_OK


def _compare_range(
    settings: Settings,
    spec: RangeSpec,
    judge: Judge,
    *,
    examples: int = 5,
    changes: IO[str] | None = None,
) -> ImpactReport:
    """diff's compare over a topic range (diff --topic, replay --dry-run); BrokerUnavailable when
    no broker answers, for the caller's one line."""
    reader = open_range(settings, spec)
    try:
        items = topic_input(reader, reading_codec(settings))
        return compare(items, judge, sys.stderr, examples=examples, changes=changes)
    finally:
        reader.close()
