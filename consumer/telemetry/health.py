"""One HTTP server for /metrics, /healthz and /readyz, reading a Health snapshot the worker updates."""

from __future__ import annotations

import errno
import json
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from consumer.errors import ConfigError

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Requests served at once. A scrape and two probes need three; the rest is headroom for a slow
#: scrape or a client that trickles its request (each holds a thread for at most `idle_timeout`).
HTTP_WORKERS = 8
#: Seconds a connection may stay silent: before its request arrives, and between reads or writes
#: while it is served. Probes time out after 3 s and scrapes after 10 s, so 10 s loses nothing.
IDLE_TIMEOUT = 10.0
#: Connections accepted whose request has not arrived yet; at the limit the oldest is closed.
MAX_WAITING = 128
#: Requests that arrived while every worker is busy; beyond this a new one is closed unanswered.
MAX_QUEUED = 64
#: How often the accepting thread closes idle connections (stop() wakes it at once).
_POLL_INTERVAL = 0.2
#: bind() failures that are a setting to fix, not a bug: port taken, privileged port, foreign address.
_CANNOT_LISTEN = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})
_ALLOW = "GET, HEAD"


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


class _WSGIServer(WSGIServer):
    """Binds and listens; HealthServer accepts and dispatches, so serve_forever is never called."""

    # socketserver's default backlog of 5 drops the SYNs of a burst of connections.
    request_queue_size = 64


class HealthServer:
    """Serves metrics from `registry` and probes from `health`; `start()` runs it, `stop()` ends it.

    One thread accepts connections and waits, with a selector, until a request arrives; only then
    is the connection handed to one of `workers` threads. So idle connections cost a file
    descriptor, not a thread, and are closed after `idle_timeout`; the thread count is fixed.
    Binding happens here: a port in use raises ConfigError before anything else starts.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Health,
        *,
        workers: int = HTTP_WORKERS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        app = _app(make_wsgi_app(registry), health)
        try:
            self._server: WSGIServer = make_server(
                host, port, app, server_class=_WSGIServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            if not isinstance(exc, socket.gaierror) and exc.errno not in _CANNOT_LISTEN:
                raise
            msg = f"cannot serve HTTP on {host}:{port} (http_host:http_port): {exc.strerror or exc}"
            raise ConfigError(msg) from exc
        self._idle_timeout = idle_timeout
        self._stopping = threading.Event()
        # Written to by stop(), so the accepting thread's select() returns at once.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._queue: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(MAX_QUEUED)
        self._thread = threading.Thread(target=self._accept_loop, name="http", daemon=True)
        self._workers = [
            threading.Thread(target=self._work, name=f"http-{n}", daemon=True)
            for n in range(workers)
        ]

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close waiting and queued connections, let requests in progress finish."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_writer.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].close()
        started = [w for w in self._workers if w.is_alive()]
        for _ in started:
            self._queue.put(None)
        # Daemon threads: one stuck on a silent client ends at its socket timeout or with the process.
        end = time.monotonic() + 1.0
        for worker in started:
            worker.join(timeout=max(0.0, end - time.monotonic()))
        self._server.server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _accept_loop(self) -> None:
        listener = self._server.socket
        listener.setblocking(False)
        # Connections whose request has not arrived, oldest first: socket -> (deadline, address).
        waiting: dict[socket.socket, tuple[float, Any]] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=_POLL_INTERVAL):
                    if key.fileobj is listener:
                        self._accept(listener, selector, waiting)
                        continue
                    if key.fileobj is self._wake_reader:
                        continue
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    selector.unregister(conn)
                    _, address = waiting.pop(conn)
                    self._dispatch(conn, address)
                self._expire(selector, waiting)
            for conn in waiting:
                conn.close()

    def _accept(
        self,
        listener: socket.socket,
        selector: selectors.BaseSelector,
        waiting: dict[socket.socket, tuple[float, Any]],
    ) -> None:
        while True:
            try:
                conn, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: keep serving the connections we have
                log.warning("http accept failed", extra={"error": str(exc)})
                return
            conn.settimeout(self._idle_timeout)
            if len(waiting) >= MAX_WAITING:
                oldest = next(iter(waiting))
                selector.unregister(oldest)
                del waiting[oldest]
                oldest.close()
            waiting[conn] = (time.monotonic() + self._idle_timeout, address)
            selector.register(conn, selectors.EVENT_READ)

    def _expire(
        self, selector: selectors.BaseSelector, waiting: dict[socket.socket, tuple[float, Any]]
    ) -> None:
        now = time.monotonic()
        # Deadlines grow in insertion order, so the expired ones are at the front.
        while waiting:
            conn, (deadline, _) = next(iter(waiting.items()))
            if deadline > now:
                return
            selector.unregister(conn)
            del waiting[conn]
            conn.close()

    def _dispatch(self, conn: socket.socket, address: Any) -> None:
        try:
            self._queue.put_nowait((conn, address))
        except queue.Full:
            log.warning("http busy: closing a connection unanswered", extra={"queued": MAX_QUEUED})
            conn.close()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            conn, address = item
            try:
                self._server.finish_request(conn, address)
            except OSError as exc:  # a timed-out or reset client; the connection is done either way
                log.debug("http connection dropped", extra={"error": str(exc)})
            finally:
                self._server.shutdown_request(conn)


def _app(metrics_app: WSGIApp, health: Health) -> WSGIApp:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz", "/metrics"):
            return _answer(
                start_response, "404 Not Found", b"not found: try /metrics, /healthz or /readyz\n"
            )
        method = environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD"):
            return _answer(
                start_response,
                "405 Method Not Allowed",
                f"method {method} not allowed: use GET or HEAD\n".encode(),
                [("Allow", _ALLOW)],
            )
        head = method == "HEAD"
        if path == "/metrics":
            # prometheus_client answers GET only; HEAD gets GET's headers without the body.
            answered: list[tuple[str, list[tuple[str, str]]]] = []

            def keep(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
                answered.append((status, headers))

            body = b"".join(metrics_app({**environ, "REQUEST_METHOD": "GET"}, keep))
            status, headers = answered[0]
            return _answer(start_response, status, body, headers, head)
        ok, detail = health.live() if path == "/healthz" else health.ready()
        body = json.dumps({"ok": ok, "detail": detail}).encode() + b"\n"
        status = "200 OK" if ok else "503 Service Unavailable"
        return _answer(start_response, status, body, [("Content-Type", "application/json")], head)

    return app


def _answer(
    start_response: StartResponse,
    status: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    head: bool = False,
) -> list[bytes]:
    headers = [(k, v) for k, v in headers or () if k.lower() != "content-length"]
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "text/plain; charset=utf-8"))
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [] if head else [body]
