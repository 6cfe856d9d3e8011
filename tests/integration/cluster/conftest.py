"""The session's three-node cluster (deploy/kafka-local start --nodes 3) and what tests ask of it.

One cluster per session, on ports of its own: node I listens on CLUSTER_PORT + 2(I-1) (controller
one above), so it runs beside the single test broker. Group settings stay at the broker defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ElectionType, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # typed there; confluent_kafka.admin's is untyped

from consumer.config.settings import Settings
from consumer.kafka.client_conf import admin_conf, plain_consumer_conf, plain_producer_conf
from consumer.kafka.clients import QuietClientLog, create_topics
from tests.integration.conftest import ROOT, TEST_PORT, Broker, Topics, topic_settings
from tests.waiting import wait_until

CLUSTER_PORT = int(os.environ.get("IMPORT_CLOSURE_TEST_CLUSTER_PORT", str(TEST_PORT + 10)))
NODES = (1, 2, 3)
#: Kafka's internal topics: a cluster is whole again only when their replicas are in sync too.
TRANSACTION_STATE = "__transaction_state"
CONSUMER_OFFSETS = "__consumer_offsets"
#: kafka-local's transaction.state.log.num.partitions and offsets.topic.num.partitions.
COORDINATOR_PARTITIONS = 3
_ACTIVE = re.compile(r"\[QuorumController id=(\d+)\] Becoming the active controller at epoch (\d+)")


@dataclass
class Cluster(Broker):
    """The session's cluster; node ids are 1-3, as in `kafka-local --node I`."""

    base_port: int = CLUSTER_PORT

    def kill(self, node: int) -> None:
        """SIGKILL: no controlled shutdown, as a crashed machine."""
        self._verb("kill", "--node", str(node))

    def start_node(self, node: int) -> None:
        """Start a stopped node and wait until it has logged that it started (it is unfenced)."""
        self._verb("start", "--node", str(node))

    def restart(self, node: int) -> None:
        """SIGTERM (controlled shutdown: leadership moves first), then start."""
        self._verb("restart", "--node", str(node))

    def http_port(self, slot: int) -> int:
        """A worker's HTTP port from the cluster's range (slots 0-7), not a random free one."""
        return self.base_port + 10 + slot

    def active_controller(self) -> int:
        """The KRaft quorum's leader, from the nodes' logs (Metadata names a random broker as
        controller under KRaft, and the Python admin client has no DescribeQuorum)."""
        latest = (-1, -1)
        for node in NODES:
            log = Path(self.env["KAFKA_LOCAL_DATA"]) / f"node-{node}" / "logs" / "server.log"
            for match in _ACTIVE.finditer(log.read_text(errors="replace")):
                latest = max(latest, (int(match[2]), int(match[1])))
        assert latest[1] in NODES, "no active controller in the nodes' logs"
        return latest[1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("IMPORT_CLOSURE_TEST_BOOTSTRAP"):
        pytest.skip("the cluster tests start, kill and restart three nodes of their own")
    env = {
        **os.environ,
        "KAFKA_LOCAL_PORT": str(CLUSTER_PORT),
        "KAFKA_LOCAL_CONTROLLER_PORT": str(CLUSTER_PORT + 1),
        "KAFKA_LOCAL_DATA": str(ROOT / ".run" / f"test-cluster-{CLUSTER_PORT}"),
    }
    env.pop("KAFKA_LOCAL_EXTRA_PROPS", None)  # broker defaults for the group session
    bootstrap = ",".join(f"127.0.0.1:{CLUSTER_PORT + 2 * (n - 1)}" for n in NODES)
    c = Cluster(bootstrap, managed=True, env=env)
    c._verb("reset")
    c._verb("start", "--nodes", str(len(NODES)))
    try:
        _create_coordinator_topics(topic_settings(c))
        yield c
    finally:
        c._verb("stop")


@dataclass(frozen=True)
class PartitionState:
    leader: int  # -1 while there is none
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(admin_conf(settings, logger=QuietClientLog()))


def partitions(settings: Settings, topic: str) -> dict[int, PartitionState]:
    """Leader, replicas and in-sync replicas of each partition of `topic`, from metadata."""
    metadata = _admin(settings).list_topics(topic, timeout=10)
    return {
        p.id: PartitionState(p.leader, tuple(p.replicas), tuple(p.isrs))
        for p in metadata.topics[topic].partitions.values()
    }


def fully_replicated(settings: Settings) -> bool:
    """Every partition of every topic (internal ones too) has a leader and all replicas in sync."""
    try:
        metadata = _admin(settings).list_topics(timeout=10)
    except KafkaException:
        return False
    return all(
        p.leader >= 0 and set(p.isrs) == set(p.replicas)
        for t in metadata.topics.values()
        for p in t.partitions.values()
    )


def wait_whole(settings: Settings, *, elect: bool = True, seconds: float = 120) -> None:
    """As an operator's rolling restart does before the next node: no partition under-replicated;
    then (`elect`) leadership back on each partition's preferred replica, as the brokers' own
    auto.leader.rebalance would do within 5 minutes, so the next test finds leaders spread."""
    wait_until(lambda: fully_replicated(settings), seconds, "every replica back in sync", 0.5)
    if elect:
        admin = _admin(settings)
        admin.elect_leaders(ElectionType.PREFERRED, None).result(60)
        wait_until(lambda: preferred_leaders(settings), seconds, "preferred leaders", 0.5)


def preferred_leaders(settings: Settings) -> bool:
    metadata = _admin(settings).list_topics(timeout=10)
    return all(
        p.leader == p.replicas[0] for t in metadata.topics.values() for p in t.partitions.values()
    )


def _create_coordinator_topics(settings: Settings) -> None:
    """__consumer_offsets and __transaction_state exist only once a group or a transactional
    producer first asks for its coordinator; tests read their leaders before that."""
    consumer = Consumer(plain_consumer_conf(settings, group_id="warm-up", logger=QuietClientLog()))
    try:
        consumer.committed([TopicPartition(settings.input_topic, 0)], timeout=30)
    except KafkaException:
        pass  # the topic does not exist; the coordinator was found all the same
    finally:
        consumer.close()
    producer = Producer(
        plain_producer_conf(settings, transactional_id="warm-up", logger=QuietClientLog())
    )
    producer.init_transactions(60)
    for topic in (CONSUMER_OFFSETS, TRANSACTION_STATE):
        wait_until(partial(_has_all_partitions, settings, topic), 60, f"{topic} to exist")


def _has_all_partitions(settings: Settings, topic: str) -> bool:
    try:
        return len(partitions(settings, topic)) == COORDINATOR_PARTITIONS
    except KeyError:
        return False


def _led(settings: Settings, topic: str, count: int) -> bool:
    """`topic` has `count` partitions, each with a leader."""
    try:
        found = partitions(settings, topic)
    except KeyError:
        return False
    return len(found) == count and all(p.leader >= 0 for p in found.values())


def coordinator_node(settings: Settings, topic: str, key: str) -> int:
    """The node leading the partition of `topic` (__consumer_offsets, __transaction_state)
    that owns `key` (a group id, a transactional id): its coordinator."""
    return partitions(settings, topic)[coordinator_partition(key)].leader


def coordinator_partition(key: str, partitions: int = COORDINATOR_PARTITIONS) -> int:
    """The partition of __transaction_state (or __consumer_offsets) that owns `key`:
    Utils.abs(key.hashCode()) % partitions, as Kafka's coordinators compute it."""
    h = 0
    for char in key:  # Java hashes UTF-16 units: the same as code points below U+10000
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if signed == -(1 << 31) else abs(signed)) % partitions


