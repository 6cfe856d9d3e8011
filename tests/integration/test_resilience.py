"""Signals, crashes, rebalances and broker outages lose nothing."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from consumer.codec import AvroCodec
from consumer.core.sample import SampleSpec
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import Broker, Topics, WorkerProcess, make_topics, start_worker
from tests.integration.scrape import events_done, status, value
from tests.waiting import all_committed, committed, drain, end_offsets, wait_until

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_700_000_000_000)


def _events_done(worker: WorkerProcess) -> float:
    worker.assert_running()
    return events_done(worker.base_url)


def _finish(worker: WorkerProcess, seconds: float = 60) -> int:
    try:
        worker.process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        raise AssertionError("worker did not exit in time:\n" + worker.logs()[-3000:]) from None
    return int(worker.process.returncode)


def _decided_event_ids(topics: Topics) -> list[str]:
    codec = AvroCodec()
    return [
        codec.decode_decision(r.value or b"").event_id
        for r in drain(topics.client_conf(), topics.settings.approved_topic)
    ]


class TestGracefulShutdown:
    def test_sigterm_mid_stream_commits_and_restart_resumes(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """SIGTERM: exit 0 with offsets committed for delivered work; a restart finishes; nothing lost."""
        s = topics.settings
        count = 60_000
        produce_samples(s, s.input_topic, count=count, seed=5, spec=SPEC)
        worker = start_worker(topics, tmp_path)
        wait_until(lambda: _events_done(worker) > 1000, 60, "the worker to make progress")
        worker.process.send_signal(signal.SIGTERM)
        assert _finish(worker, 30) == 0, worker.logs()[-3000:]
        assert '"shutting down"' in worker.logs()

        offsets = committed(topics.client_conf(), s.group_id, s.input_topic)
        assert sum(max(0, o) for o in offsets.values()) > 0, "nothing committed on SIGTERM"
        first_run = len(_decided_event_ids(topics))
        # Committed offsets never run ahead of decisions that exist.
        assert sum(max(0, o) for o in offsets.values()) <= first_run

        restarted = start_worker(topics, tmp_path, "--until-idle", "3")
        assert _finish(restarted, 120) == 0, restarted.logs()[-3000:]
        ids = _decided_event_ids(topics)
        assert len(set(ids)) == count
        assert committed(topics.client_conf(), s.group_id, s.input_topic) == end_offsets(
            topics.client_conf(), s.input_topic
        )


class TestGroupFailover:
    def test_two_workers_split_partitions_and_survive_a_sigkill(
        self, broker: Broker, tmp_path: Path
    ) -> None:
        """Two workers share 6 partitions; after SIGKILL of one the other finishes everything."""
        topics = make_topics(broker, partitions=6)
        s = topics.settings
        count = 60_000
        first = start_worker(topics, tmp_path)
        second = start_worker(topics, tmp_path)
        try:

            def both_assigned() -> bool:
                a = value(first.base_url, "import_closure_assigned_partitions") or 0
                b = value(second.base_url, "import_closure_assigned_partitions") or 0
                return a > 0 and b > 0 and a + b == 6

            wait_until(lambda: _safe(both_assigned), 90, "both workers to hold partitions")
            produce_samples(s, s.input_topic, count=count, seed=9, spec=SPEC)
            wait_until(lambda: _events_done(second) > 500, 60, "the second worker to make progress")
            second.process.kill()
            second.process.wait(10)
            wait_until(
                lambda: value(first.base_url, "import_closure_assigned_partitions") == 6,
                120,
                "the survivor to take over all partitions",
            )
            wait_until(
                lambda: all_committed(topics.client_conf(), s.group_id, s.input_topic),
                120,
                "all offsets to be committed",
            )
        finally:
            for w in (first, second):
                if w.process.poll() is None:
                    w.process.send_signal(signal.SIGTERM)
        assert _finish(first, 40) == 0, first.logs()[-3000:]
        ids = _decided_event_ids(topics)
        assert len(set(ids)) == count, "an event was lost"
        assert len(ids) >= count


def _safe(predicate: Callable[[], bool]) -> bool:
    try:
        return bool(predicate())
    except OSError:
        return False


class TestBrokerOutage:
    def test_worker_waits_reports_not_ready_and_resumes(
        self, broker: Broker, tmp_path: Path
    ) -> None:
        """Broker stopped and restarted: the worker survives, /readyz says 503 meanwhile, nothing lost."""
        if not broker.managed:
            pytest.skip(
                "needs the session's own broker to stop and start it (IMPORT_CLOSURE_TEST_BOOTSTRAP set)"
            )
        topics = make_topics(broker)
        s = topics.settings
        produce_samples(s, s.input_topic, count=2000, seed=21, spec=SPEC)
        worker = start_worker(topics, tmp_path)
        try:
            wait_until(lambda: _events_done(worker) >= 2000, 60, "the first batch to be decided")
            assert status(f"{worker.base_url}/readyz") == 200
            broker.stop()
            wait_until(lambda: status(f"{worker.base_url}/readyz") == 503, 60, "readiness to drop")
            assert status(f"{worker.base_url}/healthz") == 200
            assert worker.process.poll() is None
            broker.start()
            produce_samples(s, s.input_topic, count=2000, seed=22, spec=SPEC)
            wait_until(lambda: _events_done(worker) >= 4000, 120, "work after the outage")
            wait_until(
                lambda: status(f"{worker.base_url}/readyz") == 200, 60, "readiness to return"
            )
        finally:
            worker.process.send_signal(signal.SIGTERM)
        assert _finish(worker, 40) == 0, worker.logs()[-3000:]
        assert len(set(_decided_event_ids(topics))) == 4000
