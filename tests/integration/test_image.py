"""deploy/Dockerfile built with podman from a clean tree and run against the session broker.

No image registry is reachable, so deploy/image/build-base makes the Python base from Debian
packages (cached in podman's storage by its recipe's hash) and deploy/image/build builds the
Dockerfile users build on it. deploy/tools/ensure-tools installs podman, runc and debootstrap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from consumer.codec import AvroCodec
from tests.integration.conftest import ROOT, Topics, free_port
from tests.integration.scrape import events_done, status
from tests.waiting import committed, drain, end_offsets, wait_until

pytestmark = pytest.mark.integration

#: Root podman without a daemon on these machines: vfs storage, Debian's runc, plain cgroups.
PODMAN = ["podman", "--storage-driver=vfs", "--runtime=runc", "--cgroup-manager=cgroupfs"]
#: What `podman run` needs here beyond the test's own flags (the brief of issue 17, item 5).
RUN_FLAGS = [
    "--network=host",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
    "--log-driver=k8s-file",
]


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr}")
    return result


def _script(name: str, timeout: float) -> tuple[str, str]:
    """Run deploy/image/NAME; its tag (last stdout line) and what it said on stderr."""
    result = subprocess.run(
        [str(ROOT / "deploy" / "image" / name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"deploy/image/{name} failed:\n{result.stderr[-3000:]}"
    return result.stdout.strip().splitlines()[-1], result.stderr


@dataclass(frozen=True)
class Built:
    base: str
    tag: str


@pytest.fixture(scope="module")
def image() -> Iterator[Built]:
    """The worker image of this tree, built once for the module and removed after it (the base
    stays cached: a rebuild costs ~1 min, the worker image ~40 s and 220 MB of vfs storage)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: run deploy/tools/ensure-tools (scripts/test does)")
    base, _ = _script("build-base", timeout=600)
    tag, _ = _script("build", timeout=600)
    try:
        yield Built(base, tag)
    finally:
        # Not --force: that would also remove containers of another test run using this tag.
        podman("rmi", tag, check=False)


@dataclass
class Container:
    name: str
    http_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=False)

    def state(self) -> dict[str, object]:
        state: dict[str, object] = json.loads(
            podman("inspect", "--format", "{{json .State}}", self.name).stdout
        )
        return state

    def assert_running(self) -> None:
        if self.state()["Status"] != "running":
            raise AssertionError(f"container exited:\n{self.logs()[-3000:]}")

    def probe(self, path: str) -> int:
        """HTTP status of `path` (0 while nothing answers); fails at once if the worker exited."""
        self.assert_running()
        return status(f"{self.base_url}{path}")

    def events_done(self) -> float:
        self.assert_running()
        return events_done(self.base_url)

    def logs(self) -> str:
        """What the worker wrote: its JSON log lines on stderr, its summary on stdout."""
        result = podman("logs", self.name, check=False)
        return result.stderr + result.stdout


@pytest.fixture
def container(image: Built, topics: Topics) -> Iterator[Container]:
    """The image's default command (`run`) against the session broker, as user 10001 on a
    read-only root; removed after the test whatever happened."""
    port = free_port()
    name = f"ic-test-{uuid.uuid4().hex[:10]}"
    env = {
        **topics.env,
        "IMPORT_CLOSURE_HTTP_HOST": "127.0.0.1",
        "IMPORT_CLOSURE_HTTP_PORT": str(port),
        "IMPORT_CLOSURE_WORKER_ID": name,
    }
    podman(
        "run", "--detach", "--name", name, "--read-only", *RUN_FLAGS,
        *(f"--env={key}={value}" for key, value in env.items()),
        image.tag,
    )  # fmt: skip
    try:
        yield Container(name, port)
    finally:
        podman("rm", "--force", "--time=0", name, check=False)


