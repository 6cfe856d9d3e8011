"""Broker failures on a three-node cluster while events flow: nothing lost, wrong or (exactly-once)
duplicated, no dead letter, no worker exit, and no partition with waiting input still for > 15 s.

Each failure runs once with two workers per guarantee. Exactly-once runs in all of them
(transactions are what a broker failure can break); at-least-once beside it, on its own topics
and group, where the failure touches what it relies on: a leader move (retries, idempotence) and
outputs refused below min.insync.replicas (it retries forever). Coordinators matter to
exactly-once only, and a rolling restart is three controlled leader moves.

Which node dies is chosen, not left to where leaders happened to land, so each test measures
one failure: the victim is never the active KRaft controller (a crash of that node adds the
quorum's failover, about 3 s, to the 9 s the new controller waits before fencing the broker;
see docs/operations.md), and group id and transactional ids are picked so that only the
coordinators under test live on it. When the group coordinator dies, librdkafka 2.16 drops the
broker once it leaves the metadata and may wait for it as coordinator for good (#5511):
`send_offsets_to_transaction` then hangs until the worker's bounds free it (see
docs/operations.md, "Exactly-once after a broker restart").
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from consumer.config.settings import AT_LEAST_ONCE, EXACTLY_ONCE
from consumer.kafka.sample_producer import produce_samples
from tests.integration.cluster.conftest import (
    CONSUMER_OFFSETS,
    NODES,
    TRANSACTION_STATE,
    Cluster,
    coordinator_node,
    make_cluster_topics,
    partitions,
    pick,
    wait_whole,
    with_group,
)
from tests.integration.conftest import Topics, WorkerProcess, start_worker
from tests.integration.scrape import events_done, value
from tests.integration.tally import Tally, tally
from tests.waiting import all_committed, end_offsets, wait_at_most, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 6
#: Per guarantee; with the rest of the machine (three JVMs, four workers) on two cores.
RATE = 300
MAX_STALL = 15.0
#: A stall past MAX_STALL is accepted up to this only when the worker's log shows where it went,
#: all of it outside the worker: a transactional call (flush, commit) that waited at least
#: BROKER_WAIT seconds for the brokers to fence the dead node and move its leaderships and
#: coordinators (broker.session.timeout.ms 9 s, checked against 2 s heartbeats: 9-11 s, 12-14 s
#: on this 2-core machine with three JVMs). It is printed with its cause; any other stall past
#: 15 s fails, and so does any past this bound.
KNOWN_GAP_STALL = 20.0
BROKER_WAIT = 8.0
#: Exactly-once below min ISR for longer than transaction.timeout.ms (30 s): the coordinator
#: aborts the open transaction and bumps the epoch, and the worker's next end of transaction is
#: refused (fenced, or INVALID_TXN_STATE); it exits 1 with that line and is restarted. Once per
#: replica is holding; more would be a crash loop.
TIMED_OUT_TRANSACTION = ("_FENCED", "INVALID_TXN_STATE")
WORKERS = 2
#: The watchdog's line when a transactional call hangs in librdkafka past its timeout (#5456;
#: #5511: on a cluster, a dead group coordinator is dropped from metadata and
#: `send_offsets_to_transaction` waits for it for good). The worker now gives such a producer up
#: in-process (delivery/exactly_once.py); the watchdog's exit is the last resort, allowed here.
HANG = "did not return within"
#: The worker's lines saying how long a transactional call waited (delivery/exactly_once.py):
#: `commit_transaction was slow` with "13.1s", `transactional producer renewed` with "the flush
#: took 12.4s: a coordinator moved".
WAITED = re.compile(r'"(?:[a-z_]+ was slow", "detail": "|detail": "the [a-z]+ took )(\d+\.\d)s')


@dataclass(frozen=True)
class Plan:
    """Where the failure lands: the node that dies, and which coordinators live on it."""

    victim: int | None = None
    group_coordinator_on_victim: bool = False
    transaction_coordinator_on_victim: bool = False
    #: The outputs' replicas (replication 2, min.insync.replicas 2); None: 3 replicas.
    outputs_on: list[int] | None = None


@dataclass
class Group:
    """One guarantee's topics, its workers and the thread producing its input at RATE.

    A worker that exits is started again, as an orchestrator would, and kept in `fallen`.
    """

    guarantee: str
    topics: Topics
    tmp_path: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    envs: list[dict[str, str]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    fallen: list[WorkerProcess] = field(default_factory=list)
    producing: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def start(self, n: int) -> WorkerProcess:
        port = str(self.ports[n])
        return start_worker(
            self.topics, self.tmp_path, IMPORT_CLOSURE_HTTP_PORT=port, **self.envs[n]
        )

    def restart_fallen(self) -> None:
        for n, worker in enumerate(self.workers):
            if worker.process.poll() is not None:
                self.fallen.append(worker)
                self.workers[n] = self.start(n)

    def done(self) -> float:
        self.restart_fallen()
        return sum(events_done(w.base_url) for w in self.workers)

    def holds_all(self) -> bool:
        self.restart_fallen()
        held = [_assigned(w) for w in self.workers]
        return all(held) and sum(held) == PARTITIONS

    def produce(self, seed: int) -> None:
        """RATE events a second, one second's worth per call, until `stop` is set."""
        s = self.topics.settings

        def run() -> None:
            try:
                second = 0
                while not self.stop.is_set():
                    second += 1
                    produce_samples(
                        s, s.input_topic, count=RATE, seed=seed * 10_000 + second, rate=RATE,
                        timeout=120,
                    )  # fmt: skip
            except BaseException as exc:  # reported by the test thread, which asserts on it
                self.errors.append(exc)

        self.producing = threading.Thread(target=run, name=f"produce-{s.input_topic}")
        self.producing.start()

    def exits(self) -> list[str]:
        """The last log line of each worker that exited."""
        return [(w.logs().strip().splitlines() or ["(no log)"])[-1] for w in self.fallen]


