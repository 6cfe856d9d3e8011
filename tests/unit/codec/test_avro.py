"""AvroCodec: round trips in both framings, every decode error code, and the schema source seam."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader

from consumer.codec import LISTING_CREATED, LISTING_DECISION, AvroCodec, BundledSchemas
from consumer.codec.framing import CONFLUENT_HEADER_SIZE, SINGLE_OBJECT_HEADER_SIZE, read_header
from consumer.codec.resolution import strict_schema
from consumer.codec.schemas import ParsedSchema
from consumer.core.records import Decision, Listing, Price, Reason, SourceRef
from consumer.errors import DecodeError, SchemaSourceUnavailable
from tests.unit.listings import make_listing

BUNDLED = BundledSchemas.load()
LISTING_SCHEMA = BUNDLED[LISTING_CREATED].parsed
_ENUM = {"type": "enum", "name": "E", "symbols": ["X", "Y"]}


def _decision(**overrides: Any) -> Decision:
    base = Decision(
        decision_id="0b4c8e4e-2f7d-5b1e-8f8e-0d5a9c1b2a33",
        event_id="evt-1",
        listing_id="lst-1",
        seller_id="seller-cn-7",
        site="ID",
        outcome="REJECTED",
        reasons=(
            Reason("IMPORT_CLOSED_CATEGORY", "akar-fashion-textile", "Cross-border fashion closed"),
        ),
        matched_rules=("akar-fashion-textile",),
        cluster="fashion_textile",
        cross_border=True,
        policy="id-akar-import-closure",
        policy_version="2021.08+3f2a9c1",
        event_time_ms=1_628_000_000_000,
        decided_at_ms=1_700_000_000_123,
        source=SourceRef("listing-created", 3, 1042),
    )
    return replace(base, **overrides)


class FakeSource:
    """A SchemaSource over a dict, counting lookups; `down` makes it behave like an outage."""

    def __init__(self, schemas: Mapping[int, ParsedSchema]) -> None:
        self.schemas = dict(schemas)
        self.calls: list[int] = []
        self.down = False

    def writer_schema(self, schema_id: int) -> ParsedSchema:
        self.calls.append(schema_id)
        if self.down:
            msg = "registry down"
            raise SchemaSourceUnavailable(msg)
        try:
            return self.schemas[schema_id]
        except KeyError:
            msg = f"schema id {schema_id} is not in the registry"
            raise DecodeError("unknown_schema_id", msg) from None


LISTINGS = [
    make_listing(),
    make_listing(
        channel="CROSS_BORDER",
        brand="Uniqlo",
        hs_code="620442",
        attributes={"condition": "new", "size": "M"},
    ),
    make_listing(channel="DOMESTIC", seller_country="ID", ship_from_country="ID"),
    make_listing(title="한국 김 스낵 🍙", price=Price(12_500, "KRW"), category_path=()),
    make_listing(event_time_ms=-1, price=Price(-5, "USD"), title=""),
    make_listing(event_time_ms=2**63 - 1, price=Price(-(2**63), "IDR")),
]
LISTING_IDS = ["required-only", "all-optional", "domestic", "unicode-empty-path", "neg", "extremes"]


class TestListingRoundTrip:
    @pytest.mark.parametrize("listing", LISTINGS, ids=LISTING_IDS)
    def test_single_object_round_trip(self, listing: Listing) -> None:
        """What encode_listing writes, decode_listing reads back unchanged."""
        codec = AvroCodec()
        value = codec.encode_listing(listing)
        assert value[:2] == b"\xc3\x01"
        assert codec.decode_listing(value) == listing

    @pytest.mark.parametrize("listing", LISTINGS, ids=LISTING_IDS)
    def test_confluent_round_trip_through_the_schema_source(self, listing: Listing) -> None:
        """A Confluent-framed value is read with the writer schema the source has for its id."""
        codec = AvroCodec(FakeSource({21: LISTING_SCHEMA}))
        value = codec.encode_listing_confluent(listing, 21)
        assert value[:CONFLUENT_HEADER_SIZE] == b"\x00\x00\x00\x00\x15"
        assert codec.decode_listing(value) == listing

    def test_event_time_stays_integer_milliseconds(self) -> None:
        """No datetime on the hot path: the decoded time is the int that was encoded."""
        codec = AvroCodec()
        decoded = codec.decode_listing(
            codec.encode_listing(make_listing(event_time_ms=1_628_000_000_123))
        )
        assert type(decoded.event_time_ms) is int
        assert decoded.event_time_ms == 1_628_000_000_123

    def test_single_object_header_carries_the_schema_fingerprint(self) -> None:
        """The fingerprint in the header is the one of the bundled ListingCreated schema."""
        value = AvroCodec().encode_listing(make_listing())
        assert read_header(value) == read_header(b"\xc3\x01" + BUNDLED[LISTING_CREATED].fingerprint)


class TestDecisionRoundTrip:
    @pytest.mark.parametrize(
        "decision",
        [
            _decision(),
            _decision(outcome="APPROVED", reasons=(), matched_rules=(), cluster=None, source=None),
            _decision(
                reasons=(Reason("A", "r1", "first"), Reason("UNKNOWN_CURRENCY", "r2", "no rate")),
                matched_rules=("allow-books", "r1", "r2"),
            ),
        ],
        ids=["rejected-with-source", "approved-no-source", "two-reasons"],
    )
    def test_round_trip(self, decision: Decision) -> None:
        """Every Decision field survives encode_decision and decode_decision."""
        codec = AvroCodec()
        assert codec.decode_decision(codec.encode_decision(decision)) == decision

    def test_single_object_by_default(self) -> None:
        """With no registry, decisions carry the bundled schema's fingerprint."""
        value = AvroCodec().encode_decision(_decision())
        assert value[:SINGLE_OBJECT_HEADER_SIZE] == (
            b"\xc3\x01" + BUNDLED[LISTING_DECISION].fingerprint
        )

    def test_confluent_framing_with_a_decision_schema_id(self) -> None:
        """Given the registered id, decisions are Confluent-framed and read back without a lookup."""
        source = FakeSource({})
        codec = AvroCodec(source, decision_schema_id=300)
        value = codec.encode_decision(_decision())
        assert value[:CONFLUENT_HEADER_SIZE] == b"\x00\x00\x00\x01\x2c"
        assert codec.decode_decision(value) == _decision()
        assert source.calls == []