def pick(prefix: str, count: int, accept: Callable[[str], bool]) -> list[str]:
    """The first `count` names `prefix-N` that `accept` takes (e.g. whose coordinator is, or
    is not, on a given node)."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        name = f"{prefix}-{n}"
        if accept(name):
            found.append(name)
        n += 1
        assert n < 1000, f"no {count} names {prefix}-N accepted"
    return found


def with_group(topics: Topics, group_id: str) -> Topics:
    return Topics(replace(topics.settings, group_id=group_id))


def make_cluster_topics(
    cluster: Cluster, partitions_: int, outputs_on: Iterable[int] | None = None
) -> Topics:
    """Fresh topics: the input on 3 replicas; the outputs too, or on the nodes `outputs_on`
    only (replication 2 with min.insync.replicas 2: one of them down is below min ISR)."""
    settings = topic_settings(cluster, partitions_)
    create_topics(settings, [settings.input_topic], partitions=partitions_, replication=3)
    outputs = sorted({settings.approved_topic, settings.rejected_topic, settings.dlq_topic})
    if outputs_on is None:
        create_topics(settings, outputs, partitions=partitions_, replication=3)
    else:
        replicas = list(outputs_on)
        new = [
            NewTopic(
                name,
                num_partitions=partitions_,
                replica_assignment=[replicas] * partitions_,
                config={"min.insync.replicas": str(len(replicas))},
            )
            for name in outputs
        ]
        admin = _admin(settings)  # kept: its futures fail once it is destroyed
        for future in admin.create_topics(new, request_timeout=30).values():
            future.result(30)
        for name in outputs:
            wait_until(partial(_led, settings, name, partitions_), 30, f"{name} to have leaders")
    return Topics(settings)