def _produce(topics: Topics, count: int, *args: str) -> subprocess.Popen[str]:
    """`import-closure produce-sample` from the host's venv, into the test's input topic."""
    return subprocess.Popen(
        [sys.executable, "-m", "consumer", "produce-sample", "--count", str(count), *args],
        env={**os.environ, **topics.env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _decided(topics: Topics) -> dict[tuple[int, int], str]:
    """Each decision's input (partition, offset) and event id."""
    codec = AvroCodec()
    out = {}
    for record in drain(topics.client_conf(), topics.settings.approved_topic):
        decision = codec.decode_decision(record.value or b"")
        assert decision.source is not None
        out[(decision.source.partition, decision.source.offset)] = decision.event_id
    return out


class TestBuild:
    def test_the_image_is_built_on_the_debian_base_and_says_who_runs_it_and_how(
        self, image: Built
    ) -> None:
        """The labels name the base and the tree's commit; user, health check and stop signal
        survive podman's build (the docker format keeps HEALTHCHECK, OCI would drop it)."""
        inspected = json.loads(podman("image", "inspect", image.tag).stdout)[0]
        config = inspected["Config"]
        labels = config["Labels"]
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert labels["org.opencontainers.image.base.name"] == image.base
        assert labels["org.opencontainers.image.revision"] == head
        assert config["User"] == "10001:10001"
        assert config["Entrypoint"] == ["import-closure"]
        assert config["Cmd"] == ["run"]
        assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"])
        assert config["StopSignal"] == "SIGTERM"

    def test_the_base_is_reused_while_its_recipe_is_unchanged(self, image: Built) -> None:
        """The base is tagged by its recipe's hash: a second call finds it instead of building."""
        started = time.monotonic()
        tag, said = _script("build-base", timeout=60)
        assert tag == image.base
        assert "present" in said
        assert time.monotonic() - started < 10


class TestRun:
    def test_decides_events_as_user_10001_on_a_read_only_root_with_consistent_dependencies(
        self, container: Container, topics: Topics
    ) -> None:
        """Events produced from the host are decided by the container, which answers its probes
        and its own health check, runs as the image's user and cannot write its root."""
        count = 200
        producer = _produce(topics, count)
        assert producer.wait(60) == 0, producer.stderr.read() if producer.stderr else ""
        wait_until(lambda: container.probe("/readyz") == 200, 90, "/readyz 200 from the container")
        assert container.probe("/healthz") == 200
        # The image's own HEALTHCHECK command, run inside the container as an engine would.
        health = podman("healthcheck", "run", container.name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        wait_until(lambda: len(_decided(topics)) >= count, 90, f"{count} decisions", interval=1)
        assert len(set(_decided(topics).values())) == count

        assert container.exec("id", "-u").stdout.strip() == "10001"
        # The locked wheels and the package agree in the image as shipped.
        check = container.exec("env", "PIP_NO_CACHE_DIR=1", "pip", "check")
        assert check.stdout.strip() == "No broken requirements found.", check.stderr
        write = container.exec("touch", "/usr/local/written")
        assert write.returncode != 0
        assert "Read-only file system" in write.stderr

        lines = [json.loads(line) for line in container.logs().splitlines() if line.strip()]
        assert any(line.get("event") == "partitions assigned" for line in lines)

    def test_sigterm_drains_commits_what_was_decided_and_exits_0(
        self, container: Container, topics: Topics
    ) -> None:
        """`podman stop` sends the image's STOPSIGNAL mid-stream: the worker finishes its
        in-flight events, commits, exits 0, and every committed input has its decision."""
        producer = _produce(topics, 20_000, "--rate", "2000")
        try:
            wait_until(
                lambda: container.events_done() >= 500,
                90,
                "the container to decide events while input keeps arriving",
            )
            assert producer.poll() is None, "input stopped arriving before SIGTERM"
            started = time.monotonic()
            podman("stop", "--time=40", container.name, timeout=60)
            stopped_in = time.monotonic() - started
        finally:
            producer.kill()
            producer.wait(10)

        state = container.state()
        logs = container.logs()
        assert state["ExitCode"] == 0, logs[-3000:]
        assert stopped_in < 30, "SIGKILL after the grace period, not a drain"
        assert '"shutting down"' in logs
        assert '"worker stopped"' in logs

        s = topics.settings
        offsets = committed(topics.client_conf(), s.group_id, s.input_topic)
        assert sum(max(o, 0) for o in offsets.values()) >= 500
        ends = end_offsets(topics.client_conf(), s.input_topic)
        assert all(offsets[p] <= ends[p] for p in offsets)
        decided = _decided(topics)
        missing = [
            (partition, offset)
            for partition, upto in offsets.items()
            for offset in range(max(upto, 0))
            if (partition, offset) not in decided
        ]
        assert missing == []