def _body_of(listing: Listing) -> bytes:
    return AvroCodec().encode_listing(listing)[SINGLE_OBJECT_HEADER_SIZE:]


def _single_object(body: bytes) -> bytes:
    return b"\xc3\x01" + BUNDLED[LISTING_CREATED].fingerprint + body


def _bad_utf8_title() -> bytes:
    value = AvroCodec().encode_listing(make_listing(title="XXXX"))
    return value.replace(b"XXXX", b"X\xffXX")


def _negative_length() -> bytes:
    body = _body_of(make_listing(event_id="e"))
    assert body[:2] == b"\x02e"  # zigzag 1 = length 1, then "e"
    return _single_object(b"\x01" + body[1:])  # zigzag -1: a negative length


def _bad_union_index() -> bytes:
    value = AvroCodec().encode_listing(make_listing(ship_from_country="ZZ", channel=None))
    at = value.index(b"\x04ZZ") + 3  # channel's union index follows ship_from_country
    assert value[at] == 0  # branch 0: null
    return value[:at] + b"\x12" + value[at + 1 :]  # zigzag 9: a branch the union does not have


def _channel_bytes(patch: bytes) -> bytes:
    """A listing whose channel (union branch index, enum index) is replaced by `patch`."""
    value = AvroCodec().encode_listing(make_listing(ship_from_country="ZZ", channel="DOMESTIC"))
    at = value.index(b"\x04ZZ") + 3
    assert value[at : at + 2] == b"\x02\x00"  # branch 1 (the enum), symbol 0 (DOMESTIC)
    return value[:at] + patch + value[at + 2 :]


