"""`import-closure` command line: builds the objects, calls them, maps errors to exit codes.

Exit codes: 0 success; 1 runtime failure (broker refused output, unexpected error);
2 bad usage, bad configuration, invalid policy or invalid input lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, tzinfo
from pathlib import Path
from types import FrameType
from typing import BinaryIO, TypeVar

from consumer import __version__, config, logs
from consumer.clients import BROKER_TIMEOUT, create_topics
from consumer.codec.jsonform import decision_to_json, read_listings
from consumer.errors import (
    BrokerUnavailable,
    ConfigError,
    DecodeError,
    ImportClosureError,
    PolicyError,
)
from consumer.events import LIVE, Provenance, make_decision
from consumer.impact import Judge
from consumer.policy import (
    CompiledPolicy,
    evaluate,
    explain,
    summarize,
)
from consumer.policy.load import parse_as_of, policy_warnings
from consumer.policy_source import load_policy_file
from consumer.producing import produce_samples
from consumer.runner import run_worker
from consumer.tools.diff import compare, lines_input, render_json, render_text, topic_input
from consumer.tools.export import KINDS, RangeSpec, export, kind_of, open_range, reading_codec
from consumer.tools.replay import ReplayOptions, run_replay

log = logging.getLogger("consumer.cli")
T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One clear line and exit 2, with a pointer to --help, never a traceback."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="import-closure",
        description="Enforce an import-closure policy on marketplace listings (Kafka consumer and tools).",
        epilog="Configuration: defaults < YAML file (--config or IMPORT_CLOSURE_CONFIG) < "
        "IMPORT_CLOSURE_* environment < options. Any librdkafka property: IMPORT_CLOSURE_KAFKA_<NAME> "
        "(e.g. IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS). Run `import-closure config` to see the result.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    check = sub.add_parser(
        "check",
        help="decide JSON Lines listings with a policy, without Kafka",
        description="Read ListingCreated events as JSON Lines and print one decision per line.",
    )
    check.add_argument(
        "file", nargs="?", default="-", help="JSON Lines file, or - for standard input (default)"
    )
    check.add_argument(
        "--policy", type=Path, help="policy YAML (default: the bundled id-akar-import-closure)"
    )
    check.add_argument(
        "--explain", action="store_true", help="print a readable account per listing instead"
    )
    add_as_of(check)

    validate = sub.add_parser(
        "validate-policy",
        help="check a policy file and summarise it",
        description="Exit 0 with a summary, or 2 with every validation error.",
    )
    validate.add_argument("file", type=Path, help="policy YAML file")

    run = sub.add_parser(
        "run",
        help="run the Kafka worker",
        description="Consume listing-created, decide, produce decisions and dead letters.",
    )
    _add_common(run)
    run.add_argument(
        "--policy", type=Path, help="policy YAML (default: IMPORT_CLOSURE_POLICY or bundled)"
    )
    run.add_argument(
        "--until-idle",
        type=_positive_float,
        metavar="SECONDS",
        help="exit 0 once the assignment had no new input for SECONDS and all work is committed",
    )
    run.add_argument(
        "--create-topics", action="store_true", default=None, help="create the topics on start"
    )
    run.add_argument(
        "--summary", action="store_true", help="print a run summary to standard output at exit"
    )
    run.add_argument(
        "--print-metrics",
        action="store_true",
        help="print the final Prometheus exposition to standard output at exit",
    )

    topics = sub.add_parser("topics", help="manage the service's topics")
    topics_sub = topics.add_subparsers(
        dest="topics_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    create = topics_sub.add_parser("create", help="create input, decision and dead-letter topics")
    _add_common(create)
    create.add_argument("--partitions", type=_positive_int, help="partitions per topic (default 6)")
    create.add_argument("--replication", type=_positive_int, help="replication factor (default 1)")
    _add_timeout(create, "for the broker to answer and to create the topics")

    sample = sub.add_parser(
        "produce-sample",
        help="produce realistic ListingCreated events",
        description="Produce seeded sample listings (and optionally malformed messages).",
    )
    _add_common(sample)
    sample.add_argument("--count", type=_positive_int, required=True, help="number of messages")
    sample.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sample.add_argument(
        "--rate", type=_positive_float, help="messages per second (default: as fast as possible)"
    )
    sample.add_argument(
        "--bad-fraction", type=_fraction, default=0.0, help="share of malformed messages, 0..1"
    )
    sample.add_argument("--topic", help="target topic (default: the input topic)")
    _add_timeout(sample, "for the broker to answer at the start and to acknowledge at the end")

    _add_impact_commands(sub)

    show = sub.add_parser(
        "config",
        help="print the effective configuration, secrets redacted",
        description="Print the effective settings as JSON, secrets as ***.\n"
        "An unknown or invalid Kafka or Schema Registry property exits 2 with its name.",
        epilog=config.settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(show)
    return parser


def _add_impact_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = sub.add_parser(
        "export",
        help="write a bounded range of a topic as JSON Lines",
        description="Decode a topic's records (either wire format) to JSON Lines on stdout: "
        "listings as `check` reads them, decisions as their JSON form, dead letters as key, "
        "value (base64) and headers. Stops at the end offsets seen at start (or --to, --count).",
    )
    _add_common(export)
    export.add_argument("--topic", required=True, help="topic to read")
    export.add_argument(
        "--kind",
        choices=KINDS,
        help="what the topic holds (default: told by its name in the settings)",
    )
    start = export.add_mutually_exclusive_group()
    start.add_argument("--from", dest="from_time", metavar="TIME", help=_TIME_HELP + " (start)")
    start.add_argument("--from-offset", type=_offset, metavar="N", help="first offset to read")
    export.add_argument("--to", dest="to_time", metavar="TIME", help=_TIME_HELP + " (end)")
    export.add_argument("--count", type=_positive_int, help="stop after N records")
    export.add_argument("--partition", type=_offset, metavar="P", help="read only partition P")
    export.add_argument(
        "--with-meta", action="store_true", help="add topic, partition, offset and timestamp"
    )

    diff = sub.add_parser(
        "diff",
        help="backtest a candidate policy: how it changes decisions",
        description="Decide every listing with the live and the candidate policy and report the "
        "decisions that change. Exit 0 when it ran, 2 on invalid input lines or an invalid policy.",
    )
    _add_common(diff)
    diff.add_argument(
        "file",
        nargs="?",
        help="JSON Lines file, or - for standard input (default, without --topic)",
    )
    diff.add_argument(
        "--policy", type=Path, help="live policy YAML (default: the bundled id-akar-import-closure)"
    )
    diff.add_argument("--candidate", type=Path, required=True, help="candidate policy YAML")
    diff.add_argument("--topic", help="read listings from this topic instead of a file")
    diff.add_argument("--from", dest="from_time", metavar="TIME", help=_TIME_HELP + " (--topic)")
    diff.add_argument("--to", dest="to_time", metavar="TIME", help=_TIME_HELP + " (--topic)")
    add_as_of(diff)
    diff.add_argument("--format", choices=("text", "json"), default="text", help="report format")
    diff.add_argument(
        "--examples", type=_non_negative_int, default=5, metavar="N", help="examples (default 5)"
    )
    diff.add_argument(
        "--changes",
        action="store_true",
        help="instead of a report, one JSON line per changed listing",
    )

    replay = sub.add_parser(
        "replay",
        help="re-decide listings on the input topic with the live policy and publish",
        description="A bounded job in its own group <group_id>.replay.<RUN>: re-decides the input "
        "topic from --from to the end offsets seen at start (or --to), publishes the decisions "
        "(mode REPLAY, header ic.replay) and exits 0. Re-running a name resumes it; processes with "
        "the same name split the partitions.",
    )
    _add_common(replay)
    replay.add_argument(
        "--policy", type=Path, help="live policy YAML (default: IMPORT_CLOSURE_POLICY or bundled)"
    )
    replay.add_argument("--from", dest="from_time", metavar="TIME", help=_TIME_HELP + " (start)")
    replay.add_argument("--to", dest="to_time", metavar="TIME", help=_TIME_HELP + " (end)")
    add_as_of(replay)
    replay.add_argument("--name", help="run name (default: the policy version)")
    replay.add_argument(
        "--changed-only",
        action="store_true",
        help="publish only decisions that differ from what --baseline decides",
    )
    replay.add_argument(
        "--baseline", type=Path, help="the policy to compare with (old policy YAML)"
    )
    replay.add_argument("--rate", type=_positive_float, help="at most N decisions per second")
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="publish nothing; print the diff report against --baseline",
    )
    replay.add_argument("--http-port", type=_offset, help="serve /metrics and probes on this port")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


_TIME_HELP = "now, a date (00:00 in the policy's timezone; UTC for export) or an RFC 3339 datetime with offset"


def _offset(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _non_negative_int(text: str) -> int:
    return _offset(text)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="YAML config file (default: IMPORT_CLOSURE_CONFIG)"
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")


def add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        metavar="TIME",
        help="check rule windows against TIME instead of each listing's event_time: now, a date "
        "(00:00 in the policy's timezone) or an RFC 3339 datetime with offset",
    )


def as_of_ms(text: str | None, policy: CompiledPolicy) -> int | None:
    """The --as-of time in epoch ms (None: each listing's event_time); ConfigError if unreadable."""
    if text is None:
        return None
    try:
        return parse_as_of(text, policy.tz, int(time.time() * 1000))
    except ValueError as exc:
        raise ConfigError(f"--as-of: {exc}") from None


def _add_timeout(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=BROKER_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds to wait {what}, then exit 1 (default {BROKER_TIMEOUT:g})",
    )


def _number(text: str, convert: Callable[[str], T], kind: str) -> T:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"import-closure: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportClosureError as exc:
        log.error("stopped", extra={"error": str(exc), "code": exc.code})
        print(f"import-closure: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the last boundary: log with traceback, exit non-zero, no crash dump
        log.exception("unexpected error")
        print(f"import-closure: unexpected error: {exc!r}", file=sys.stderr)
        return EXIT_FAILURE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        return _check(args)
    if args.command == "validate-policy":
        return _validate(args)
    if args.command == "diff" and args.topic is None:
        return _diff(None, args)
    settings = config.load(config_file=args.config, log_level=args.log_level)
    # Every command from here on uses Kafka: name a bad client property before anything runs.
    config.validate_client_conf(settings)
    logs.configure(settings.log_level, libraries=settings.log_libraries)
    if args.command == "config":
        print(json.dumps(settings.redacted(), indent=2, sort_keys=True))
        return EXIT_OK
    if args.command == "topics":
        return _topics_create(settings, args)
    if args.command == "produce-sample":
        return _produce_sample(settings, args)
    if args.command == "export":
        return _export(settings, args)
    if args.command == "diff":
        return _diff(settings, args)
    if args.command == "replay":
        return _replay(settings, args)
    return _run(settings, args)


def _check(args: argparse.Namespace) -> int:
    policy = load_policy_file(args.policy)
    stream = open_input(args.file)
    invalid = 0
    now_ms = int(time.time() * 1000)
    as_of = as_of_ms(args.as_of, policy)
    provenance = LIVE if as_of is None else Provenance(as_of_ms=as_of)
    with stream:
        for number, listing in read_listings(stream):
            if isinstance(listing, DecodeError):
                print(f"line {number}: {listing.message}", file=sys.stderr)
                invalid += 1
                continue
            if args.explain:
                print(explain(listing, policy, as_of))
                print()
                continue
            decision = make_decision(
                listing,
                evaluate(listing, policy, as_of),
                policy=policy.policy_id,
                policy_version=policy.version,
                decided_at_ms=now_ms,
                source=None,
                provenance=provenance,
            )
            print(json.dumps(decision_to_json(decision), ensure_ascii=False))
    return EXIT_USAGE if invalid else EXIT_OK


def open_input(file: str) -> BinaryIO:
    """The named file or standard input, as bytes: each line is decoded, and refused, on its own."""
    if file == "-":
        return sys.stdin.buffer
    try:
        return Path(file).open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _time(option: str, text: str | None, tz: tzinfo = UTC) -> int | None:
    if text is None:
        return None
    try:
        return parse_as_of(text, tz, int(time.time() * 1000))
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _export(settings: config.Settings, args: argparse.Namespace) -> int:
    kind = kind_of(settings, args.topic, args.kind)
    spec = RangeSpec(
        args.topic,
        from_ms=_time("--from", args.from_time),
        from_offset=args.from_offset,
        to_ms=_time("--to", args.to_time),
        partition=args.partition,
        count=args.count,
    )
    try:
        reader = open_range(settings, spec)
    except BrokerUnavailable as exc:
        return _broker_unavailable("export", exc)
    try:
        done = export(reader, kind, reading_codec(settings), sys.stdout, with_meta=args.with_meta)
    finally:
        reader.close()
    print(
        f"exported {done.records} records of {args.topic} ({done.undecodable} undecodable)",
        file=sys.stderr,
    )
    return EXIT_OK


def _diff(settings: config.Settings | None, args: argparse.Namespace) -> int:
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
            from_ms=_time("--from", args.from_time, live.tz),
            to_ms=_time("--to", args.to_time, live.tz),
        )
        try:
            reader = open_range(settings, spec)
        except BrokerUnavailable as exc:
            return _broker_unavailable("diff", exc)
        try:
            items = topic_input(reader, reading_codec(settings))
            report = compare(items, judge, sys.stderr, examples=args.examples, changes=changes)
        finally:
            reader.close()
    if not args.changes:
        print(render_json(report) if args.format == "json" else render_text(report, judge))
    return EXIT_USAGE if report.invalid else EXIT_OK


def _replay(settings: config.Settings, args: argparse.Namespace) -> int:
    if args.changed_only != (args.baseline is not None) and not args.dry_run:
        raise ConfigError("--changed-only and --baseline go together")
    if args.dry_run and args.baseline is None:
        raise ConfigError("--dry-run prints the diff report against --baseline: give it")
    policy = load_policy_file(args.policy or settings.policy)
    baseline = None if args.baseline is None else load_policy_file(args.baseline)
    tz = policy.tz
    from_ms, to_ms = _time("--from", args.from_time, tz), _time("--to", args.to_time, tz)
    as_of = as_of_ms(args.as_of, policy)
    if args.dry_run:
        assert baseline is not None
        spec = RangeSpec(settings.input_topic, from_ms=from_ms, to_ms=to_ms)
        try:
            reader = open_range(settings, spec)
        except BrokerUnavailable as exc:
            return _broker_unavailable("replay", exc)
        judge = Judge(baseline, policy, as_of)
        try:
            report = compare(topic_input(reader, reading_codec(settings)), judge, sys.stderr)
        finally:
            reader.close()
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
    stop = threading.Event()
    _install_signal_handlers(stop, threading.Event())  # a replay's policy is fixed for the run
    try:
        result = run_replay(settings, policy, stop, options)
    except BrokerUnavailable as exc:
        return _broker_unavailable("replay", exc)
    print(result.summary_text())
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    policy = load_policy_file(args.file)
    print(summarize(policy))
    for warning in policy_warnings(policy.model):  # valid, so exit 0, but worth a second look
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _topics_create(settings: config.Settings, args: argparse.Namespace) -> int:
    """Exit 0 also when a topic exists with other partitions or replication: it says so, unchanged."""
    try:
        results = create_topics(
            settings, partitions=args.partitions, replication=args.replication, timeout=args.timeout
        )
    except BrokerUnavailable as exc:
        return _broker_unavailable("topics create", exc)
    for result in results:
        print(f"{result.topic}: {result.detail}")
    return EXIT_OK


def _produce_sample(settings: config.Settings, args: argparse.Namespace) -> int:
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
        return _broker_unavailable("produce-sample", exc)
    print(
        f"produced {produced.total} messages to {topic} ({produced.bad} malformed) "
        f"in {produced.seconds:.1f}s"
    )
    return EXIT_OK


def _broker_unavailable(command: str, exc: BrokerUnavailable) -> int:
    """One line, exit 1: the broker's absence is the whole story, so no log record or traceback."""
    print(f"import-closure: {command}: {exc}", file=sys.stderr)
    return EXIT_FAILURE


def _run(settings: config.Settings, args: argparse.Namespace) -> int:
    if args.policy is not None:
        settings = dataclasses.replace(settings, policy=args.policy)
    if args.create_topics:
        settings = dataclasses.replace(settings, create_topics=True)
    stop, reload = threading.Event(), threading.Event()
    _install_signal_handlers(stop, reload)
    result = run_worker(settings, stop, reload=reload, until_idle=args.until_idle)
    if args.summary:
        print(result.summary_text())
    if args.print_metrics:
        print(result.metrics_text, end="")
    return EXIT_OK


def _install_signal_handlers(stop: threading.Event, reload: threading.Event) -> None:
    """SIGTERM/SIGINT ask the loop to stop; a second one exits at once. SIGHUP: re-read the policies."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(EXIT_FAILURE)
        log.info("signal received, stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        log.info("signal received, checking the policy files", extra={"signal": "SIGHUP"})
        reload.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, hangup)
