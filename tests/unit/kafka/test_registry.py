"""RegistrySchemaSource against a tiny in-process stand-in for the Schema Registry REST API."""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterator

import pytest

from consumer import config
from consumer.codec import LISTING_CREATED, AvroCodec, BundledSchemas
from consumer.core.records import Listing, Price
from consumer.errors import ConfigError, DecodeError, SchemaSourceUnavailable
from consumer.kafka import client_conf
from consumer.kafka.registry import RegistrySchemaSource
from consumer.service import logs
from tests.registry_standin import (
    DECISION_ID,
    FAILING_ID,
    INCOMPATIBLE_SUBJECT,
    Registry,
    running_registry,
)

BUNDLED = BundledSchemas.load()
LISTING_ID = 1
PROTOBUF_ID = 2
BROKEN_ID = 3


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A registry stand-in on a free local port, stopped after the test."""
    schemas = {
        LISTING_ID: {"schema": BUNDLED[LISTING_CREATED].text},
        PROTOBUF_ID: {"schemaType": "PROTOBUF", "schema": 'syntax = "proto3";'},
        BROKEN_ID: {"schema": '{"type": "record", "name": "X", "fields": [{"name": "a"}]}'},
    }
    with running_registry(schemas) as state:
        yield state


def _source(url: str) -> RegistrySchemaSource:
    # No retries: a refused or failed request should fail the test at once, not after backoff.
    return RegistrySchemaSource({"url": url, "max.retries": 0, "timeout": 5})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestWriterSchema:
    def test_fetches_and_parses_the_schema(self, registry: Registry) -> None:
        """The schema under an id comes back parsed, and decodes a Confluent-framed listing."""
        source = _source(registry.url)
        codec = AvroCodec(source)
        listing = Listing(
            "evt-1", 1, "lst-1", "s-1", "ID", "CN", "CN", "c-1", ("Batik",), "Kain", Price(1, "IDR")
        )
        assert codec.decode_listing(codec.encode_listing_confluent(listing, LISTING_ID)) == listing
        parsed = source.writer_schema(LISTING_ID)
        assert isinstance(parsed, dict)
        assert parsed["name"] == LISTING_CREATED

    def test_one_request_for_many_lookups(self, registry: Registry) -> None:
        """An id's schema never changes, so it is fetched once however often it is asked for."""
        source = _source(registry.url)
        first = source.writer_schema(LISTING_ID)
        for _ in range(100):
            assert source.writer_schema(LISTING_ID) is first
        assert registry.gets(LISTING_ID) == 1

    def test_unknown_id(self, registry: Registry) -> None:
        """A 404 is DecodeError unknown_schema_id, asked again next time (not cached)."""
        source = _source(registry.url)
        for _ in range(2):
            with pytest.raises(DecodeError, match="schema id 99 is not in the registry") as info:
                source.writer_schema(99)
            assert info.value.code == "unknown_schema_id"
        assert registry.gets(99) == 2

    @pytest.mark.parametrize(
        ("schema_id", "message"),
        [
            (PROTOBUF_ID, "is a PROTOBUF schema, not Avro"),
            (BROKEN_ID, "not a valid Avro schema"),
        ],
        ids=["protobuf", "unparsable"],
    )
    def test_schema_that_is_not_usable_avro(
        self, registry: Registry, schema_id: int, message: str
    ) -> None:
        """A non-Avro or broken schema is schema_mismatch, remembered so it is fetched once."""
        source = _source(registry.url)
        for _ in range(2):
            with pytest.raises(DecodeError, match=message) as info:
                source.writer_schema(schema_id)
            assert info.value.code == "schema_mismatch"
        assert registry.gets(schema_id) == 1

    def test_server_error_is_unavailable(self, registry: Registry) -> None:
        """A 5xx is no fault of the record: SchemaSourceUnavailable, so the batch is retried."""
        with pytest.raises(SchemaSourceUnavailable, match="could not serve id 500"):
            _source(registry.url).writer_schema(FAILING_ID)

    def test_unreachable_registry_is_unavailable(self) -> None:
        """A refused connection is SchemaSourceUnavailable, not a bare transport exception."""
        source = _source(f"http://127.0.0.1:{_closed_port()}")
        with pytest.raises(SchemaSourceUnavailable, match="unreachable fetching id 1"):
            source.writer_schema(1)


