"""Wire headers in front of an Avro body: read them, say where the body starts, write them.

Two framings are recognised by their first bytes:

- Confluent: ``0x00`` + 4-byte big-endian Schema Registry id.
- Avro single-object encoding: ``0xC3 0x01`` + the 8-byte little-endian CRC-64-AVRO fingerprint
  of the writer schema's Parsing Canonical Form.

Anything else is refused with one clear error, as confluent-kafka's ``SchemaId.from_bytes`` does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from consumer.errors import DecodeError

CONFLUENT_MAGIC: Final = 0x00
SINGLE_OBJECT_MAGIC: Final = b"\xc3\x01"
CONFLUENT_HEADER_SIZE: Final = 5
SINGLE_OBJECT_HEADER_SIZE: Final = 10
FINGERPRINT_SIZE: Final = 8

_SCHEMA_ID = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class ConfluentHeader:
    """A value framed for a Schema Registry; the body starts at byte 5."""

    schema_id: int


@dataclass(frozen=True, slots=True)
class SingleObjectHeader:
    """A value in Avro single-object encoding; the body starts at byte 10."""

    fingerprint: bytes


Header = ConfluentHeader | SingleObjectHeader


def read_header(value: bytes | None) -> Header:
    """The header of `value`; raises DecodeError empty, unknown_magic or truncated."""
    if not value:
        msg = "value is null (tombstone)" if value is None else "value is empty"
        raise DecodeError("empty", msg)
    first = value[0]
    if first == CONFLUENT_MAGIC:
        if len(value) < CONFLUENT_HEADER_SIZE:
            msg = f"Confluent header needs {CONFLUENT_HEADER_SIZE} bytes, value has {len(value)}"
            raise DecodeError("truncated", msg)
        return ConfluentHeader(_SCHEMA_ID.unpack_from(value, 1)[0])
    if first == SINGLE_OBJECT_MAGIC[0] and (len(value) == 1 or value[1] == SINGLE_OBJECT_MAGIC[1]):
        if len(value) < SINGLE_OBJECT_HEADER_SIZE:
            msg = (
                f"single-object header needs {SINGLE_OBJECT_HEADER_SIZE} bytes, "
                f"value has {len(value)}"
            )
            raise DecodeError("truncated", msg)
        return SingleObjectHeader(value[2:SINGLE_OBJECT_HEADER_SIZE])
    msg = f"first bytes {value[:2].hex()} are neither Confluent (00) nor single-object (c301)"
    raise DecodeError("unknown_magic", msg)


def body_offset(header: Header) -> int:
    """Where the Avro body starts in the value `header` was read from."""
    if isinstance(header, ConfluentHeader):
        return CONFLUENT_HEADER_SIZE
    return SINGLE_OBJECT_HEADER_SIZE


def confluent_header(schema_id: int) -> bytes:
    """The 5-byte Confluent prefix; ids are unsigned 32-bit in the wire format."""
    if not 0 <= schema_id <= 0xFFFFFFFF:
        msg = f"schema id {schema_id} does not fit in 4 bytes"
        raise ValueError(msg)
    return bytes((CONFLUENT_MAGIC,)) + _SCHEMA_ID.pack(schema_id)


def single_object_header(fingerprint: bytes) -> bytes:
    """The 10-byte single-object prefix for a writer schema with this fingerprint."""
    if len(fingerprint) != FINGERPRINT_SIZE:
        msg = f"a CRC-64-AVRO fingerprint has {FINGERPRINT_SIZE} bytes, got {len(fingerprint)}"
        raise ValueError(msg)
    return SINGLE_OBJECT_MAGIC + fingerprint


def canonical_fingerprint(canonical_form: str) -> bytes:
    """CRC-64-AVRO (Rabin) of a Parsing Canonical Form, little-endian as single-object puts it."""
    return bytes.fromhex(_fastavro_fingerprint(canonical_form, "CRC-64-AVRO"))


def schema_fingerprint(schema: Any) -> bytes:
    """Fingerprint of a schema (JSON-like or fastavro-parsed): doc, defaults and order do not count."""
    return canonical_fingerprint(to_parsing_canonical_form(schema))
