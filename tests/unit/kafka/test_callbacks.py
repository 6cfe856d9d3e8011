"""Client callbacks: readiness follows membership and authentication; repeats are throttled."""

from __future__ import annotations

import json
import logging

import pytest
from confluent_kafka import KafkaError
from prometheus_client import CollectorRegistry

from consumer.kafka.callbacks import ClientEvents
from consumer.service.health import Health
from consumer.service.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None) -> tuple[ClientEvents, Health]:
    health = Health(stall_timeout=60)
    health.policy_loaded = True
    return ClientEvents(Metrics(CollectorRegistry()), health, clock or Clock()), health


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
        events, health = make()
        health.joined = True
        events.on_error(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"))
        ok, detail = health.ready()
        assert not ok
        assert detail.startswith("authentication failed: _AUTHENTICATION")
        assert events.fatal is None  # credentials fixed on the broker side heal without restart
        events.on_stats(stats(broker_state="UP"))
        assert health.ready() == (True, "ok")

    @pytest.mark.parametrize(
        "code",
        [KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED],
        ids=["group", "topic"],
    )
    def test_authorization_failure_stops_the_worker(self, code: int) -> None:
        """No message can get past a missing ACL: the loop raises it as one line."""
        events, _health = make()
        events.on_error(KafkaError(code))
        assert events.fatal is not None
        assert KafkaError(code).name() in str(events.fatal)

    def test_statistics_keep_partition_offsets_for_lag(self) -> None:
        """High watermark and committed offset per partition; the -1 internal partition is skipped."""
        events, _ = make()
        events.on_stats(stats())
        assert events.partition_stats == {("in", 0): (50, 20)}


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
