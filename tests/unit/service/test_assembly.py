"""The one assembler against a recording Job: what it asks of a job and in which order, what it
hands the worker, and what it takes down again. The clients are real (no broker is reached:
bootstrap is a closed port); the job's consumer, source and decider are fakes of our seams."""

from __future__ import annotations

import logging
import socket
import threading
from unittest.mock import create_autospec

import pytest
from confluent_kafka import KafkaError

from consumer import config
from consumer.codec import AvroCodec
from consumer.core.pipeline import Decider
from consumer.core.summary import RunSummary
from consumer.errors import ConfigError, KafkaClientError
from consumer.kafka.callbacks import ClientCallbacks
from consumer.kafka.clients import Consumer
from consumer.kafka.membership import GroupMember
from consumer.kafka.source import Source
from consumer.service.assembly import assemble, build_codec, decision_subjects
from consumer.service.worker import PolicyUpdates, Worker
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings
from tests.registry_standin import running_registry

#: Nothing listens on port 1 of the loopback address: the producer never reaches a broker.
SETTINGS = config.load(
    env={
        "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "IMPORT_CLOSURE_HTTP_HOST": "127.0.0.1",
    }
)


class RecordingJob:
    """A Job that records each call; `fail_in` raises ConfigError from that step."""

    def __init__(self, http_port: int | None = None, fail_in: str | None = None) -> None:
        self.settings = SETTINGS
        self.http_port = http_port
        self.fail_in = fail_in
        self.calls: list[str] = []
        self.client = create_autospec(Consumer, instance=True, spec_set=True)
        self.input = create_autospec(Source, instance=True, spec_set=True)
        self.summary = RunSummary(started=0.0)
        self.callbacks: ClientCallbacks | None = None
        self.worker: Worker | None = None

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_in:
            raise ConfigError(f"{name} failed")

    def prepare(self, metrics: Metrics) -> PolicyUpdates | None:
        self._step("prepare")
        return None

    def consumer(self, callbacks: ClientCallbacks) -> Consumer:
        self._step("consumer")
        self.callbacks = callbacks
        client: Consumer = self.client
        return client

    def source(self, member: GroupMember, health: Health, warnings: Warnings) -> Source:
        self._step("source")
        assert member.current() is self.client
        source: Source = self.input
        return source

    def decider(self, codec: AvroCodec) -> Decider:
        self._step("decider")
        decider: Decider = create_autospec(Decider, instance=True, spec_set=True)
        return decider

    def run(self, worker: Worker) -> RunSummary:
        self._step("run")
        self.worker = worker
        return self.summary

    def close(self) -> None:
        self.calls.append("close")


class TestAssemble:
    def test_a_job_is_asked_in_order_run_and_closed(self) -> None:
        """prepare before any client, the consumer before the source, the decider once the codec
        exists, then run; close whatever happened."""
        job = RecordingJob()
        ran = assemble(job, threading.Event())
        assert job.calls == ["prepare", "consumer", "source", "decider", "run", "close"]
        assert ran.summary is job.summary
        assert job.worker is not None

    def test_a_worker_that_ran_owns_the_consumer(self) -> None:
        """The worker closes its source and so the consumer; the assembler does not close it twice."""
        job = RecordingJob()
        assemble(job, threading.Event())
        job.client.close.assert_not_called()

    @pytest.mark.parametrize("step", ["source", "decider"])
    def test_a_failure_before_the_worker_runs_closes_the_consumer_and_the_job(
        self, step: str
    ) -> None:
        """Nothing is left open when start-up fails after the consumer exists."""
        job = RecordingJob(fail_in=step)
        with pytest.raises(ConfigError, match=f"{step} failed"):
            assemble(job, threading.Event())
        job.client.close.assert_called_once_with()
        assert job.calls[-1] == "close"

    def test_a_failure_in_prepare_builds_no_client(self) -> None:
        """A bad policy stops start-up before any Kafka client exists."""
        job = RecordingJob(fail_in="prepare")
        with pytest.raises(ConfigError, match="prepare failed"):
            assemble(job, threading.Event())
        assert "consumer" not in job.calls

    def test_the_loop_raises_what_the_client_callbacks_recorded(self) -> None:
        """The callbacks and the worker share one Faults: a fatal client error stops the loop."""

        class FatalDuringRun(RecordingJob):
            def run(self, worker: Worker) -> RunSummary:
                assert self.callbacks is not None
                self.callbacks.on_error(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
                return worker.run()

        job = FatalDuringRun()
        with pytest.raises(KafkaClientError, match="fatal Kafka client error"):
            assemble(job, threading.Event())
        job.input.close.assert_called_once_with()  # the worker closed its source on the way out


class TestServing:
    def test_without_a_port_nothing_is_served_and_no_process_metrics_are_kept(self) -> None:
        """replay without --http-port: our series only."""
        ran = assemble(RecordingJob(http_port=None), threading.Event())
        assert ran.registry.get_sample_value("process_cpu_seconds_total") is None
        assert ran.registry.get_sample_value("import_closure_commit_failures_total") == 0

    def test_with_a_port_it_serves_while_the_job_runs_and_stops_after(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The port is logged once listening, and closed when the job is over."""
        with caplog.at_level(logging.INFO, logger="consumer.service.assembly"):
            ran = assemble(RecordingJob(http_port=0), threading.Event())
        [line] = [r for r in caplog.records if r.getMessage() == "http server listening"]
        port = line.port  # type: ignore[attr-defined]
        assert ran.registry.get_sample_value("process_cpu_seconds_total") is not None
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
            pass


class TestDecisionSubjects:
    @pytest.mark.parametrize(
        ("env", "subjects"),
        [
            ({}, ["listing-decisions-value"]),
            (
                {"IMPORT_CLOSURE_APPROVED_TOPIC": "ok", "IMPORT_CLOSURE_REJECTED_TOPIC": "no"},
                ["ok-value", "no-value"],
            ),
            (
                {
                    "IMPORT_CLOSURE_SHADOW_POLICY": "bundled:id-akar-import-closure",
                    "IMPORT_CLOSURE_SHADOW_TOPIC": "sh",
                },
                ["listing-decisions-value", "sh-value"],
            ),
        ],
        ids=["one-topic-one-subject", "approved-and-rejected", "with-shadow-topic"],
    )
    def test_every_decision_topic_has_its_subject_once(
        self, env: dict[str, str], subjects: list[str]
    ) -> None:
        """Consumers look a topic's schema up by `<topic>-value`; the same topic registers once."""
        assert decision_subjects(config.load(env=env)) == subjects


class TestBuildCodec:
    def test_registers_the_decision_schema_under_each_decision_subject_at_start(self) -> None:
        """Approved and rejected topics differ: both subjects get ListingDecision, in that order."""
        with running_registry({}) as registry:
            env = {
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": registry.url,
                "IMPORT_CLOSURE_APPROVED_TOPIC": "ok",
                "IMPORT_CLOSURE_REJECTED_TOPIC": "no",
            }
            codec = build_codec(config.load(env=env))
        assert [subject for subject, _ in registry.registered] == ["ok-value", "no-value"]
        assert isinstance(codec, AvroCodec)
