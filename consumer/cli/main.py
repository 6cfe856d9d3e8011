"""`import-closure`: the top-level parser, `main` (errors to exit codes), dispatch to the command
modules and the process's signal handlers.

Exit codes (exit_codes.py): 0 success; 1 runtime failure (broker refused output, unexpected error);
2 bad usage, bad configuration, invalid policy or invalid input lines.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from consumer import __version__, config
from consumer.cli import (
    acls,
    check,
    config_command,
    diff,
    export,
    produce_sample,
    replay,
    run,
    test_policy,
    topics,
    validate_policy,
)
from consumer.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from consumer.errors import ConfigError, ImportClosureError, PolicyError
from consumer.kafka import client_conf
from consumer.service import logs

log = logging.getLogger("consumer.cli")

#: Each command module's parser, in the order `import-closure --help` lists them.
_ADD_PARSERS = (
    check.add_parser,
    validate_policy.add_parser,
    test_policy.add_parser,
    run.add_parser,
    topics.add_parser,
    produce_sample.add_parser,
    export.add_parser,
    diff.add_parser,
    replay.add_parser,
    config_command.add_parser,
    acls.add_parser,
)


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
    for add_parser in _ADD_PARSERS:
        add_parser(sub)
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
        return check.handle(args)
    if args.command == "validate-policy":
        return validate_policy.handle(args)
    if args.command == "test-policy":
        return test_policy.handle(args)
    if args.command == "diff" and args.topic is None:
        return diff.handle(None, args)
    settings = config.load(config_file=args.config, log_level=args.log_level)
    # Every command from here on uses Kafka: name a bad client property before anything runs.
    client_conf.validate_client_conf(settings)
    logs.configure(settings.log_level, libraries=settings.log_libraries)
    if args.command == "config":
        return config_command.handle(settings)
    if args.command == "acls":
        return acls.handle(settings, args)
    if args.command == "topics":
        return topics.handle(settings, args)
    if args.command == "produce-sample":
        return produce_sample.handle(settings, args)
    if args.command == "export":
        return export.handle(settings, args)
    if args.command == "diff":
        return diff.handle(settings, args)
    if args.command == "replay":
        return replay.handle(settings, args, _stop_on_signals)
    stop, reload = threading.Event(), threading.Event()
    _install_signal_handlers(stop, reload)
    return run.handle(settings, args, stop, reload)


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
