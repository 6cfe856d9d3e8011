"""The options commands share (options.py): the value types, and --timeout of `topics create` and
`produce-sample` with the one line they print when no broker answers (exit_codes.py), run as a
subprocess. No broker needed."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

import pytest

from consumer.cli.main import build_parser
from consumer.cli.options import fraction, non_negative_int, positive_float, positive_int
from consumer.kafka.clients import BROKER_TIMEOUT
from tests.unit.cli.invoke import CLOSED, run


class TestUnreachableBroker:
    @pytest.mark.parametrize(
        "args",
        [["topics", "create"], ["produce-sample", "--count", "3"]],
        ids=["topics-create", "produce-sample"],
    )
    def test_gives_up_after_timeout_with_one_line_and_exit_1(self, args: list[str]) -> None:
        started = time.monotonic()
        result = run(*args, "--timeout", "1", env=CLOSED)
        elapsed = time.monotonic() - started
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"import-closure: {args[0]}")
        assert "no broker at 127.0.0.1:1 answered within 1s" in line
        assert result.stdout == ""
        # 1 s of waiting plus interpreter start-up; the old code waited 31 s or forever.
        assert elapsed < 10

    @pytest.mark.parametrize(
        "args", [["topics", "create"], ["produce-sample", "--count", "1"]], ids=["topics", "sample"]
    )
    def test_timeout_defaults_to_broker_timeout(self, args: list[str]) -> None:
        assert build_parser().parse_args(args).timeout == BROKER_TIMEOUT == 15

    @pytest.mark.parametrize("value", ["0", "-1", "soon"])
    def test_timeout_must_be_a_positive_number(self, value: str) -> None:
        result = run("topics", "create", "--timeout", value)
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert "--timeout" in line


class TestValueTypes:
    @pytest.mark.parametrize(
        ("convert", "text", "value"),
        [
            (non_negative_int, "0", 0),
            (non_negative_int, "42", 42),
            (positive_int, "1", 1),
            (positive_float, "0.5", 0.5),
            (fraction, "0", 0.0),
            (fraction, "1", 1.0),
        ],
        ids=["offset-0", "offset", "count", "seconds", "fraction-0", "fraction-1"],
    )
    def test_accepts_values_in_range(
        self, convert: Callable[[str], float], text: str, value: float
    ) -> None:
        assert convert(text) == value

    @pytest.mark.parametrize(
        ("convert", "text", "message"),
        [
            (non_negative_int, "-1", "must not be negative: -1"),
            (non_negative_int, "1.5", "not a whole number: '1.5'"),
            (positive_int, "0", "must be positive: 0"),
            (positive_float, "soon", "not a number: 'soon'"),
            (positive_float, "-2", "must be positive: -2"),
            (fraction, "1.01", "must be between 0 and 1: 1.01"),
        ],
        ids=["negative", "not-whole", "zero", "not-number", "negative-float", "over-one"],
    )
    def test_refuses_with_what_and_why(
        self, convert: Callable[[str], float], text: str, message: str
    ) -> None:
        """argparse shows the message after `argument --NAME:`, so it says what was wrong."""
        with pytest.raises(argparse.ArgumentTypeError, match=f"^{re.escape(message)}$"):
            convert(text)
