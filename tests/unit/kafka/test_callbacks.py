"""Client callbacks: readiness follows membership and authentication, fatal errors become faults,
statistics feed lag, repeats are throttled."""

from __future__ import annotations

import json
import logging

import pytest
from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from consumer.errors import KafkaClientError
from consumer.kafka.callbacks import ClientCallbacks
from consumer.kafka.faults import Faults
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Parts:
    """ClientCallbacks and what it writes to, each readable by the test."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.health = Health(stall_timeout=60)
        self.health.policy_loaded = True
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.faults = Faults()
        warnings = Warnings(clock or Clock())
        self.callbacks = ClientCallbacks(self.health, self.metrics, self.faults, warnings)

    def commit_failures(self) -> float | None:
        return self.registry.get_sample_value("import_closure_commit_failures_total")


def make(clock: Clock | None = None) -> tuple[ClientCallbacks, Health]:
    parts = Parts(clock)
    return parts.callbacks, parts.health


def stats(broker_state: str = "UP", group_state: str | None = "up") -> str:
    body: dict[str, object] = {
        "brokers": {"b1": {"state": broker_state, "nodeid": 1}},
        "topics": {
            "in": {"partitions": {"0": {"hi_offset": 50, "committed_offset": 20}, "-1": {}}}
        },
    }
    if group_state is not None:
        body["cgrp"] = {"state": group_state, "join_state": "init", "assignment_size": 0}
    return json.dumps(body)


class TestReadiness:
    def test_a_member_with_no_partitions_is_ready_once_the_coordinator_is_up(self) -> None:
        """KIP-848 gives a member without partitions no assignment callback: stats say it joined."""
        events, health = make()
        assert health.ready() == (False, "not joined to the consumer group")
        events.on_stats(stats(group_state="up"))
        assert health.ready() == (True, "ok")

    def test_authentication_failure_is_named_in_readiness_until_a_broker_is_up(self) -> None:
        """A wrong password is not reported as an unreachable broker."""
        parts = Parts()
        events, health = parts.callbacks, parts.health
        health.joined = True
        events.on_error(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"))
        ok, detail = health.ready()
        assert not ok
        assert detail.startswith("authentication failed: _AUTHENTICATION")
        assert (
            parts.faults.first is None
        )  # credentials fixed on the broker side heal without restart
        events.on_stats(stats(broker_state="UP"))
        assert health.ready() == (True, "ok")

    def test_a_tls_failure_is_named_as_tls_not_as_an_unreachable_broker(self) -> None:
        """An untrusted CA fails the handshake: readiness says TLS, and the worker keeps trying."""
        parts = Parts()
        parts.health.joined = True
        parts.callbacks.on_error(KafkaError(KafkaError._SSL, "certificate verify failed"))
        ok, detail = parts.health.ready()
        assert not ok
        assert detail.startswith("TLS handshake with the broker failed: _SSL")
        assert parts.faults.first is None

    @pytest.mark.parametrize(
        "code",
        [KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED],
        ids=["group", "topic"],
    )
    def test_authorization_failure_stops_the_worker(self, code: int) -> None:
        """No message can get past a missing ACL: a fault the loop raises as one line."""
        parts = Parts()
        parts.callbacks.on_error(KafkaError(code))
        fault = parts.faults.first
        assert isinstance(fault, KafkaClientError)
        assert str(fault).startswith(f"fatal Kafka client error: {KafkaError(code).name()}")


class TestQuietLogs:
    def test_connection_failures_are_not_logged_twice(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """librdkafka logs a refused connection itself; our copy of it stays at DEBUG."""
        events, _ = make()
        with caplog.at_level(logging.INFO):
            events.on_error(KafkaError(KafkaError._TRANSPORT, "Connect failed"))
        assert [r for r in caplog.records if r.name == "consumer.kafka.callbacks"] == []

    def test_repeated_client_errors_are_throttled(self, caplog: pytest.LogCaptureFixture) -> None:
        """One line per kind of error and interval, then one carrying the number suppressed."""
        clock = Clock()
        events, _ = make(clock)
        with caplog.at_level(logging.WARNING, logger="consumer.kafka.callbacks"):
            for _ in range(50):
                events.on_error(KafkaError(KafkaError._MSG_TIMED_OUT))
            clock.now += 31
            events.on_error(KafkaError(KafkaError._MSG_TIMED_OUT))
        lines = [r for r in caplog.records if r.name == "consumer.kafka.callbacks"]
        assert len(lines) == 2
        assert getattr(lines[1], "suppressed", None) == 49

    def test_librdkafka_log_lines_become_structured_and_throttled(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """librdkafka's FAIL lines arrive as records with facility and client; repeats are held."""
        events, _ = make()
        text = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed (after {}ms in state CONNECT)"
        with caplog.at_level(logging.INFO, logger="consumer.librdkafka"):
            for n in range(20):
                events.logger.log(
                    logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", text.format(n)
                )
        [line] = [r for r in caplog.records if r.name == "consumer.librdkafka"]
        assert line.getMessage() == text.format(0)
        assert (line.facility, line.client) == ("FAIL", "rdkafka#consumer-1")  # type: ignore[attr-defined]


class TestFaults:
    def test_only_the_first_fatal_error_is_kept(self) -> None:
        """Later fatal errors are consequences of the first: the loop raises the first one."""
        parts = Parts()
        parts.callbacks.on_error(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
        parts.callbacks.on_error(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
        assert "GROUP_AUTHORIZATION_FAILED" in str(parts.faults.first)

    def test_transient_errors_are_not_faults(self) -> None:
        """librdkafka reconnects by itself: a refused connection stops nothing."""
        parts = Parts()
        parts.callbacks.on_error(KafkaError(KafkaError._TRANSPORT, "Connect failed"))
        assert parts.faults.first is None
        assert parts.health.broker_up is False


class TestCommits:
    def test_a_failed_commit_is_counted_and_logged_with_its_partitions(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The commit callback counts failures for the alert and names partitions as topic[p]."""
        parts = Parts()
        error = KafkaError(KafkaError.REBALANCE_IN_PROGRESS)
        with caplog.at_level(logging.WARNING, logger="consumer.kafka.callbacks"):
            parts.callbacks.on_commit(error, [TopicPartition("in", 3)])
        assert parts.commit_failures() == 1
        [line] = caplog.records
        assert line.getMessage() == "offset commit failed"
        assert line.partitions == ["in[3]"]  # type: ignore[attr-defined]

    def test_nothing_to_commit_is_not_a_failure(self) -> None:
        """librdkafka reports _NO_OFFSET when no offset was stored since the last commit."""
        parts = Parts()
        parts.callbacks.on_commit(KafkaError(KafkaError._NO_OFFSET), [TopicPartition("in", 0)])
        assert parts.commit_failures() == 0


class TestClientSettings:
    def test_every_client_gets_errors_and_log_lines_and_a_consumer_also_commits_and_stats(
        self,
    ) -> None:
        """What the assembler hands each client; the producer has no commits or statistics."""
        callbacks = Parts().callbacks
        assert set(callbacks.clients()) == {"error_cb", "logger"}
        assert set(callbacks.consumer()) == {"error_cb", "logger", "on_commit", "stats_cb"}
