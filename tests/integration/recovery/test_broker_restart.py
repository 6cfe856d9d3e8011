"""After a broker restart no partition stands still for more than 15 s, exactly once.

An exactly-once worker decides 400 events/s on 6 partitions while the single node is stopped
and started; from the moment the broker is back, the test measures the longest time any
partition went without a decision. A worker stuck in librdkafka's send_offsets_to_transaction
(librdkafka #5456, #5511) used to hold all of them for the watchdog's 60 s.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import Broker, make_topics, start_worker
from tests.integration.recovery.stalls import decision_times, longest_stall
from tests.integration.test_exactly_once import done, outputs_by_input, skipped_markers
from tests.waiting import all_committed, wait_until

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_700_000_000_000)
RATE = 400.0
#: Seconds of input: the restart begins ~5 s in and takes ~15-20 s, so input still arrives
#: 15 s after the broker is back.
SECONDS = 45
LIMIT = 15.0


class TestBrokerRestart:
    def test_exactly_once_resumes_within_15s_and_decides_each_input_once(
        self, default_broker: Broker, tmp_path: Path
    ) -> None:
        """Broker stopped and started under load: every partition moves within 15 s of the broker
        being back; lost 0, duplicated 0 (unless the broker skipped markers: KAFKA-20734)."""
        broker = default_broker
        log_start = broker.server_log.stat().st_size
        topics = make_topics(broker, partitions=6)
        s = topics.settings
        worker = start_worker(
            topics,
            tmp_path,
            IMPORT_CLOSURE_PROCESSING_GUARANTEE="exactly-once",
            IMPORT_CLOSURE_WORKER_ID="restart",
        )
        count = int(RATE * SECONDS)
        restarts = 0
        try:
            producing = threading.Thread(
                target=produce_samples,
                args=(s, s.input_topic),
                kwargs={"count": count, "seed": 43, "rate": RATE, "spec": SPEC},
            )
            produce_start = time.time()
            producing.start()
            wait_until(lambda: done(worker) > 1000, 60, "the worker to make progress")
            broker.stop()
            broker.start()
            back_at = time.time()

            def restarted_if_it_stopped_then_committed() -> bool:
                """As an orchestrator would: a worker that stopped itself is started again."""
                nonlocal worker, restarts
                if worker.process.poll() is not None:
                    restarts += 1
                    worker = start_worker(
                        topics,
                        tmp_path,
                        IMPORT_CLOSURE_PROCESSING_GUARANTEE="exactly-once",
                        IMPORT_CLOSURE_WORKER_ID="restart",
                    )
                return all_committed(topics.client_conf(), s.group_id, s.input_topic)

            producing.join(SECONDS + 120)
            produce_end = max(produce_start + SECONDS, back_at + LIMIT + 1)
            wait_until(
                restarted_if_it_stopped_then_committed, 180, "every offset committed", interval=1.0
            )
        finally:
            code = worker.finish(60, terminate=True)
        assert code == 0, worker.logs()[-3000:]
        stall = longest_stall(decision_times(topics), back_at, produce_end)
        outputs, unique = outputs_by_input(topics)
        print(
            f"exactly-once, broker restart: {stall}; restarts {restarts}; "
            f"inputs {count}, outputs {outputs}, distinct {unique}"
        )
        dropped = skipped_markers(broker, log_start)
        if (unique != count or outputs != unique) and dropped:
            pytest.xfail(f"broker skipped transaction markers (KAFKA-20734): {dropped}")
        assert unique == count, "an input was lost"
        assert outputs == unique, "an input was decided twice"
        assert stall.seconds <= LIMIT
