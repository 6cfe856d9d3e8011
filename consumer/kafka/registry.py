"""The Schema Registry behind SchemaSource: confluent-kafka's client, with parsed schemas cached by id.

A schema id never changes its schema, so each id is fetched and parsed once per process. Misses
are not cached: an id can be missing briefly while a registry replica catches up.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import OAuthTokenError, SchemaRegistryError
from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType

from consumer.codec.schemas import ParsedSchema, bundled_schema_text
from consumer.errors import ConfigError, DecodeError, SchemaSourceUnavailable

log = logging.getLogger(__name__)

try:  # the client picks httpx2 or httpx here; catch the transport errors of the one it uses
    _httpx: Any = importlib.import_module(
        "confluent_kafka.schema_registry.common._httpx_compat"
    ).httpx
except ImportError:  # releases before that module imported httpx directly
    _httpx = importlib.import_module("httpx")

#: Failures before any answer came back: DNS, refused or reset connections, timeouts, TLS, OAuth.
_UNREACHABLE: Final[tuple[type[Exception], ...]] = (_httpx.TransportError, OAuthTokenError)
_UNAUTHORISED: Final = 401
_FORBIDDEN: Final = 403
_NOT_FOUND: Final = 404
_SERVER_ERROR: Final = 500
_DECISION_FILE: Final = "ListingDecision.avsc"


class RegistrySchemaSource:
    """SchemaSource over a Confluent-compatible Schema Registry; `conf` is SchemaRegistryClient's.

    The client retries transport errors itself (`max.retries`, `retries.wait.ms` in `conf`); what
    still fails becomes SchemaSourceUnavailable, so the worker retries the batch instead of
    dead-lettering records that are not at fault.
    """

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self._client = SchemaRegistryClient(dict(conf))
        self._where = _without_userinfo(str(conf.get("url", "")))
        self._schemas: dict[int, ParsedSchema] = {}
        self._invalid: dict[int, str] = {}

    def writer_schema(self, schema_id: int) -> ParsedSchema:
        """The parsed schema under `schema_id`: one HTTP request the first time, none after."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        if schema_id in self._invalid:
            raise DecodeError("schema_mismatch", self._invalid[schema_id])
        try:
            schema = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == _NOT_FOUND:
                msg = f"schema id {schema_id} is not in the registry ({exc.error_message})"
                raise DecodeError("unknown_schema_id", msg) from exc
            # 401/403 too: a fixed credential or grant heals without a restart, like an outage.
            what = f"fetching schema id {schema_id}"
            msg = _refusal(exc, what, self._where) or (
                f"schema registry could not serve id {schema_id}: {_described(exc)}"
            )
            raise SchemaSourceUnavailable(msg) from exc
        except _UNREACHABLE as exc:
            msg = f"schema registry unreachable fetching id {schema_id}: {exc}"
            raise SchemaSourceUnavailable(msg) from exc
        problem = _not_avro(schema)
        parsed: ParsedSchema | None = None
        if problem is None:
            try:
                parsed = parse_schema(json.loads(schema.schema_str or ""))
            except (ValueError, SchemaParseException, UnknownType) as exc:
                problem = f"not a valid Avro schema: {exc}"
        if parsed is None:
            msg = f"schema id {schema_id}: {problem}"
            self._invalid[schema_id] = msg  # an id's schema never changes: do not ask again
            raise DecodeError("schema_mismatch", msg)
        self._schemas[schema_id] = parsed
        log.info("writer schema fetched", extra={"schema_id": schema_id})
        return parsed

    def register_decision_schema(self, subject: str) -> int:
        """Register the bundled ListingDecision under `subject`; the id to frame decisions with.

        Registering a schema the subject already holds returns its existing id, so every start
        may call this. A refusal (incompatible, unauthorised) is a ConfigError: retrying won't help.
        """
        schema = Schema(bundled_schema_text(_DECISION_FILE), "AVRO")
        try:
            schema_id = self._client.register_schema(subject, schema)
        except SchemaRegistryError as exc:
            what = f"registering ListingDecision under subject {subject!r}"
            msg = _refusal(exc, what, self._where) or (
                f"schema registry refused ListingDecision under subject {subject!r}: "
                f"{_described(exc)}"
            )
            if exc.http_status_code >= _SERVER_ERROR:
                raise SchemaSourceUnavailable(msg) from exc
            raise ConfigError(msg) from exc
        except _UNREACHABLE as exc:
            msg = f"schema registry unreachable registering subject {subject!r}: {exc}"
            raise SchemaSourceUnavailable(msg) from exc
        log.info("decision schema registered", extra={"subject": subject, "schema_id": schema_id})
        return int(schema_id)


def _refusal(exc: SchemaRegistryError, what: str, where: str) -> str | None:
    """Our wording for 401 and 403, which registries (Apicurio) answer with an empty body."""
    if exc.http_status_code == _UNAUTHORISED:
        return f"schema registry refused our credentials (HTTP 401) at {where}, {what}"
    if exc.http_status_code == _FORBIDDEN:
        return f"schema registry: not authorised (HTTP 403) at {where}, {what}"
    return None


def _described(exc: SchemaRegistryError) -> str:
    """The registry's own message, or the status alone when its body was not a JSON error."""
    if exc.error_code == -1:  # the client's mark for a body it could not read as JSON
        return f"HTTP {exc.http_status_code} without an error message"
    return f"{exc.error_message} (HTTP {exc.http_status_code}, error code {exc.error_code})"


def _without_userinfo(urls: str) -> str:
    """The registry url(s) for a message: never the `user:password@` part."""
    clean = []
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        clean.append(urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])))
    return ",".join(clean)


def _not_avro(schema: Any) -> str | None:
    kind = schema.schema_type or "AVRO"
    if kind != "AVRO":
        return f"is a {kind} schema, not Avro"
    if schema.references:
        return "uses schema references, which this consumer does not resolve"
    return None
