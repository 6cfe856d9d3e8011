"""`import-closure replay`: re-decide a range of the input topic with the live policy and publish
(consumer/service/replay.py), or with --dry-run print diff's report against --baseline."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path

from consumer.cli.exit_codes import EXIT_OK, broker_unavailable
from consumer.cli.options import (
    add_as_of,
    add_common,
    add_window,
    as_of_ms,
    non_negative_int,
    positive_float,
    time_ms,
)
from consumer.config import Settings
from consumer.core.impact import Judge
from consumer.errors import BrokerUnavailable, ConfigError
from consumer.service.policy_watch import load_policy_file
from consumer.service.replay import ReplayOptions, run_replay
from consumer.tools.diff import compare_range, render_text
from consumer.tools.export import RangeSpec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    add_window(parser, "start", "end")
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


def handle(
    settings: Settings, args: argparse.Namespace, stop_on_signals: Callable[[], threading.Event]
) -> int:
    """`stop_on_signals` (main's) installs the process's signal handlers once the run starts."""
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
            report = compare_range(settings, spec, judge)
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