def _assigned(worker: WorkerProcess) -> float:
    try:
        return value(worker.base_url, "import_closure_assigned_partitions") or 0.0
    except OSError:
        return 0.0


def start_group(cluster: Cluster, tmp_path: Path, guarantee: str, slot: int, plan: Plan) -> Group:
    topics = make_cluster_topics(cluster, PARTITIONS, plan.outputs_on)
    s = topics.settings

    def on_victim(topic: str, wanted: bool) -> Callable[[str], bool]:
        return lambda key: (coordinator_node(s, topic, key) == plan.victim) == wanted

    if plan.victim is not None:
        (group_id,) = pick(s.group_id, 1, on_victim(CONSUMER_OFFSETS, plan.group_coordinator_on_victim))  # fmt: skip
        topics = with_group(topics, group_id)
    group = Group(guarantee, topics, tmp_path)
    transactional_ids = [f"{topics.settings.group_id}-{n}" for n in range(WORKERS)]
    if plan.victim is not None:
        wanted = plan.transaction_coordinator_on_victim
        transactional_ids = pick(topics.settings.group_id, WORKERS, on_victim(TRANSACTION_STATE, wanted))  # fmt: skip
    for n in range(WORKERS):
        env = {"IMPORT_CLOSURE_PROCESSING_GUARANTEE": guarantee}
        if guarantee == EXACTLY_ONCE:
            # A restarted replica keeps its identity (a StatefulSet pod's name): it fences and
            # aborts what its predecessor left open.
            env["IMPORT_CLOSURE_TRANSACTIONAL_ID"] = transactional_ids[n]
        group.envs.append(env)
        group.ports.append(cluster.http_port(slot * WORKERS + n))
        group.workers.append(group.start(n))
    return group


@dataclass(frozen=True)
class Result:
    tally: Tally
    #: The last log line of each worker that exited and was started again.
    exits: list[str]
    #: The longest a transactional call of any worker waited for the brokers (WAITED), seconds.
    broker_wait: float = 0.0

    @property
    def hung(self) -> bool:
        return any(HANG in line for line in self.exits)


#: A failure: it breaks something, waits until the cluster is whole again, and returns when the
#: workers could be expected to move (epoch seconds; 0: at once).
Fault = Callable[[Cluster, list[Group]], float]


