"""The real schema registry of the integration tests: deploy/registry-local (Apicurio Registry).

One per session, with basic auth and roles on, so every test that uses it also runs the
authenticated path. Its port is the Kafka test port - 10000 + 6 (19098 by default;
IMPORT_CLOSURE_TEST_REGISTRY_PORT overrides): below Linux's ephemeral range (32768-60999), because
the outage test stops it for seconds and a client connection given its port as a source port
meanwhile would keep it from listening again (seen once: "Port 39298 seems to be in use").
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_LOCAL = ROOT / "deploy" / "registry-local" / "registry-local"
CCOMPAT = "/apis/ccompat/v7"


@dataclass
class RealRegistry:
    """The session's registry; `stop()`/`start()` give a real outage (ids kept: H2 in a file)."""

    port: int
    #: A user that may read and register (sr-developer) and one that may only read (sr-readonly).
    password: str
    reader_password: str
    env: dict[str, str] = field(default_factory=dict)

    user = "ic"
    reader = "reader"

    @property
    def url(self) -> str:
        """The ccompat base url, without credentials."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT}"

    def url_as(self, user: str, password: str) -> str:
        return self.url.replace("http://", f"http://{user}:{password}@")

    @property
    def client_conf(self) -> dict[str, object]:
        """SchemaRegistryClient settings for the developer user."""
        return {"url": self.url, "basic.auth.user.info": f"{self.user}:{self.password}"}

    def _verb(self, verb: str) -> str:
        result = subprocess.run(
            [str(REGISTRY_LOCAL), verb],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"registry-local {verb} failed:\n{result.stdout}\n{result.stderr}")
        return result.stderr

    def start(self) -> str:
        """Start and wait until ready; registry-local's line (with its start time)."""
        return self._verb("start")

    def stop(self) -> None:
        self._verb("stop")

    def reset(self) -> None:
        self._verb("reset")


def session_registry(kafka_port: int) -> RealRegistry:
    port = int(os.environ.get("IMPORT_CLOSURE_TEST_REGISTRY_PORT", str(kafka_port - 10_000 + 6)))
    password, reader_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    registry = RealRegistry(port, password, reader_password)
    registry.env = {
        **os.environ,
        "REGISTRY_LOCAL_PORT": str(port),
        "REGISTRY_LOCAL_DATA": str(ROOT / ".run" / f"test-registry-{port}"),
        "REGISTRY_LOCAL_USERS": (
            f"{registry.user}:{password}:sr-developer {registry.reader}:{reader_password}:sr-readonly"
        ),
    }
    return registry
