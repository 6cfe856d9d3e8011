"""The Avro schemas shipped with the package, and the SchemaSource seam for registry-held ones.

The .avsc files live in the top-level schemas/ folder; consumer/data/schemas/ links to them so
they travel inside the wheel and are read with importlib.resources, never from a path on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, Protocol

from fastavro import parse_schema
from fastavro.types import Schema

from consumer.codec.framing import schema_fingerprint

#: What fastavro.parse_schema returns; the only form of a schema the codec accepts.
ParsedSchema = Schema

NAMESPACE: Final = "id.marketplace.importclosure.v1"
LISTING_CREATED: Final = f"{NAMESPACE}.ListingCreated"
LISTING_DECISION: Final = f"{NAMESPACE}.ListingDecision"

_PACKAGE: Final = "consumer"
_FOLDER: Final = ("data", "schemas")
_FILES: Final = ("ListingCreated.avsc", "ListingDecision.avsc")
#: Released earlier versions (schemas/history/): writers whose values may still be on the topics.
_HISTORY: Final = ("ListingDecision.1.avsc", "ListingDecision.2.avsc")


class SchemaSource(Protocol):
    """Supplies writer schemas by Schema Registry id (Confluent framing)."""

    def writer_schema(self, schema_id: int) -> ParsedSchema:
        """The parsed schema registered under `schema_id`.

        Raises DecodeError("unknown_schema_id") when the registry has no such id, and
        SchemaSourceUnavailable when it cannot be asked (so the batch is retried, not dead-lettered).
        """
        ...


@dataclass(frozen=True, slots=True)
class BundledSchema:
    """One shipped schema: its text (for registering), parsed form and single-object fingerprint."""

    name: str
    text: str
    parsed: ParsedSchema
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class BundledSchemas:
    """The shipped schemas, parsed once, by full name and by fingerprint."""

    by_name: Mapping[str, BundledSchema]
    #: The current schemas and the released earlier versions: every writer we can read.
    by_fingerprint: Mapping[bytes, BundledSchema]

    @classmethod
    def of(cls, texts: Iterable[str], history: Iterable[str] = ()) -> BundledSchemas:
        schemas = [bundle(text) for text in texts]
        earlier = [bundle(text) for text in history]
        return cls({s.name: s for s in schemas}, {s.fingerprint: s for s in earlier + schemas})

    @classmethod
    def load(cls) -> BundledSchemas:
        """Read the package's .avsc files; a missing or broken one is a packaging bug and raises."""
        return cls.of(
            (bundled_schema_text(name) for name in _FILES),
            (bundled_schema_text("history/" + name) for name in _HISTORY),
        )

    def __getitem__(self, name: str) -> BundledSchema:
        return self.by_name[name]


def bundled_schema_text(filename: str) -> str:
    """Text of one shipped .avsc file, e.g. "ListingCreated.avsc" or "history/<name>.avsc"."""
    parts = (*_FOLDER, *filename.split("/"))
    return resources.files(_PACKAGE).joinpath(*parts).read_text(encoding="utf-8")


def bundle(text: str) -> BundledSchema:
    """Parse one named schema's JSON text and work out its name and fingerprint."""
    parsed = parse_schema(json.loads(text))
    if not isinstance(parsed, dict) or "name" not in parsed:
        msg = "a bundled schema must be a named type (record, enum or fixed)"
        raise ValueError(msg)
    return BundledSchema(str(parsed["name"]), text, parsed, schema_fingerprint(parsed))
