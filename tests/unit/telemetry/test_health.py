"""Health: liveness follows the loop's heartbeat, readiness follows policy, group and broker."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from consumer.errors import ConfigError
from consumer.telemetry.health import HTTP_WORKERS, Health, HealthServer
from tests.waiting import wait_until


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


def _request(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP request and read the whole answer (the server closes after one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture
def server() -> Iterator[HealthServer]:
    registry = CollectorRegistry()
    Counter("demo_things", "Things.", registry=registry).inc(3)
    health = Health(stall_timeout=10, policy_loaded=True, joined=True)
    # A short idle timeout, so the tests that wait for it stay quick; the default is IDLE_TIMEOUT.
    http = HealthServer("127.0.0.1", 0, registry, health, idle_timeout=1.0)
    http.start()
    try:
        yield http
    finally:
        http.stop()


class TestMethods:
    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
    @pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "OPTIONS"])
    def test_only_get_and_head_are_allowed(
        self, server: HealthServer, path: str, method: str
    ) -> None:
        """Anything but GET or HEAD is 405 with an Allow header, on every route."""
        status, headers, _ = _request(
            server.port,
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode(),
        )
        assert status == 405
        assert headers["allow"] == "GET, HEAD"

    @pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
    def test_head_answers_like_get_without_a_body(self, server: HealthServer, path: str) -> None:
        status, headers, body = _request(
            server.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert status == 200
        assert int(headers["content-length"]) > 0
        assert body == b""

    def test_unknown_path_is_404_whatever_the_method(self, server: HealthServer) -> None:
        status, _, _ = _request(server.port, b"POST /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 404


class TestConnections:
    def test_idle_connections_do_not_add_threads_and_probes_still_answer(self) -> None:
        """200 connections that never send a request: the thread count stays at the fixed pool,
        and a probe made meanwhile is answered (default idle timeout: they are all still open)."""
        health = Health(stall_timeout=10)
        server = HealthServer("127.0.0.1", 0, CollectorRegistry(), health)
        server.start()
        before = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(200)]
        try:
            # Accepted in order: once this probe is answered, every idle connection was accepted.
            status, _, body = _request(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200
            assert json.loads(body)["ok"] is True
            assert threading.active_count() <= before
        finally:
            for conn in idle:
                conn.close()
            server.stop()

    def test_threads_are_bounded_by_the_pool(self) -> None:
        """The server uses one accepting thread plus HTTP_WORKERS request threads, no more."""
        before = threading.active_count()
        http = HealthServer("127.0.0.1", 0, CollectorRegistry(), Health(stall_timeout=10))
        http.start()
        try:
            assert threading.active_count() - before == 1 + HTTP_WORKERS
        finally:
            http.stop()
        assert wait_until(lambda: threading.active_count() == before, 5, "http threads to end")

    def test_an_idle_connection_is_closed_after_the_idle_timeout(
        self, server: HealthServer
    ) -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            assert conn.recv(1) == b""  # closed by the server (idle_timeout 1 s), not by our 5 s

    def test_a_request_that_stalls_halfway_is_closed_and_frees_its_thread(
        self, server: HealthServer
    ) -> None:
        """A client that starts a request and stops sending holds a worker only until the timeout."""
        stalled = [
            socket.create_connection(("127.0.0.1", server.port), timeout=5)
            for _ in range(HTTP_WORKERS)
        ]
        try:
            for conn in stalled:
                conn.sendall(b"GET /healthz HTTP/1.1\r\n")
            for conn in stalled:
                assert conn.recv(1) == b""
            status, _, _ = _request(server.port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200
        finally:
            for conn in stalled:
                conn.close()


class TestPortInUse:
    def test_a_port_in_use_is_a_config_error_naming_host_and_port(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port}.*http_host.*in use"):
                HealthServer("127.0.0.1", port, CollectorRegistry(), Health(stall_timeout=10))

    def test_stop_without_start_returns(self) -> None:
        http = HealthServer("127.0.0.1", 0, CollectorRegistry(), Health(stall_timeout=10))
        http.stop()