def run_with_fault(
    cluster: Cluster, tmp_path: Path, guarantees: tuple[str, ...], fault: Fault, plan: Plan
) -> dict[str, Result]:
    groups = [start_group(cluster, tmp_path, g, slot, plan) for slot, g in enumerate(guarantees)]
    try:
        for group in groups:
            wait_until(group.holds_all, 120, f"the {group.guarantee} workers to share the input")
        for seed, group in enumerate(groups, start=41):
            group.produce(seed)
        wait_until(flowed_since(groups, 2), 60, "events to flow")
        hold_until = fault(cluster, groups)
        wait_at_most(flowed_since(groups, 2), MAX_STALL + 5)  # if not, the tally says how long
        for group in groups:
            group.stop.set()
        for group in groups:
            assert group.producing is not None
            group.producing.join(180)
            assert not group.errors, group.errors
            wait_until(
                partial(finished, group), 180, f"every {group.guarantee} offset committed", 1.0
            )
    finally:
        for group in groups:
            group.stop.set()
        codes = stop_workers([w for g in groups for w in g.workers])
    assert codes == [0] * len(codes), "\n".join(w.logs()[-2000:] for g in groups for w in g.workers)
    return {
        g.guarantee: Result(
            tally(g.topics, hold_until=hold_until),
            g.exits(),
            max(
                (float(m) for w in g.workers + g.fallen for m in WAITED.findall(w.logs())),
                default=0.0,
            ),
        )
        for g in groups
    }


def stop_workers(workers: list[WorkerProcess]) -> list[int | str]:
    """SIGTERM to all at once (each commits and leaves on its own), then their exit codes, or why
    there is none; never raises, so an exception on its way out of the test is not masked."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    codes: list[int | str] = []
    for worker in workers:
        try:
            codes.append(worker.finish(60))
        except AssertionError as exc:
            codes.append(str(exc).splitlines()[0])
    return codes


def finished(group: Group) -> bool:
    """Every input offset committed (workers that fell are started again meanwhile)."""
    group.restart_fallen()
    s = group.topics.settings
    return all_committed(group.topics.client_conf(), s.group_id, s.input_topic)


def check(failure: str, results: dict[str, Result], *, eos_exits: tuple[str, ...] = ()) -> None:
    """Nothing lost, wrong or dead-lettered (exactly-once: nothing duplicated), no worker exit
    (exactly-once: at most one per replica with a line of `eos_exits`), no stall past MAX_STALL
    unless the brokers took it (see KNOWN_GAP_STALL)."""
    for guarantee, r in results.items():
        print(f"| {failure} | {guarantee} | {r.tally.row()} | worker exits: {len(r.exits)} |")
    for guarantee, r in results.items():
        t = r.tally
        assert (t.lost, t.wrong, t.dead_letters) == (0, 0, 0), f"{guarantee}: {t.row()}"
        allowed: tuple[str, ...] = (HANG,)
        if guarantee == EXACTLY_ONCE:
            assert t.duplicated == 0, f"{guarantee}: {t.row()}"
            allowed += eos_exits
            assert len(r.exits) <= WORKERS, f"{guarantee}: a crash loop: {r.exits}"
        unexplained = [line for line in r.exits if not any(a in line for a in allowed)]
        assert not unexplained, f"{guarantee}: workers exited: {unexplained}"
        if t.longest_stall <= MAX_STALL:
            continue
        # Past 15 s only when the brokers took most of it: a transactional call waited that long
        # for them (the at-least-once worker has no such call; its group, on the same cluster,
        # went through the same failure as the exactly-once one beside it).
        waited = max(r.broker_wait for r in results.values())
        assert waited >= BROKER_WAIT, f"{guarantee}: {t.row()}"
        print(f"known: waited {waited:.1f}s for the brokers: {guarantee}: {t.row()}")
        assert t.longest_stall <= KNOWN_GAP_STALL, f"{guarantee}: {t.row()}"


def flowed_since(groups: list[Group], seconds: float) -> Callable[[], bool]:
    """True once every group decided `seconds` worth of input more than when it was made."""
    before = [g.done() for g in groups]
    return lambda: all(g.done() >= b + RATE * seconds for g, b in zip(groups, before, strict=True))


def produced_since(groups: list[Group], seconds: float) -> Callable[[], bool]:
    """True once `seconds` worth of input more arrived on every group's input topic."""
    before = [
        wait_until(partial(input_total, g), 30, "the input's end offsets") or 0 for g in groups
    ]
    return lambda: all(
        (input_total(g) or 0) >= b + RATE * seconds for g, b in zip(groups, before, strict=True)
    )


def input_total(group: Group) -> int | None:
    """Records on the group's input topic; None while a new leader's high watermark is not yet
    known (OFFSET_NOT_AVAILABLE right after a leader change)."""
    try:
        return sum(
            end_offsets(group.topics.client_conf(), group.topics.settings.input_topic).values()
        )
    except KafkaException:
        return None


def not_the_controller(cluster: Cluster) -> int:
    return min(n for n in NODES if n != cluster.active_controller())


