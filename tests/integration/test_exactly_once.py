"""Exactly-once on the real broker: SIGKILLs and a broker restart leave no duplicate and lose nothing.

The same kill scenario runs in both modes, so the closing figures compare like with like: at-least-
once may duplicate (never lose); exactly-once, read with read_committed, neither loses nor
duplicates. The first kill also measures failover: SIGKILL to the survivor's first decision on a
partition it took over.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from consumer.codec import AvroCodec
from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import Broker, Topics, WorkerProcess, make_topics, start_worker
from tests.integration.scrape import events_done, value
from tests.integration.tally import outputs_by_input
from tests.waiting import all_committed, drain, wait_until

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_700_000_000_000)
PARTITIONS = 6

#: Kafka 4.4's transaction coordinator logs this when it finds a partition of a completing
#: transaction without a leader (every partition of a single node has none for a moment around a
#: restart) and, taking it for deleted, writes no marker there while still recording the commit or
#: abort (KAFKA-20734, fix open in apache/kafka#22680). The outputs there stay in an open
#: transaction until the same producer's next marker on that partition commits or aborts them.
SKIPPED_MARKERS = "Couldn't find leader endpoint for partitions"


@dataclass(frozen=True)
class Outcome:
    inputs: int
    outputs: int
    unique: int
    failover_seconds: float | None
    #: Workers that stopped themselves (exit 1: fenced, or the watchdog) and were started again.
    self_restarts: int = 0

    @property
    def duplicates(self) -> int:
        return self.outputs - self.unique

    @property
    def lost(self) -> int:
        return self.inputs - self.unique


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    try:
        return value(worker.base_url, name, **labels) or 0.0
    except OSError:
        return 0.0


def assigned(worker: WorkerProcess) -> float:
    return metric(worker, "import_closure_assigned_partitions")


def done(worker: WorkerProcess) -> float:
    return events_done(worker.base_url)


def progressed(worker: WorkerProcess) -> bool:
    return done(worker) > 200


def holds_all(worker: WorkerProcess) -> bool:
    return assigned(worker) == PARTITIONS


def holds_partitions(worker: WorkerProcess) -> bool:
    return assigned(worker) > 0


def failover_seconds(topics: Topics, partitions: set[int], killed_at: float) -> float | None:
    """Seconds from the kill to the first decision of a killed worker's partition after it."""
    codec = AvroCodec()
    conf = topics.client_conf(isolation_level="read_committed")
    after = [
        d.decided_at_ms / 1000
        for d in (
            codec.decode_decision(r.value) for r in drain(conf, topics.settings.approved_topic)
        )
        if d.source is not None
        and d.source.partition in partitions
        and d.decided_at_ms / 1000 > killed_at
    ]
    return round(min(after) - killed_at, 1) if after else None


def victim_partitions(worker: WorkerProcess) -> set[int]:
    """The partitions a worker held last, from its `partitions assigned` / `revoked` log lines."""
    held: set[int] = set()
    for line in worker.logs().splitlines():
        entry = json.loads(line)
        names = {int(n.rsplit("[", 1)[1].rstrip("]")) for n in entry.get("partitions", ())}
        if entry["event"] == "partitions assigned":
            held |= names
        elif entry["event"] in ("partitions revoked", "partitions lost"):
            held -= names
    return held


def skipped_markers(broker: Broker, since: int) -> list[str]:
    """The broker's `SKIPPED_MARKERS` lines from byte `since` of its log on."""
    with broker.server_log.open("rb") as log:
        log.seek(since)
        lines = log.read().decode(errors="replace").splitlines()
    return [line for line in lines if SKIPPED_MARKERS in line]


