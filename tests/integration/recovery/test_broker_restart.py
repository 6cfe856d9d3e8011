"""After a broker restart no partition stands still for more than 15 s, in either guarantee.

One at-least-once and one exactly-once worker, each in its own group on its own topics, decide
400 events/s each on 6 partitions while the single node is stopped and started once; from the
moment the broker is back, the test measures the longest time any partition went without a
decision. The exactly-once worker used to hang in librdkafka's send_offsets_to_transaction
(librdkafka #5456, #5511) and hold all its partitions for the watchdog's 60 s.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import Broker, Topics, WorkerProcess, make_topics, start_worker
from tests.integration.recovery.stalls import Stall, decision_times, longest_stall
from tests.integration.tally import outputs_by_input
from tests.integration.test_exactly_once import done, skipped_markers
from tests.waiting import all_committed, wait_until

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_700_000_000_000)
RATE = 400.0
#: Seconds of input: the restart begins ~5 s in and takes ~15-20 s, so input still arrives
#: 15 s after the broker is back.
SECONDS = 45
LIMIT = 15.0
GUARANTEES = ("at-least-once", "exactly-once")


@dataclass
class Run:
    """One guarantee's group: its topics, its worker, its input. A worker that stops itself (the
    watchdog's exit 1) is started again within 0.2 s, as the kubelet restarts a container."""

    guarantee: str
    topics: Topics
    tmp_path: Path
    worker: WorkerProcess = field(init=False)
    restarts: int = 0
    _done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.worker = self._start()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self) -> None:
        while not self._done.wait(0.2):
            with self._lock:
                if not self._done.is_set() and self.worker.process.poll() is not None:
                    self.restarts += 1
                    self.worker = self._start()

    def finish(self) -> int:
        """Stop supervising, then SIGTERM the worker and return its exit code."""
        with self._lock:
            self._done.set()
        return self.worker.finish(60, terminate=True)

    def _start(self) -> WorkerProcess:
        return start_worker(
            self.topics,
            self.tmp_path,
            IMPORT_CLOSURE_PROCESSING_GUARANTEE=self.guarantee,
            IMPORT_CLOSURE_WORKER_ID=f"restart-{self.guarantee}",
        )

    def all_committed(self) -> bool:
        s = self.topics.settings
        return all_committed(self.topics.client_conf(), s.group_id, s.input_topic)

    def decided_more_than(self, events: int) -> bool:
        return done(self.worker) > events

    def producing(self, count: int, seed: int) -> threading.Thread:
        s = self.topics.settings
        return threading.Thread(
            target=produce_samples,
            args=(s, s.input_topic),
            kwargs={"count": count, "seed": seed, "rate": RATE, "spec": SPEC},
        )


class TestBrokerRestart:
    def test_both_guarantees_resume_within_15s_and_exactly_once_decides_each_input_once(
        self, default_broker: Broker, tmp_path: Path
    ) -> None:
        """Broker stopped and started under load: every partition of both groups moves within
        15 s of the broker being back; nothing lost; exactly-once duplicates nothing (unless
        the broker skipped markers: KAFKA-20734)."""
        broker = default_broker
        log_start = broker.server_log.stat().st_size
        runs = [Run(g, make_topics(broker, partitions=6), tmp_path) for g in GUARANTEES]
        count = int(RATE * SECONDS)
        try:
            threads = [run.producing(count, seed) for seed, run in enumerate(runs, 43)]
            produce_start = time.time()
            for thread in threads:
                thread.start()
            for run in runs:
                wait_until(partial(run.decided_more_than, 1000), 60, f"{run.guarantee} progress")
            stopped_at = time.time()
            broker.stop()
            broker.start()
            back_at = time.time()
            for thread in threads:
                thread.join(SECONDS + 120)
            produce_end = max(produce_start + SECONDS, back_at + LIMIT + 1)
            for run in runs:
                wait_until(
                    run.all_committed,
                    180,
                    f"every {run.guarantee} offset committed",
                    interval=1.0,
                )
        finally:
            codes = [run.finish() for run in runs]
        assert codes == [0, 0], "".join(run.worker.logs()[-2000:] for run in runs)
        stalls: dict[str, Stall] = {}
        for run in runs:
            stalls[run.guarantee] = longest_stall(decision_times(run.topics), back_at, produce_end)
        print(
            f"broker restart (down {back_at - stopped_at:.1f}s): "
            + "; ".join(
                f"{g}: {stall}, restarts {r.restarts}"
                for (g, stall), r in zip(stalls.items(), runs, strict=True)
            )
        )
        at_least_once, exactly_once = runs
        outputs, unique = outputs_by_input(at_least_once.topics)
        assert unique == count, "an at-least-once input was lost"
        outputs, unique = outputs_by_input(exactly_once.topics)
        print(f"exactly-once: inputs {count}, outputs {outputs}, distinct {unique}")
        dropped = skipped_markers(broker, log_start)
        if (unique != count or outputs != unique) and dropped:
            pytest.xfail(f"broker skipped transaction markers (KAFKA-20734): {dropped}")
        assert unique == count, "an exactly-once input was lost"
        assert outputs == unique, "an exactly-once input was decided twice"
        assert {g: s.seconds for g, s in stalls.items() if s.seconds > LIMIT} == {}