def kill_and_return(victim: int) -> Fault:
    """SIGKILL `victim`; once its leaderships moved and work went on (or MAX_STALL passed: the
    tally says how long it stood), start it again and wait until every replica is in sync."""

    def fault(cluster: Cluster, groups: list[Group]) -> float:
        settings = groups[0].topics.settings
        led = {
            (topic, p)
            for topic in (TRANSACTION_STATE, CONSUMER_OFFSETS, settings.input_topic)
            for p, state in partitions(settings, topic).items()
            if state.leader == victim
        }
        cluster.kill(victim)

        def moved() -> bool:
            return all(partitions(settings, t)[p].leader not in (victim, -1) for t, p in led)

        wait_until(moved, 60, f"node {victim}'s leaderships to move")
        wait_at_most(flowed_since(groups, 3), MAX_STALL + 5)
        cluster.start_node(victim)
        wait_whole(settings)
        return 0.0

    return fault


def rolling_restart(cluster: Cluster, groups: list[Group]) -> float:
    """Each node in turn: controlled shutdown, start, and wait until no partition is
    under-replicated before the next, as an operator (or an operator's tooling) does."""
    for node in NODES:
        cluster.restart(node)
        wait_whole(groups[0].topics.settings, elect=node == NODES[-1])
    return 0.0


def below_min_isr(victim: int, kept: int) -> Fault:
    """Kill `victim`: the outputs' ISR shrinks to `kept` alone, below min.insync.replicas, so
    every write to them is refused (NOT_ENOUGH_REPLICAS) while input keeps arriving; after 5 s
    worth of input, start it again. Returns when min ISR was restored."""

    def fault(cluster: Cluster, groups: list[Group]) -> float:
        def isr() -> set[tuple[int, ...]]:
            return {
                p.isr
                for g in groups
                for topic in {g.topics.settings.approved_topic, g.topics.settings.dlq_topic}
                for p in partitions(g.topics.settings, topic).values()
            }

        cluster.kill(victim)
        wait_until(lambda: isr() == {(kept,)}, 60, "the outputs' ISR to shrink to one")
        wait_until(produced_since(groups, 5), 60, "input to arrive below min ISR")
        cluster.start_node(victim)
        wait_until(lambda: all(len(i) >= 2 for i in isr()), 120, "min ISR to be restored")
        restored = time.time()
        wait_whole(groups[0].topics.settings)
        return restored

    return fault


class TestBrokerFailures:
    def test_input_partition_leader_killed(self, cluster: Cluster, tmp_path: Path) -> None:
        """SIGKILL of a node leading input and output partitions (no coordinator of ours)."""
        plan = Plan(victim=not_the_controller(cluster))
        assert plan.victim is not None
        results = run_with_fault(
            cluster, tmp_path, (EXACTLY_ONCE, AT_LEAST_ONCE), kill_and_return(plan.victim), plan
        )
        check("input partition leader SIGKILLed", results)

    def test_coordinators_killed(self, cluster: Cluster, tmp_path: Path) -> None:
        """SIGKILL of the node that coordinates both workers' transactions and the group (which
        takes the transactions' offsets): librdkafka #5511's case, bounded by the worker."""
        victim = not_the_controller(cluster)
        plan = Plan(
            victim, group_coordinator_on_victim=True, transaction_coordinator_on_victim=True
        )
        results = run_with_fault(cluster, tmp_path, (EXACTLY_ONCE,), kill_and_return(victim), plan)
        check("transaction and group coordinator SIGKILLed", results)

    def test_rolling_restart(self, cluster: Cluster, tmp_path: Path) -> None:
        """All three nodes restarted one after another, each waited for before the next."""
        results = run_with_fault(cluster, tmp_path, (EXACTLY_ONCE,), rolling_restart, Plan())
        check("rolling restart", results)

    def test_below_min_insync_replicas(self, cluster: Cluster, tmp_path: Path) -> None:
        """Outputs refused below min ISR: the workers hold (no drop, no dead letter, no exit) and
        resume once the node is back; stalls count from when min ISR is restored."""
        victim = not_the_controller(cluster)
        kept = next(n for n in NODES if n != victim)
        plan = Plan(victim=victim, outputs_on=[kept, victim])
        results = run_with_fault(
            cluster, tmp_path, (EXACTLY_ONCE, AT_LEAST_ONCE), below_min_isr(victim, kept), plan
        )
        check("outputs below min.insync.replicas", results, eos_exits=TIMED_OUT_TRANSACTION)