class TestRegisterDecisionSchema:
    def test_registers_the_bundled_schema(self, registry: Registry) -> None:
        """The bundled ListingDecision goes to the subject; its id comes back."""
        schema_id = _source(registry.url).register_decision_schema("listing-decisions-value")
        assert schema_id == DECISION_ID
        [(subject, body)] = registry.registered
        assert subject == "listing-decisions-value"
        assert json.loads(body["schema"])["name"] == "ListingDecision"

    def test_refusal_is_a_config_error(self, registry: Registry) -> None:
        """An incompatible subject will not fix itself by retrying: ConfigError."""
        with pytest.raises(ConfigError, match="refused ListingDecision under subject"):
            _source(registry.url).register_decision_schema(INCOMPATIBLE_SUBJECT)

    def test_unreachable_registry_is_unavailable(self) -> None:
        """No registry at start-up is SchemaSourceUnavailable."""
        source = _source(f"http://127.0.0.1:{_closed_port()}")
        with pytest.raises(SchemaSourceUnavailable, match="unreachable registering subject"):
            source.register_decision_schema("listing-decisions-value")


class TestRefusals:
    """Apicurio answers 401 and 403 with an empty body; the client alone would print b''."""

    @pytest.mark.parametrize(
        ("status", "wording"),
        [
            (401, "schema registry refused our credentials (HTTP 401) at "),
            (403, "schema registry: not authorised (HTTP 403) at "),
        ],
        ids=["401", "403"],
    )
    def test_registering_names_the_refusal_and_the_registry(
        self, registry: Registry, status: int, wording: str
    ) -> None:
        """One line in our words with the url, never the user-info part or the client's b''."""
        registry.refuse_with = status
        source = _source(registry.url.replace("http://", "http://svc:s3cret@"))
        with pytest.raises(ConfigError) as info:
            source.register_decision_schema("listing-decisions-value")
        expected = f"{wording}{registry.url}, registering ListingDecision under subject"
        assert str(info.value).startswith(expected), str(info.value)
        assert "b''" not in str(info.value)
        assert "s3cret" not in str(info.value)
        assert "svc" not in str(info.value)

    @pytest.mark.parametrize("status", [401, 403], ids=["401", "403"])
    def test_fetching_a_schema_refused_is_unavailable(
        self, registry: Registry, status: int
    ) -> None:
        """A refusal mid-run holds the batch (a fixed grant heals it), worded like at start."""
        registry.refuse_with = status
        with pytest.raises(
            SchemaSourceUnavailable, match=rf"\(HTTP {status}\) at .*, fetching schema id 1$"
        ):
            _source(registry.url).writer_schema(LISTING_ID)

    def test_an_error_without_a_json_body_says_so(self, registry: Registry) -> None:
        """Any other status with an unreadable body is named by its number alone."""
        registry.refuse_with = 502
        with pytest.raises(SchemaSourceUnavailable, match="HTTP 502 without an error message"):
            _source(registry.url).writer_schema(LISTING_ID)


class TestCredentials:
    def test_credentials_in_the_url_are_sent_but_never_logged(self, registry: Registry) -> None:
        """With user:secret@ in the url, requests authenticate and no log line holds the secret."""
        stream = io.StringIO()
        logs.configure("INFO", stream)
        url = registry.url.replace("http://", "http://svc:s3cret%21@")
        settings = config.load(env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": url})
        conf = dict(client_conf.registry_conf(settings), **{"max.retries": 0})
        RegistrySchemaSource(conf).writer_schema(LISTING_ID)
        expected = "Basic " + base64.b64encode(b"svc:s3cret!").decode()
        assert registry.authorizations == [expected]
        assert "schema_id" in stream.getvalue()  # our own INFO line is there
        assert "s3cret" not in stream.getvalue()
