"""Wire headers: detection, errors, writing, and the CRC-64-AVRO fingerprint of the Avro spec."""

from __future__ import annotations

import struct

import pytest
from fastavro.schema import to_parsing_canonical_form

from consumer.codec.framing import (
    CONFLUENT_HEADER_SIZE,
    SINGLE_OBJECT_HEADER_SIZE,
    ConfluentHeader,
    SingleObjectHeader,
    body_offset,
    canonical_fingerprint,
    confluent_header,
    read_header,
    schema_fingerprint,
    single_object_header,
)
from consumer.codec.schemas import BundledSchemas
from consumer.errors import DecodeError

FINGERPRINT = bytes.fromhex("0102030405060708")

# Parsing Canonical Forms and their CRC-64-AVRO fingerprints (signed 64-bit, as Java prints them),
# from share/test/data/schema-tests.txt in the Avro repository; Java's tests validate these values.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('"string"', -8142146995180207161),
    ("[]", -1241056759729112623),
    ('["int","boolean"]', 5392556393470105090),
    ('{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
    ('{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771),
    (
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    ('{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245),
    ('{"type":"array","items":"null"}', -589620603366471059),
    ('{"type":"map","values":"string"}', -8732877298790414990),
    (
        '{"name":"PigValue","type":"record","fields":[{"name":"value",'
        '"type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]


def _spec_fingerprint64(data: bytes) -> int:
    """The Avro spec's reference algorithm, transcribed: a 64-bit Rabin fingerprint."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


class TestReadHeader:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (b"\x00\x00\x00\x00\x00", ConfluentHeader(0)),
            (b"\x00\x00\x00\x00\x07body", ConfluentHeader(7)),
            (b"\x00\x00\x01\x00\x00", ConfluentHeader(65536)),
            (b"\x00\xff\xff\xff\xff", ConfluentHeader(0xFFFFFFFF)),
            (b"\xc3\x01" + FINGERPRINT, SingleObjectHeader(FINGERPRINT)),
            (b"\xc3\x01" + FINGERPRINT + b"body", SingleObjectHeader(FINGERPRINT)),
        ],
        ids=["confluent-id-0", "confluent-with-body", "big-endian-id", "max-id", "so", "so-body"],
    )
    def test_recognises_both_framings(self, value: bytes, expected: object) -> None:
        """Confluent ids are big-endian unsigned; single-object fingerprints are the 8 raw bytes."""
        assert read_header(value) == expected

    @pytest.mark.parametrize(
        ("value", "code", "message"),
        [
            (None, "empty", "tombstone"),
            (b"", "empty", "empty"),
            (b"{", "unknown_magic", "7b"),
            (b'{"listing_id": "json"}', "unknown_magic", "neither Confluent"),
            (b"\x01\x00\x00\x00\x01", "unknown_magic", "01"),
            (b"\xc3\x02" + FINGERPRINT, "unknown_magic", "c302"),
            (b"\x00", "truncated", "needs 5 bytes, value has 1"),
            (b"\x00\x00\x00\x01", "truncated", "needs 5 bytes, value has 4"),
            (b"\xc3", "truncated", "needs 10 bytes, value has 1"),
            (b"\xc3\x01" + FINGERPRINT[:7], "truncated", "needs 10 bytes, value has 9"),
        ],
        ids=[
            "none",
            "empty",
            "brace",
            "json",
            "magic-1",
            "so-wrong-version",
            "confluent-magic-only",
            "confluent-short-id",
            "so-first-byte-only",
            "so-short-fingerprint",
        ],
    )
    def test_refuses_anything_else_with_a_code(
        self, value: bytes | None, code: str, message: str
    ) -> None:
        """Every unrecognised or short header is a DecodeError whose code names the problem."""
        with pytest.raises(DecodeError, match=message) as info:
            read_header(value)
        assert info.value.code == code

    @pytest.mark.parametrize(
        ("header", "offset"),
        [(ConfluentHeader(1), CONFLUENT_HEADER_SIZE), (SingleObjectHeader(FINGERPRINT), 10)],
        ids=["confluent", "single-object"],
    )
    def test_body_offset_follows_the_header(self, header: object, offset: int) -> None:
        """The Avro body starts right after the header: byte 5 or byte 10."""
        assert body_offset(header) == offset  # type: ignore[arg-type]


class TestWriteHeader:
    @pytest.mark.parametrize("schema_id", [0, 1, 1000, 0xFFFFFFFF], ids=["0", "1", "1000", "max"])
    def test_confluent_header_reads_back(self, schema_id: int) -> None:
        """A written Confluent header is 5 bytes and reads back to the same id."""
        header = confluent_header(schema_id)
        assert len(header) == CONFLUENT_HEADER_SIZE
        assert read_header(header) == ConfluentHeader(schema_id)

    def test_single_object_header_reads_back(self) -> None:
        """A written single-object header is the magic plus the fingerprint."""
        header = single_object_header(FINGERPRINT)
        assert header == b"\xc3\x01" + FINGERPRINT
        assert len(header) == SINGLE_OBJECT_HEADER_SIZE
        assert read_header(header) == SingleObjectHeader(FINGERPRINT)

    @pytest.mark.parametrize("schema_id", [-1, 2**32], ids=["negative", "over-32-bits"])
    def test_confluent_header_refuses_ids_outside_4_bytes(self, schema_id: int) -> None:
        """Ids the wire format cannot carry are a programming error, not a silent wrap."""
        with pytest.raises(ValueError, match="does not fit in 4 bytes"):
            confluent_header(schema_id)

    @pytest.mark.parametrize("size", [0, 7, 9], ids=["0", "7", "9"])
    def test_single_object_header_refuses_wrong_fingerprint_size(self, size: int) -> None:
        """A fingerprint of any size but 8 would shift the body."""
        with pytest.raises(ValueError, match="8 bytes"):
            single_object_header(bytes(size))


class TestFingerprint:
    @pytest.mark.parametrize(
        ("canonical", "expected"), SPEC_VECTORS, ids=[str(i) for i in range(len(SPEC_VECTORS))]
    )
    def test_matches_avro_spec_vectors(self, canonical: str, expected: int) -> None:
        """CRC-64-AVRO agrees with the spec's test vectors, written little-endian on the wire."""
        assert canonical_fingerprint(canonical) == struct.pack("<q", expected)

    @pytest.mark.parametrize(
        "name",
        [
            "id.marketplace.importclosure.v1.ListingCreated",
            "id.marketplace.importclosure.v1.ListingDecision",
        ],
        ids=["listing-created", "listing-decision"],
    )
    def test_bundled_schemas_match_the_reference_algorithm(self, name: str) -> None:
        """Our fingerprints equal the spec's algorithm run on the Parsing Canonical Form."""
        schema = BundledSchemas.load()[name]
        canonical = to_parsing_canonical_form(schema.parsed).encode()
        assert schema.fingerprint == _spec_fingerprint64(canonical).to_bytes(8, "little")

    def test_ignores_docs_defaults_and_logical_types(self) -> None:
        """Only what changes the bytes counts: doc, default and logicalType do not."""
        plain = {"type": "record", "name": "a.R", "fields": [{"name": "t", "type": "long"}]}
        annotated = {
            "type": "record",
            "name": "R",
            "namespace": "a",
            "doc": "words",
            "fields": [
                {
                    "name": "t",
                    "type": {"type": "long", "logicalType": "timestamp-millis"},
                    "default": 0,
                    "doc": "more words",
                }
            ],
        }
        assert schema_fingerprint(plain) == schema_fingerprint(annotated)

    def test_changes_when_the_wire_format_changes(self) -> None:
        """A different field type is a different writer schema, so a different fingerprint."""
        long_field = {"type": "record", "name": "R", "fields": [{"name": "t", "type": "long"}]}
        int_field = {"type": "record", "name": "R", "fields": [{"name": "t", "type": "int"}]}
        assert schema_fingerprint(long_field) != schema_fingerprint(int_field)
