"""`run`, `topics create` and `produce-sample` when the port or the broker is not there, as a
subprocess: one line on stderr, the documented exit code, a bounded wait. No broker needed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from consumer.cli.main import build_parser
from consumer.kafka.clients import BROKER_TIMEOUT
from tests.unit.cli.test_main import run

#: Nothing listens on port 1 of the loopback address: every connection is refused at once.
CLOSED = {"IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other process (here: the test) is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


class TestPortInUse:
    def test_run_on_a_taken_port_stops_with_one_line_and_exit_2(self, taken_port: int) -> None:
        """A second worker on the same HTTP port: a configuration error naming host and port,
        before any Kafka client exists (the broker here is not reachable and is never tried)."""
        env = {
            **CLOSED,
            "IMPORT_CLOSURE_HTTP_HOST": "127.0.0.1",
            "IMPORT_CLOSURE_HTTP_PORT": str(taken_port),
        }
        result = run("run", env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith("import-closure: cannot serve HTTP on ")
        assert f"127.0.0.1:{taken_port}" in line
        assert "in use" in line


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
