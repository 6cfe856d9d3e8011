"""`import-closure run` when its HTTP port is taken, as a subprocess: one line on stderr, exit 2,
before any Kafka client exists. No broker needed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.unit.cli.invoke import CLOSED, run


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
