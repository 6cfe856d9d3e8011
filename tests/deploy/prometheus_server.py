"""A real Prometheus (Debian's `prometheus` package) on 127.0.0.1 for tests: start, query, stop.

    with running_prometheus(tmp_path, targets=["127.0.0.1:9400"], rule_files=[RULES]) as prom:
        prom.wait_for('up{job="import-closure"} == 1', seconds=30)
        samples = prom.query("job:import_closure_events:rate5m")

It scrapes the targets under job="import-closure" every second and evaluates the rule files every
second, so rates and recording rules have data a few seconds after start.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.contract import JOB
from tests.deploy.tools import require
from tests.waiting import wait_until


class PromQLError(AssertionError):
    """Prometheus answered a query with status error; keeps the expression and the answer."""

    def __init__(self, expr: str, response: Mapping[str, Any]) -> None:
        self.expr = expr
        self.response = dict(response)
        msg = f"{response.get('errorType')}: {response.get('error')}\n  in: {expr}"
        super().__init__(msg)


@dataclass
class PrometheusServer:
    """A running server; `url` is http://127.0.0.1:PORT."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET /api/v1/<path>; the decoded JSON answer, whether status is success or error."""
        query = urllib.parse.urlencode(params)
        request = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error body
            body = exc.read()
        answer: dict[str, Any] = json.loads(body)
        return answer

    def query_response(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """The raw answer of an instant query: status, data or errorType/error."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant-query result (a vector's samples, or [scalar]); PromQLError unless success."""
        answer = self.query_response(expr, at)
        if answer.get("status") != "success":
            raise PromQLError(expr, answer)
        data = answer["data"]
        result: list[dict[str, Any]] = (
            data["result"] if data["resultType"] in ("vector", "matrix") else [data]
        )
        return result

    def wait_for(self, expr: str, seconds: float = 30.0) -> list[dict[str, Any]]:
        """Query until the result is non-empty; TimeoutError naming the expression otherwise."""
        return wait_until(lambda: self.query(expr), seconds, f"a result for {expr}", interval=0.5)

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets")["data"]["activeTargets"]
        return active

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["data"]["groups"]
        return groups

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(
    path: Path,
    targets: Sequence[str],
    rule_files: Sequence[Path],
    target_labels: Mapping[str, str],
    interval: str,
) -> None:
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_timeout": interval,
                "static_configs": [{"targets": list(targets), "labels": dict(target_labels)}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@contextmanager
def running_prometheus(
    workdir: Path,
    targets: Sequence[str] = (),
    rule_files: Sequence[Path] = (),
    *,
    target_labels: Mapping[str, str] | None = None,
    interval: str = "1s",
    start_timeout: float = 60.0,
) -> Iterator[PrometheusServer]:
    """Start `prometheus` on a free 127.0.0.1 port scraping `targets` (host:port, job
    import-closure, plus `target_labels`) and evaluating `rule_files`; wait until /-/ready
    answers; stop it on exit. Config, data and log live in `workdir`."""
    binary = require("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    write_config(config_path, targets, rule_files, target_labels or {}, interval)
    port = _free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until(
            lambda: _ready(server),
            start_timeout,
            f"prometheus on 127.0.0.1:{port} to be ready",
            interval=0.2,
        )
        yield server
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n--- prometheus log ---\n{server.log_tail()}") from exc
    finally:
        server.stop()


def _ready(server: PrometheusServer) -> bool:
    if server.process.poll() is not None:
        msg = f"prometheus exited with {server.process.returncode}:\n{server.log_tail()}"
        raise RuntimeError(msg)
    try:
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
            return int(response.status) == 200
    except OSError:  # connection refused while starting, or 503 while loading the TSDB
        return False