#: Enums in an array, a map, a union and a nested record, the last three by named reference.
_NESTED = parse_schema(
    {
        "type": "record",
        "name": "T",
        "fields": [
            {"name": "a", "type": {"type": "array", "items": _ENUM}},
            {"name": "m", "type": {"type": "map", "values": "E"}},
            {"name": "u", "type": ["null", "E"]},
            {
                "name": "r",
                "type": {"type": "record", "name": "R", "fields": [{"name": "e", "type": "E"}]},
            },
        ],
    }
)
#: a=[Y], m={k: X}, u=X, r.e=Y; each part is patched below.
_PARTS = (b"\x02\x02\x00", b"\x02\x02k\x00\x00", b"\x02\x00", b"\x02")


class TestStrictIndexes:
    """Avro indexes are zero-based; fastavro alone reads a negative one from the end of the list."""

    @pytest.mark.parametrize(
        ("patch", "message"),
        [
            (b"\x02\x01", "index -1"),  # enum index -1 would read as CROSS_BORDER
            (b"\x02\x03", "index -2"),  # enum index -2 would read as DOMESTIC
            (b"\x02\x04", "index 2"),  # past the last symbol
            (b"\x01\x00", "branch index -1"),  # branch -1 would read the enum
        ],
        ids=["enum-minus-1", "enum-minus-2", "enum-past-end", "union-minus-1"],
    )
    def test_negative_or_unknown_index_is_corrupt(self, patch: bytes, message: str) -> None:
        """A negative enum symbol or union branch index is corrupt, not a symbol from the end."""
        with pytest.raises(DecodeError, match=message) as info:
            AvroCodec().decode_listing(_channel_bytes(patch))
        assert info.value.code == "corrupt"

    @pytest.mark.parametrize(
        ("patch", "channel"),
        [(b"\x00", None), (b"\x02\x00", "DOMESTIC"), (b"\x02\x02", "CROSS_BORDER")],
        ids=["null", "domestic", "cross-border"],
    )
    def test_valid_indexes_still_read(self, patch: bytes, channel: str | None) -> None:
        """The strict reader changes nothing for well-formed values."""
        assert AvroCodec().decode_listing(_channel_bytes(patch)).channel == channel

    def test_decision_outcome_enum_is_strict_too(self) -> None:
        """Every schema the codec reads gets the check: here ListingDecision's outcome."""
        value = AvroCodec().encode_decision(_decision(outcome="APPROVED"))
        at = value.index(b"\x04ID", SINGLE_OBJECT_HEADER_SIZE) + 3  # outcome follows site "ID"
        assert value[at] == 0
        with pytest.raises(DecodeError, match="KeyError: -1") as info:
            AvroCodec().decode_decision(value[:at] + b"\x01" + value[at + 1 :])
        assert info.value.code == "corrupt"

    def test_strict_schema_reads_what_fastavro_reads(self) -> None:
        """Well-formed nested enums decode as with the plain schema."""
        body = b"".join(_PARTS)
        expected = {"a": ["Y"], "m": {"k": "X"}, "u": "X", "r": {"e": "Y"}}
        assert schemaless_reader(BytesIO(body), strict_schema(_NESTED), None) == expected
        assert schemaless_reader(BytesIO(body), _NESTED, None) == expected

    @pytest.mark.parametrize(
        ("part", "patch"),
        [(0, b"\x02\x01\x00"), (1, b"\x02\x02k\x01\x00"), (2, b"\x01\x00"), (3, b"\x01")],
        ids=["enum-in-array", "enum-in-map", "union-branch", "enum-in-nested-record"],
    )
    def test_negative_index_anywhere_raises(self, part: int, patch: bytes) -> None:
        """strict_schema reaches enums and unions inside arrays, maps, unions and named references."""
        parts = list(_PARTS)
        parts[part] = patch
        body = b"".join(parts)
        schemaless_reader(BytesIO(body), _NESTED, None)  # plain fastavro reads it from the end
        with pytest.raises((KeyError, IndexError)):
            schemaless_reader(BytesIO(body), strict_schema(_NESTED), None)