def kill_scenario(
    broker: Broker,
    tmp_path: Path,
    guarantee: str,
    *,
    kills: int = 3,
    count: int = 60_000,
    rate: float = 1_000,
    restart_broker: bool = False,
) -> Outcome:
    """Two workers share 6 partitions; one is SIGKILLed `kills` times mid-stream and restarted.

    The input arrives at `rate` for count/rate seconds (a minute), so every kill and take-over
    (each waits out the dead member's 6 s session) happens while there is input to decide.
    """
    topics = make_topics(broker, partitions=PARTITIONS)
    s = topics.settings
    env = {"IMPORT_CLOSURE_PROCESSING_GUARANTEE": guarantee}
    # A restarted container keeps its pod's identity, so its transactional.id is the same and
    # it fences (and aborts) what its killed predecessor left open.
    survivor = start_worker(topics, tmp_path, **env, IMPORT_CLOSURE_TRANSACTIONAL_ID="survivor")
    victim = start_worker(topics, tmp_path, **env, IMPORT_CLOSURE_TRANSACTIONAL_ID="victim")
    workers = [survivor, victim]
    first_kill: tuple[set[int], float] = (set(), 0.0)
    restarts: list[str] = []
    try:
        wait_until(
            lambda: assigned(survivor) > 0 and assigned(victim) > 0, 90, "both to hold partitions"
        )
        producing = threading.Thread(
            target=produce_samples,
            args=(s, s.input_topic),
            kwargs={"count": count, "seed": 31, "rate": rate, "bad_fraction": 0.01, "spec": SPEC},
        )
        producing.start()
        for kill in range(kills):
            wait_until(partial(progressed, victim), 60, "the victim to make progress")
            held = victim_partitions(victim)
            killed_at = time.time()
            victim.process.kill()
            victim.process.wait(10)
            if kill == 0:
                first_kill = (held, killed_at)
                wait_until(partial(holds_all, survivor), 120, "the survivor to take over")
            victim = start_worker(topics, tmp_path, **env, IMPORT_CLOSURE_TRANSACTIONAL_ID="victim")
            workers.append(victim)
            wait_until(partial(holds_partitions, victim), 90, "the restarted victim to rejoin")
        if restart_broker:
            broker.stop()
            broker.start()
        producing.join(120)

        def restart_the_fallen_then_check() -> bool:
            """As an orchestrator would: a worker that stopped itself is started again."""
            nonlocal survivor, victim
            if survivor.process.poll() is not None:
                survivor = start_worker(
                    topics, tmp_path, **env, IMPORT_CLOSURE_TRANSACTIONAL_ID="survivor"
                )
                restarts.append("survivor")
            if victim.process.poll() is not None:
                victim = start_worker(
                    topics, tmp_path, **env, IMPORT_CLOSURE_TRANSACTIONAL_ID="victim"
                )
                restarts.append("victim")
            return all_committed(topics.client_conf(), s.group_id, s.input_topic)

        wait_until(
            restart_the_fallen_then_check, 240, "every input offset to be committed", interval=1.0
        )
    finally:
        codes = [w.finish(60, terminate=True) for w in (survivor, victim)]
    assert codes == [0, 0], survivor.logs()[-2000:] + victim.logs()[-2000:]
    outputs, unique = outputs_by_input(topics)
    return Outcome(count, outputs, unique, failover_seconds(topics, *first_kill), len(restarts))


class TestExactlyOnce:
    def test_sigkills_leave_no_duplicate_and_lose_nothing(
        self, broker: Broker, tmp_path: Path
    ) -> None:
        """Three SIGKILLs mid-stream: every input has exactly one decision or dead letter."""
        outcome = kill_scenario(broker, tmp_path, "exactly-once")
        print(f"exactly-once kill test: {outcome}")
        assert outcome.lost == 0
        assert outcome.duplicates == 0
        assert outcome.failover_seconds is not None
        assert outcome.failover_seconds < 60

    def test_a_broker_restart_too(self, broker: Broker, tmp_path: Path) -> None:
        """SIGKILLs and a broker stop/start: still exactly one output per input.

        Unless the broker's log shows it skipped a transaction's markers: then a committed
        transaction can be aborted later, or an aborted one committed, and exactly-once cannot
        hold whatever the worker does. That run is an xfail naming the broker's lines.
        """
        if not broker.managed:
            pytest.skip("needs the session's own broker to stop and start it")
        log_start = broker.server_log.stat().st_size
        outcome = kill_scenario(broker, tmp_path, "exactly-once", kills=2, restart_broker=True)
        print(f"exactly-once kill + broker restart: {outcome}")
        dropped = skipped_markers(broker, log_start)
        if (outcome.lost or outcome.duplicates) and dropped:
            pytest.xfail(f"broker skipped transaction markers (KAFKA-20734): {outcome}; {dropped}")
        assert outcome.lost == 0
        assert outcome.duplicates == 0


class TestAtLeastOnceUnderTheSameKills:
    def test_sigkills_lose_nothing(self, broker: Broker, tmp_path: Path) -> None:
        """The same scenario at-least-once: nothing lost; duplicates are allowed and reported."""
        outcome = kill_scenario(broker, tmp_path, "at-least-once")
        print(f"at-least-once kill test: {outcome}")
        assert outcome.lost == 0
        assert outcome.failover_seconds is not None
        assert outcome.failover_seconds < 60
