"""Avro contracts on the wire: framing, bundled schemas, the codec, and the JSON form for the CLI."""

from consumer.codec.avro import AvroCodec
from consumer.codec.framing import (
    ConfluentHeader,
    Header,
    SingleObjectHeader,
    confluent_header,
    read_header,
    schema_fingerprint,
    single_object_header,
)
from consumer.codec.jsonform import decision_to_json, listing_from_json, listing_to_json
from consumer.codec.schemas import (
    LISTING_CREATED,
    LISTING_DECISION,
    BundledSchema,
    BundledSchemas,
    ParsedSchema,
    SchemaSource,
)

__all__ = [
    "LISTING_CREATED",
    "LISTING_DECISION",
    "AvroCodec",
    "BundledSchema",
    "BundledSchemas",
    "ConfluentHeader",
    "Header",
    "ParsedSchema",
    "SchemaSource",
    "SingleObjectHeader",
    "confluent_header",
    "decision_to_json",
    "listing_from_json",
    "listing_to_json",
    "read_header",
    "schema_fingerprint",
    "single_object_header",
]