class TestDecodeErrors:
    @pytest.mark.parametrize(
        ("value", "code", "message"),
        [
            (None, "empty", "tombstone"),
            (b"", "empty", "empty"),
            (b'{"listing_id": "lst-1"}', "unknown_magic", "neither Confluent"),
            (b"\xc3\x01\x00", "truncated", "header needs 10 bytes"),
            (_single_object(_body_of(make_listing())[:-3]), "truncated", "ends inside the record"),
            (_single_object(b""), "truncated", "ends inside the record"),
            (_single_object(_body_of(make_listing()) + b"\x00"), "corrupt", "1 unread bytes"),
            (_negative_length(), "corrupt", "negative length -1"),
            (_bad_union_index(), "corrupt", "union branch index 9"),
            (
                b"\xc3\x01" + bytes(8) + _body_of(make_listing()),
                "unknown_fingerprint",
                "0000000000000000",
            ),
            (
                b"\x00\x00\x00\x00\x07" + _body_of(make_listing()),
                "unknown_schema_id",
                "no schema registry",
            ),
            (_bad_utf8_title(), "invalid_utf8", "not UTF-8"),
            (
                AvroCodec().encode_decision(_decision()),
                "schema_mismatch",
                "ListingDecision cannot be read as",
            ),
        ],
        ids=[
            "tombstone",
            "empty",
            "json",
            "short-header",
            "truncated-body",
            "header-only",
            "trailing-byte",
            "negative-length",
            "bad-union-index",
            "unknown-fingerprint",
            "confluent-without-registry",
            "invalid-utf8",
            "decision-on-listing-topic",
        ],
    )
    def test_each_failure_has_its_code(self, value: bytes | None, code: str, message: str) -> None:
        """Every way a value can be bad is a DecodeError with a stable code and a readable message."""
        with pytest.raises(DecodeError, match=message) as info:
            AvroCodec().decode_listing(value)
        assert info.value.code == code

    def test_schema_mismatch_when_the_registry_schema_cannot_resolve(self) -> None:
        """A registered writer whose field types cannot be read as ours is schema_mismatch."""
        raw = json.loads(BUNDLED[LISTING_CREATED].text)
        for field in raw["fields"]:
            if field["name"] == "title":
                field["type"] = "long"
        codec = AvroCodec(FakeSource({5: parse_schema(raw)}))
        value = b"\x00\x00\x00\x00\x05" + _body_of(make_listing())
        with pytest.raises(DecodeError, match="cannot resolve against the reader") as info:
            codec.decode_listing(value)
        assert info.value.code == "schema_mismatch"

    def test_decode_decision_reports_errors_the_same_way(self) -> None:
        """decode_decision shares the framing and error codes of decode_listing."""
        with pytest.raises(DecodeError, match="unknown_magic"):
            AvroCodec().decode_decision(b"junk")


class TestEncodeErrors:
    @pytest.mark.parametrize(
        ("listing", "code", "message"),
        [
            (make_listing(price=Price(2**63, "IDR")), "schema_mismatch", "cannot encode"),
            (make_listing(channel="SIDEWAYS"), "schema_mismatch", "cannot encode"),
            (make_listing(title=None), "schema_mismatch", "cannot encode"),
            (make_listing(title="\ud800"), "invalid_utf8", "surrogates"),
        ],
        ids=["amount-over-64-bits", "unknown-channel", "null-title", "lone-surrogate"],
    )
    def test_value_outside_the_schema(self, listing: Listing, code: str, message: str) -> None:
        """A listing the schema cannot carry fails with a DecodeError, not a fastavro exception."""
        with pytest.raises(DecodeError, match=message) as info:
            AvroCodec().encode_listing(listing)
        assert info.value.code == code

    def test_decision_with_unknown_outcome(self) -> None:
        """An outcome outside the enum is refused on encode, before it reaches the topic."""
        with pytest.raises(DecodeError, match="cannot encode") as info:
            AvroCodec().encode_decision(_decision(outcome="MAYBE"))
        assert info.value.code == "schema_mismatch"


