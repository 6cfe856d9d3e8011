"""One HTTP server for /metrics, /healthz and /readyz, reading a Health snapshot the worker updates."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclass(slots=True)
class Health:
    """Written by the worker loop, read by HTTP threads; plain attribute writes are atomic in CPython."""

    stall_timeout: float
    clock: Callable[[], float] = time.monotonic
    policy_loaded: bool = False
    joined: bool = False
    broker_up: bool = True
    stopping: bool = False
    #: A client error readiness reports by name (e.g. authentication failed), until it heals.
    client_problem: str | None = None
    #: Why start-up is waiting (e.g. the schema registry is unreachable), until it is done.
    waiting_for: str | None = None
    last_turn: float = field(default=0.0)

    def beat(self) -> None:
        """The loop completed a turn."""
        self.last_turn = self.clock()

    def live(self) -> tuple[bool, str]:
        if self.last_turn == 0.0:
            return True, "starting"
        idle = self.clock() - self.last_turn
        if idle > self.stall_timeout:
            return False, f"loop stalled for {idle:.0f}s (limit {self.stall_timeout:.0f}s)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if not self.policy_loaded:
            return False, "policy not loaded"
        if self.stopping:
            return False, "shutting down"
        if self.waiting_for is not None:
            return False, self.waiting_for
        if self.client_problem is not None:
            return False, self.client_problem
        if not self.broker_up:
            return False, "broker unreachable"
        if not self.joined:
            return False, "not joined to the consumer group"
        return True, "ok"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the JSON logs."""


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A slow scrape must not block a probe."""

    daemon_threads = True


class HealthServer:
    """Serves metrics from `registry` and probes from `health` on a daemon thread; `stop()` shuts it."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health) -> None:
        metrics_app = make_wsgi_app(registry)

        def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                return _probe(health.live(), start_response)
            if path == "/readyz":
                return _probe(health.ready(), start_response)
            if path == "/metrics":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics, /healthz or /readyz\n"]

        self._server: WSGIServer = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _probe(state: tuple[bool, str], start_response: StartResponse) -> list[bytes]:
    ok, detail = state
    start_response(
        "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")]
    )
    return [json.dumps({"ok": ok, "detail": detail}).encode() + b"\n"]
