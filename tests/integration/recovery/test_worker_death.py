"""A worker that dies hard gives its partitions up within 15 s, on a broker at its defaults.

Two workers share 6 partitions while 600 events/s arrive; one is SIGKILLed. The classic group
protocol's 6 s client-side session (consumer/kafka/client_conf.py, CLASSIC_GROUP) bounds how long
the broker waits for the dead one; the test measures the longest time any partition stood still.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import Broker, WorkerProcess, make_topics, start_worker
from tests.integration.recovery.stalls import decision_times, longest_stall
from tests.integration.tally import outputs_by_input
from tests.integration.test_exactly_once import assigned, done
from tests.waiting import all_committed, wait_until

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_700_000_000_000)
PARTITIONS = 6
RATE = 600.0
#: Seconds of input: the kill comes about 5 s in, so input still arrives 15 s after it.
SECONDS = 25
#: What the issue asks of any single failure.
LIMIT = 15.0


def _holds_partitions(worker: WorkerProcess) -> bool:
    return assigned(worker) > 0


def _kill_one_of_two(
    broker: Broker, tmp_path: Path, guarantee: str, *, restart: bool
) -> tuple[float, int, int, int]:
    """Two workers, input flowing, SIGKILL one (started again under the same name if `restart`,
    as Kubernetes restarts a killed container in its pod). Returns (longest stall, inputs,
    outputs, distinct inputs decided)."""
    topics = make_topics(broker, partitions=PARTITIONS)
    s = topics.settings
    env = {"IMPORT_CLOSURE_PROCESSING_GUARANTEE": guarantee}
    survivor = start_worker(topics, tmp_path, **env, IMPORT_CLOSURE_WORKER_ID="survivor")
    victim = start_worker(topics, tmp_path, **env, IMPORT_CLOSURE_WORKER_ID="victim")
    workers = [survivor, victim]
    count = int(RATE * SECONDS)
    try:
        wait_until(
            lambda: _holds_partitions(survivor) and _holds_partitions(victim),
            90,
            "both workers to hold partitions",
        )
        producing = threading.Thread(
            target=produce_samples,
            args=(s, s.input_topic),
            kwargs={"count": count, "seed": 41, "rate": RATE, "spec": SPEC},
        )
        produce_start = time.time()
        producing.start()
        wait_until(lambda: done(victim) > 500, 60, "the victim to make progress")
        killed_at = time.time()
        victim.process.kill()
        victim.process.wait(10)
        if restart:
            victim = start_worker(topics, tmp_path, **env, IMPORT_CLOSURE_WORKER_ID="victim")
            workers.append(victim)
        producing.join(SECONDS + 60)
        produce_end = produce_start + SECONDS
        assert killed_at + LIMIT < produce_end, "the kill came too late to measure a stall"
        wait_until(
            lambda: all_committed(topics.client_conf(), s.group_id, s.input_topic),
            120,
            "every input offset to be committed",
            interval=1.0,
        )
    finally:
        codes = [w.finish(60, terminate=True) for w in workers if w.process.poll() is None]
    assert codes == [0] * len(codes), "".join(w.logs()[-2000:] for w in workers)
    stall = longest_stall(decision_times(topics), killed_at, produce_end)
    print(f"{guarantee}, SIGKILL{' and restart' if restart else ''}: {stall}")
    outputs, unique = outputs_by_input(topics)
    return stall.seconds, count, outputs, unique


class TestSigkilledWorker:
    def test_at_least_once_never_restarted_partitions_move_within_15s(
        self, default_broker: Broker, tmp_path: Path
    ) -> None:
        """Node loss or scale-down: the killed worker never comes back; the survivor takes its
        partitions after the 6 s session, and nothing is lost."""
        stall, inputs, _outputs, unique = _kill_one_of_two(
            default_broker, tmp_path, "at-least-once", restart=False
        )
        assert unique == inputs, "an input was lost"
        assert stall <= LIMIT

    def test_exactly_once_restarted_in_place_moves_within_15s_without_duplicates(
        self, default_broker: Broker, tmp_path: Path
    ) -> None:
        """SIGKILL or OOM kill of a container, restarted under its name: its transactional.id
        fences and aborts what the dead one left open at once, so no partition waits for the
        transaction timeout; exactly one output per input."""
        stall, inputs, outputs, unique = _kill_one_of_two(
            default_broker, tmp_path, "exactly-once", restart=True
        )
        assert unique == inputs, "an input was lost"
        assert outputs == unique, "an input was decided twice"
        assert stall <= LIMIT
