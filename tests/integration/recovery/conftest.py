"""A second single-node broker at Kafka's DEFAULT group settings, for the recovery tests.

The session broker (tests/integration/conftest.py) shortens the KIP-848 session to 10 s, which
hides how long a dead worker holds its partitions on a real cluster; this one changes nothing
about groups or transactions. It runs on IMPORT_CLOSURE_TEST_DEFAULTS_KAFKA_PORT (default: the
session broker's port + 4; its controller one above), with a smaller heap, so both fit on a
2-core CI machine at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.conftest import ROOT, TEST_PORT, Broker

DEFAULTS_PORT = int(os.environ.get("IMPORT_CLOSURE_TEST_DEFAULTS_KAFKA_PORT", str(TEST_PORT + 4)))


@pytest.fixture(scope="session")
def default_broker() -> Iterator[Broker]:
    """kafka-local started (and wiped first) with no group or transaction setting of ours."""
    env = {
        **os.environ,
        "KAFKA_LOCAL_PORT": str(DEFAULTS_PORT),
        "KAFKA_LOCAL_CONTROLLER_PORT": str(DEFAULTS_PORT + 1),
        "KAFKA_LOCAL_DATA": str(ROOT / ".run" / f"test-kafka-defaults-{DEFAULTS_PORT}"),
        "KAFKA_LOCAL_HEAP": "-Xmx512m -Xms128m",
    }
    env.pop("KAFKA_LOCAL_EXTRA_PROPS", None)
    b = Broker(f"127.0.0.1:{DEFAULTS_PORT}", managed=True, env=env)
    b._verb("reset")
    b.start()
    try:
        yield b
    finally:
        b.stop()
