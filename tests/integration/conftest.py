"""The session broker: deploy/kafka-local started once on test ports, or IMPORT_CLOSURE_TEST_BOOTSTRAP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from consumer import config
from consumer.config.settings import Settings
from consumer.kafka.client_conf import ClientConf, plain_consumer_conf
from consumer.kafka.clients import create_topics
from tests.integration.registry_server import RealRegistry, session_registry
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka-local"
#: The session broker's port; the other test brokers and the registry are placed from it. Below
#: Linux's ephemeral range (32768-60999): a broker stopped and started again by a test could not
#: listen while a client connection held its port as a source port (seen in CI on 39096).
TEST_PORT = int(os.environ.get("IMPORT_CLOSURE_TEST_KAFKA_PORT", "29092"))


@dataclass
class Broker:
    """The test broker; `stop()`/`start()` exist only when the session started it itself."""

    bootstrap: str
    managed: bool
    env: dict[str, str] = field(default_factory=dict)

    def _verb(self, verb: str, *args: str) -> None:
        result = subprocess.run(
            [str(KAFKA_LOCAL), verb, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            command = " ".join((verb, *args))
            raise RuntimeError(f"kafka-local {command} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self._verb("start")

    def stop(self) -> None:
        self._verb("stop")

    @property
    def server_log(self) -> Path:
        """The broker's own log (`logs/server.log` in its data folder); managed brokers only."""
        return Path(self.env["KAFKA_LOCAL_DATA"]) / "logs" / "server.log"


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    external = os.environ.get("IMPORT_CLOSURE_TEST_BOOTSTRAP")
    if external:
        yield Broker(external, managed=False)
        return
    env = {
        **os.environ,
        "KAFKA_LOCAL_PORT": str(TEST_PORT),
        "KAFKA_LOCAL_CONTROLLER_PORT": str(TEST_PORT + 1),
        "KAFKA_LOCAL_DATA": str(ROOT / ".run" / f"test-kafka-{TEST_PORT}"),
        # No group settings: the worker's classic-protocol session is its own (6 s), so a
        # SIGKILLed member is noticed as quickly here as on a broker at its defaults
        # (tests/integration/recovery checks the latter).
    }
    b = Broker(f"127.0.0.1:{TEST_PORT}", managed=True, env=env)
    b._verb("reset")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@dataclass(frozen=True)
class Topics:
    """Fresh, uuid-named topics and group for one test."""

    settings: Settings

    @property
    def env(self) -> dict[str, str]:
        """Environment that points a worker subprocess at these topics and this broker."""
        s = self.settings
        return {
            "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": s.kafka["bootstrap.servers"],
            "IMPORT_CLOSURE_GROUP_ID": s.group_id,
            "IMPORT_CLOSURE_INPUT_TOPIC": s.input_topic,
            "IMPORT_CLOSURE_APPROVED_TOPIC": s.approved_topic,
            "IMPORT_CLOSURE_REJECTED_TOPIC": s.rejected_topic,
            "IMPORT_CLOSURE_DLQ_TOPIC": s.dlq_topic,
        }

    def client_conf(self, **overrides: object) -> ClientConf:
        return plain_consumer_conf(
            self.settings, group_id=f"probe-{uuid.uuid4().hex[:8]}", **overrides
        )


def make_topics(broker: Broker, partitions: int = 3) -> Topics:
    settings = topic_settings(broker, partitions)
    create_topics(settings)
    return Topics(settings)


def topic_settings(broker: Broker, partitions: int = 3) -> Settings:
    """Settings naming fresh uuid topics and group on `broker`; nothing is created."""
    tag = uuid.uuid4().hex[:10]
    return replace(
        config.load(env={"IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}),
        group_id=f"ic-test-{tag}",
        input_topic=f"listing-created-{tag}",
        approved_topic=f"listing-decisions-{tag}",
        rejected_topic=f"listing-decisions-{tag}",
        dlq_topic=f"listing-created-{tag}.dlq",
        topic_partitions=partitions,
    )


@pytest.fixture
def topics(broker: Broker) -> Topics:
    return make_topics(broker)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    http_port: int
    log_path: Path
    #: What the process printed on stdout (its summary), once `finish` has returned.
    output: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, object]]:
        """Every stderr line of the worker, each of which must be a JSON object."""
        parsed = []
        for line in self.logs().splitlines():
            if not line.strip():
                continue
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
        return parsed

    def finish(self, seconds: float = 90, *, terminate: bool = False) -> int:
        """Wait for the exit code (after SIGTERM if `terminate`); kill and fail on timeout.

        A worker started a moment ago (restarted after it fell) gets its SIGTERM only once it
        logged its first line: before, its signal handlers are not installed yet, and SIGTERM
        would end the process with -15 instead of the worker's own exit code (seen in CI)."""
        if terminate and self.process.poll() is None:
            wait_until(
                lambda: self.process.poll() is not None or self.log_path.stat().st_size > 0,
                30,
                "the worker's first log line",
                interval=0.1,
            )
        if terminate and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _err = self.process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("worker did not exit in time:\n" + self.logs()[-3000:]) from None
        self.output = out or ""
        return int(self.process.returncode)

    def assert_running(self) -> None:
        """Fail at once, with the worker's log, when the process has exited."""
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"worker exited with {code}:\n{self.logs()[-3000:]}")


#: Workers started by the current test; the autouse fixture below kills any still running, so a
#: failed assertion never leaves a worker behind to disturb later tests.
_STARTED: list[WorkerProcess] = []


@pytest.fixture(autouse=True)
def _no_leftover_workers() -> Iterator[None]:
    yield
    while _STARTED:
        worker = _STARTED.pop()
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


def start_worker(topics: Topics, tmp_path: Path, *args: str, **env: str) -> WorkerProcess:
    """`import-closure run` as a real subprocess, logging to a file the test can show on failure."""
    return start_command(topics, tmp_path, "run", *args, **env)


def start_command(
    topics: Topics, tmp_path: Path, command: str, *args: str, **env: str
) -> WorkerProcess:
    """`import-closure COMMAND` (run, replay) as start_worker starts `run`: its own worker id and
    HTTP port (IMPORT_CLOSURE_HTTP_PORT in `env`, or a free one), stderr to a log file, stdout in
    `output` after `finish`; killed after the test if left running."""
    port = int(env.pop("IMPORT_CLOSURE_HTTP_PORT", 0)) or free_port()
    log_path = tmp_path / f"worker-{port}-{len(_STARTED)}.log"
    full_env = {
        **os.environ,
        **topics.env,
        "IMPORT_CLOSURE_HTTP_HOST": "127.0.0.1",
        "IMPORT_CLOSURE_HTTP_PORT": str(port),
        "IMPORT_CLOSURE_WORKER_ID": f"test-worker-{port}",
        **env,
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "consumer", command, *args],
            env=full_env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    worker = WorkerProcess(process, port, log_path)
    _STARTED.append(worker)
    return worker


@pytest.fixture(scope="session")
def real_registry() -> Iterator[RealRegistry]:
    """deploy/registry-local (Apicurio Registry) started once, fresh, with basic auth; stopped after."""
    registry = session_registry(TEST_PORT)
    registry.reset()
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