class TestSchemaSourceSeam:
    def test_one_lookup_per_schema_id(self) -> None:
        """Writer schemas are fetched and paired with the reader once per id, not per message."""
        source = FakeSource({8: LISTING_SCHEMA, 9: LISTING_SCHEMA})
        codec = AvroCodec(source)
        for n in range(50):
            value = codec.encode_listing_confluent(make_listing(event_id=f"e{n}"), 8 + n % 2)
            assert codec.decode_listing(value).event_id == f"e{n}"
        assert sorted(source.calls) == [8, 9]

    def test_unknown_id_is_asked_again_next_time(self) -> None:
        """A miss is not cached: the id may be registered by the time the next record comes."""
        source = FakeSource({})
        codec = AvroCodec(source)
        value = codec.encode_listing_confluent(make_listing(), 77)
        for _ in range(2):
            with pytest.raises(DecodeError, match="77 is not in the registry"):
                codec.decode_listing(value)
        assert source.calls == [77, 77]
        source.schemas[77] = LISTING_SCHEMA
        assert codec.decode_listing(value) == make_listing()

    def test_registry_outage_propagates(self) -> None:
        """SchemaSourceUnavailable is not a DecodeError: the batch is retried, not dead-lettered."""
        source = FakeSource({4: LISTING_SCHEMA})
        source.down = True
        codec = AvroCodec(source)
        value = codec.encode_listing_confluent(make_listing(), 4)
        with pytest.raises(SchemaSourceUnavailable):
            codec.decode_listing(value)
        source.down = False
        assert codec.decode_listing(value) == make_listing()


class TestBundledSchemas:
    @pytest.mark.parametrize(
        "name", [LISTING_CREATED, LISTING_DECISION], ids=["created", "decision"]
    )
    def test_every_field_and_type_is_documented(self, name: str) -> None:
        """Each record, enum and field in a shipped schema carries a doc."""
        undocumented: list[str] = []

        def walk(node: Any, path: str) -> None:
            if isinstance(node, list):
                for item in node:
                    walk(item, path)
            elif isinstance(node, dict):
                if node.get("type") in {"record", "enum"} and not node.get("doc"):
                    undocumented.append(f"{path}{node['name']}")
                for field in node.get("fields", ()):
                    if not field.get("doc"):
                        undocumented.append(f"{path}{field['name']}")
                    walk(field["type"], f"{path}{field['name']}.")
                for key in ("items", "values"):
                    walk(node.get(key), path)

        walk(json.loads(BUNDLED[name].text), "")
        assert undocumented == []

    @pytest.mark.parametrize(
        "name", [LISTING_CREATED, LISTING_DECISION], ids=["created", "decision"]
    )
    def test_namespaced_and_versioned(self, name: str) -> None:
        """Names live in a versioned namespace, so a breaking change gets a new one."""
        assert json.loads(BUNDLED[name].text)["namespace"] == "id.marketplace.importclosure.v1"

    def test_top_level_files_are_what_the_package_ships(self) -> None:
        """schemas/*.avsc at the repository root and the package data are the same text."""
        from pathlib import Path

        root = Path(__file__).resolve().parents[3] / "schemas"
        assert (root / "ListingCreated.avsc").read_text(encoding="utf-8") == BUNDLED[
            LISTING_CREATED
        ].text
        assert (root / "ListingDecision.avsc").read_text(encoding="utf-8") == BUNDLED[
            LISTING_DECISION
        ].text
