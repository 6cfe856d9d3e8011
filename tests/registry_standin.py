"""A tiny in-process stand-in for the Confluent Schema Registry REST API, for unit tests.

It answers GET /schemas/ids/{id} and POST /subjects/{subject}/versions, records what it was asked,
and can fail on purpose: id FAILING_ID always answers 500, `failures_left` makes the next GETs
answer 500 (a registry that is briefly unavailable), and `refuse_with` answers every request with
that status and an empty body, as Apicurio answers 401 and 403. The integration tests use the real
registry (deploy/registry-local); these faults on demand are what it cannot produce.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAILING_ID = 500
DECISION_ID = 41
INCOMPATIBLE_SUBJECT = "incompatible-value"


@dataclass
class Registry:
    """What the stand-in serves and what it was asked."""

    schemas: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: The Authorization header of each request, None when there was none.
    authorizations: list[str | None] = field(default_factory=list)
    registered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    #: The next this-many GETs of a schema answer 500.
    failures_left: int = 0
    #: When set, every request answers this status with an empty body.
    refuse_with: int | None = None

    def gets(self, schema_id: int) -> int:
        return self.requests.count(("GET", f"/schemas/ids/{schema_id}"))


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is not the place for access logs."""

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _refused(self) -> bool:
            if registry.refuse_with is None:
                return False
            self.send_response(registry.refuse_with)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            registry.requests.append(("GET", path))
            registry.authorizations.append(self.headers.get("Authorization"))
            if self._refused():
                return
            match = re.fullmatch(r"/schemas/ids/(\d+)", path)
            if match is None:
                self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
                return
            schema_id = int(match.group(1))
            if registry.failures_left > 0:
                registry.failures_left -= 1
                self._reply(500, {"error_code": 50001, "message": "Error in the backend store"})
            elif schema_id == FAILING_ID:
                self._reply(500, {"error_code": 50001, "message": "Error in the backend store"})
            elif schema_id in registry.schemas:
                self._reply(200, registry.schemas[schema_id])
            else:
                self._reply(404, {"error_code": 40403, "message": f"Schema {schema_id} not found"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            registry.requests.append(("POST", path))
            registry.authorizations.append(self.headers.get("Authorization"))
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self._refused():
                return
            match = re.fullmatch(r"/subjects/([^/]+)/versions", path)
            if match is None:
                self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
            elif match.group(1) == INCOMPATIBLE_SUBJECT:
                self._reply(
                    409, {"error_code": 409, "message": "Schema being registered is incompatible"}
                )
            else:
                registry.registered.append((match.group(1), body))
                self._reply(200, {"id": DECISION_ID})

    return Handler


@contextmanager
def running_registry(schemas: dict[int, dict[str, Any]], port: int = 0) -> Iterator[Registry]:
    """A registry stand-in on `port` (default: a free one) serving `schemas`, stopped on exit."""
    state = Registry(schemas=schemas)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
