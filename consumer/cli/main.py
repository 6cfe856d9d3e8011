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
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from consumer import __version__, config
from consumer.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    add_as_of,
    add_common,
    add_timeout,
    as_of_ms,
    broker_unavailable,
    fraction,
    open_input,
    positive_float,
    positive_int,
)
from consumer.cli.impact_commands import add_commands, diff_command, export_command, replay_command
from consumer.codec.jsonform import decision_to_json, read_listings
from consumer.core.records import LIVE, Provenance, make_decision
from consumer.errors import (
    BrokerUnavailable,
    ConfigError,
    DecodeError,
    ImportClosureError,
    PolicyError,
)
from consumer.kafka import client_conf
from consumer.kafka.clients import create_topics
from consumer.kafka.sample_producer import produce_samples
from consumer.policy import evaluate, explain, summarize
from consumer.policy.load import policy_warnings
from consumer.service import logs
from consumer.service.assembly import run_worker
from consumer.service.policy_watch import load_policy_file

log = logging.getLogger("consumer.cli")


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
    add_common(run)
    run.add_argument(
        "--policy", type=Path, help="policy YAML (default: IMPORT_CLOSURE_POLICY or bundled)"
    )
    run.add_argument(
        "--until-idle",
        type=positive_float,
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
    add_common(create)
    create.add_argument("--partitions", type=positive_int, help="partitions per topic (default 6)")
    create.add_argument("--replication", type=positive_int, help="replication factor (default 1)")
    add_timeout(create, "for the broker to answer and to create the topics")

    sample = sub.add_parser(
        "produce-sample",
        help="produce realistic ListingCreated events",
        description="Produce seeded sample listings (and optionally malformed messages).",
    )
    add_common(sample)
    sample.add_argument("--count", type=positive_int, required=True, help="number of messages")
    sample.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sample.add_argument(
        "--rate", type=positive_float, help="messages per second (default: as fast as possible)"
    )
    sample.add_argument(
        "--bad-fraction", type=fraction, default=0.0, help="share of malformed messages, 0..1"
    )
    sample.add_argument("--topic", help="target topic (default: the input topic)")
    add_timeout(sample, "for the broker to answer at the start and to acknowledge at the end")

    add_commands(sub)  # export, diff, replay: consumer/tools/commands.py

    show = sub.add_parser(
        "config",
        help="print the effective configuration, secrets redacted",
        description="Print the effective settings as JSON, secrets as ***.\n"
        "An unknown or invalid Kafka or Schema Registry property exits 2 with its name.",
        epilog=config.settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(show)
    return parser


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
        return diff_command(None, args)
    settings = config.load(config_file=args.config, log_level=args.log_level)
    # Every command from here on uses Kafka: name a bad client property before anything runs.
    client_conf.validate_client_conf(settings)
    logs.configure(settings.log_level, libraries=settings.log_libraries)
    if args.command == "config":
        print(json.dumps(settings.redacted(), indent=2, sort_keys=True))
        return EXIT_OK
    if args.command == "topics":
        return _topics_create(settings, args)
    if args.command == "produce-sample":
        return _produce_sample(settings, args)
    if args.command == "export":
        return export_command(settings, args)
    if args.command == "diff":
        return diff_command(settings, args)
    if args.command == "replay":
        return replay_command(settings, args, _stop_on_signals)
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
        return broker_unavailable("topics create", exc)
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
        return broker_unavailable("produce-sample", exc)
    print(
        f"produced {produced.total} messages to {topic} ({produced.bad} malformed) "
        f"in {produced.seconds:.1f}s"
    )
    return EXIT_OK


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


def _stop_on_signals() -> threading.Event:
    """For replay: a stop event the signals set (its policy is fixed for the run, so SIGHUP
    changes nothing)."""
    stop = threading.Event()
    _install_signal_handlers(stop, threading.Event())
    return stop


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
