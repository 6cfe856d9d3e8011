"""The options several commands share, their value types, and reading their values: the common
options, --as-of, --timeout, --from/--to, the input file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from pathlib import Path
from typing import BinaryIO, TypeVar

from consumer.errors import ConfigError
from consumer.kafka.clients import BROKER_TIMEOUT
from consumer.policy.enforced import Enforced
from consumer.policy.load import parse_as_of

T = TypeVar("T")

TIME_HELP = "now, a date (00:00 in the policy's timezone; UTC for export) or an RFC 3339 datetime with offset"


def add_common(parser: argparse.ArgumentParser) -> None:
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


def add_timeout(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=BROKER_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds to wait {what}, then exit 1 (default {BROKER_TIMEOUT:g})",
    )


def add_window(parser: argparse.ArgumentParser, start: str, end: str) -> None:
    """--from and --to of diff and replay (export's --from excludes --from-offset)."""
    parser.add_argument("--from", dest="from_time", metavar="TIME", help=f"{TIME_HELP} ({start})")
    parser.add_argument("--to", dest="to_time", metavar="TIME", help=f"{TIME_HELP} ({end})")


def _number(text: str, convert: Callable[[str], T], kind: str) -> T:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None


def non_negative_int(text: str) -> int:
    """An offset, a partition, a port, a count that may be 0."""
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def as_of_ms(text: str | None, policy: Enforced) -> int | None:
    """The --as-of time in epoch ms (None: each listing's event_time); ConfigError if unreadable."""
    return time_ms("--as-of", text, policy.tz)


def time_ms(option: str, text: str | None, tz: tzinfo = UTC) -> int | None:
    """A --from, --to or --as-of value in epoch ms (a plain date at 00:00 in `tz`); None if not given."""
    if text is None:
        return None
    try:
        return parse_as_of(text, tz, int(time.time() * 1000))
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def open_input(file: str) -> BinaryIO:
    """The named file or standard input, as bytes: each line is decoded, and refused, on its own."""
    if file == "-":
        return sys.stdin.buffer
    try:
        return Path(file).open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc
