"""deploy/kafka-local's cluster arguments: a wrong request is one line and exit 2, before any JVM.

Starting, killing and restarting nodes is exercised by tests/integration/cluster, on a real cluster.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

KAFKA_LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "kafka-local" / "kafka-local"


def kafka_local(
    data: Path, *args: str, port: int = 39510, cport: int = 39511
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_LOCAL_PORT": str(port),
        "KAFKA_LOCAL_CONTROLLER_PORT": str(cport),
        "KAFKA_LOCAL_DATA": str(data),
    }
    return subprocess.run(
        [str(KAFKA_LOCAL), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def refusal(data: Path, *args: str, **ports: int) -> tuple[int, str]:
    done = kafka_local(data, *args, **ports)
    return done.returncode, done.stderr.strip()


class TestClusterArguments:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["start", "--nodes", "0"], "--nodes takes a number of nodes from 1 to 9"),
            (["start", "--nodes"], "--nodes takes a number of nodes from 1 to 9"),
            (["kill", "--node", "x"], "--node takes a node id"),
            (["stop", "--nodes", "3"], "--nodes applies to start only"),
            (["kill", "--node", "2"], "holds no cluster (start one with 'kafka-local start --nodes 3')"),
        ],
        ids=["zero-nodes", "no-count", "bad-node-id", "nodes-on-stop", "node-without-cluster"],
    )  # fmt: skip
    def test_a_wrong_request_is_one_line_and_exit_2(
        self, tmp_path: Path, args: list[str], message: str
    ) -> None:
        code, err = refusal(tmp_path / "data", *args)
        assert code == 2
        assert message in err
        assert len(err.splitlines()) == 1

    def test_ports_that_would_collide_are_refused(self, tmp_path: Path) -> None:
        """Node I listens on PORT+2(I-1) and CONTROLLER_PORT+2(I-1): 39510/39512 collide at node 2."""
        code, err = refusal(tmp_path / "data", "start", "--nodes", "3", cport=39512)
        assert code == 2
        assert "ports collide" in err
        assert not (tmp_path / "data" / "nodes").exists()

    def test_the_secured_profile_is_a_single_broker(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KAFKA_LOCAL_SECURITY", "sasl_ssl")
        code, err = refusal(tmp_path / "data", "start", "--nodes", "3")
        assert code == 2
        assert "runs a single broker; a cluster is plaintext only" in err

    def test_a_node_the_cluster_does_not_have_is_refused(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        data.mkdir()
        (data / ".kafka-local").write_text("marker\n")
        (data / "nodes").write_text("3\n")
        code, err = refusal(data, "start", "--node", "4")
        assert (code, err) == (2, f"kafka-local: no node 4: the cluster in {data} has nodes 1-3")

    def test_a_single_broker_folder_is_not_turned_into_a_cluster(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        (data / "kraft").mkdir(parents=True)
        (data / ".kafka-local").write_text("marker\n")
        code, err = refusal(data, "start", "--nodes", "3")
        assert code == 2
        assert "holds a single broker" in err

    def test_status_of_a_stopped_cluster_lists_every_node_and_exits_3(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        data.mkdir()
        (data / ".kafka-local").write_text("marker\n")
        (data / "nodes").write_text("3\n")
        done = kafka_local(data, "status")
        assert done.returncode == 3
        assert [line.split(" (")[0] for line in done.stdout.splitlines()] == [
            "kafka-local: node 1 not running",
            "kafka-local: node 2 not running",
            "kafka-local: node 3 not running",
        ]
        assert "port 127.0.0.1:39514" in done.stdout.splitlines()[2]
