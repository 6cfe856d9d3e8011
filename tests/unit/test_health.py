"""Health: liveness follows the loop's heartbeat, readiness follows policy, group and broker."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from consumer.health import Health, HealthServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestHealth:
    def test_live_until_the_loop_stalls(self) -> None:
        """A loop that has not turned for longer than stall_timeout is reported dead."""
        clock = FakeClock()
        health = Health(stall_timeout=10, clock=clock)
        health.beat()
        clock.now += 10
        assert health.live()[0] is True
        clock.now += 1
        ok, detail = health.live()
        assert ok is False
        assert "stalled" in detail

    @pytest.mark.parametrize(
        ("policy", "joined", "broker", "stopping", "expected"),
        [
            (True, True, True, False, (True, "ok")),
            (False, True, True, False, (False, "policy not loaded")),
            (True, False, True, False, (False, "not joined to the consumer group")),
            (True, True, False, False, (False, "broker unreachable")),
            (True, True, True, True, (False, "shutting down")),
        ],
        ids=["ready", "no-policy", "not-joined", "broker-down", "stopping"],
    )
    def test_ready_needs_policy_group_and_broker(
        self, policy, joined, broker, stopping, expected
    ) -> None:
        """Readiness is the conjunction of the conditions operators care about, with the first reason."""
        health = Health(
            stall_timeout=10,
            policy_loaded=policy,
            joined=joined,
            broker_up=broker,
            stopping=stopping,
        )
        assert health.ready() == expected


class TestHealthServer:
    def test_serves_metrics_and_probes(self) -> None:
        """One server answers /metrics from the injected registry and the two probes."""
        registry = CollectorRegistry()
        Counter("demo_things", "Things.", registry=registry).inc(3)
        health = Health(stall_timeout=10)
        server = HealthServer("127.0.0.1", 0, registry, health)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            body = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
            assert "demo_things_total 3.0" in body
            assert urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(f"{base}/readyz", timeout=5)
            assert info.value.code == 503
            assert json.loads(info.value.read())["detail"] == "policy not loaded"
            health.policy_loaded = health.joined = True
            assert urllib.request.urlopen(f"{base}/readyz", timeout=5).status == 200
        finally:
            server.stop()
