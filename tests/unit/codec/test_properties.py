"""Properties: hostile bytes only ever raise DecodeError; any valid listing or decision round-trips."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.codec import (
    LISTING_CREATED,
    LISTING_DECISION,
    AvroCodec,
    BundledSchemas,
    listing_from_json,
    listing_to_json,
)
from consumer.codec.framing import confluent_header, single_object_header
from consumer.codec.schemas import ParsedSchema
from consumer.core.records import (
    Decision,
    Exemption,
    FxUsed,
    Listing,
    Price,
    Provenance,
    Reason,
    SourceRef,
)
from consumer.errors import DecodeError

BUNDLED = BundledSchemas.load()
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
#: Epoch milliseconds RFC 3339 can print (years 0001 to 9999), for the JSON round trip.
PRINTABLE_MS = st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999)
TEXT = st.text(max_size=20)
KNOWN_ID = 12


class _Source:
    def writer_schema(self, schema_id: int) -> ParsedSchema:
        if schema_id != KNOWN_ID:
            raise DecodeError("unknown_schema_id", f"schema id {schema_id} is not registered")
        return BUNDLED[LISTING_CREATED].parsed


CODEC = AvroCodec(_Source(), decision_schema_id=KNOWN_ID + 1)
PLAIN_CODEC = AvroCodec()


def listings(times: st.SearchStrategy[int] = LONG) -> st.SearchStrategy[Listing]:
    return st.builds(
        Listing,
        event_id=TEXT,
        event_time_ms=times,
        listing_id=TEXT,
        seller_id=TEXT,
        site=TEXT,
        seller_country=TEXT,
        ship_from_country=TEXT,
        category_id=TEXT,
        category_path=st.lists(TEXT, max_size=4).map(tuple),
        title=st.text(max_size=80),
        price=st.builds(Price, amount_minor=LONG, currency=TEXT),
        channel=st.sampled_from([None, "DOMESTIC", "CROSS_BORDER"]),
        brand=st.none() | TEXT,
        hs_code=st.none() | TEXT,
        attributes=st.dictionaries(TEXT, TEXT, max_size=4),
    )


decisions = st.builds(
    Decision,
    decision_id=TEXT,
    event_id=TEXT,
    listing_id=TEXT,
    seller_id=TEXT,
    site=TEXT,
    outcome=st.sampled_from(["APPROVED", "REJECTED", "REVIEW"]),
    reasons=st.lists(
        st.builds(
            Reason,
            code=TEXT,
            rule_id=TEXT,
            message=TEXT,
            # a map's keys are unique: the decoded dict would merge duplicate tags
            messages=st.dictionaries(TEXT, TEXT, max_size=3).map(lambda d: tuple(d.items())),
            phrase=st.none() | TEXT,
        ),
        max_size=3,
    ).map(tuple),
    matched_rules=st.lists(TEXT, max_size=3).map(tuple),
    cluster=st.none() | TEXT,
    cross_border=st.booleans(),
    policy=TEXT,
    policy_version=TEXT,
    event_time_ms=LONG,
    decided_at_ms=LONG,
    source=st.none()
    | st.builds(
        SourceRef,
        topic=TEXT,
        partition=st.integers(min_value=0, max_value=2**31 - 1),
        offset=st.integers(min_value=0, max_value=2**63 - 1),
    ),
    provenance=st.builds(
        Provenance,
        mode=st.sampled_from(["LIVE", "SHADOW", "REPLAY"]),
        replay_run=st.none() | TEXT,
        as_of_ms=st.none() | LONG,
    ),
    exemptions=st.lists(st.builds(Exemption, rule_id=TEXT, by=TEXT), max_size=3).map(tuple),
    fx=st.none()
    | st.builds(
        FxUsed,
        table_from_ms=st.none() | LONG,
        base=TEXT,
        currency=TEXT,
        rate=st.none() | TEXT,
    ),
)

headers = st.sampled_from(
    [
        single_object_header(BUNDLED[LISTING_CREATED].fingerprint),
        single_object_header(BUNDLED[LISTING_DECISION].fingerprint),
        confluent_header(KNOWN_ID),
        confluent_header(KNOWN_ID + 1),
    ]
)


DECODE_CODES = frozenset(
    {
        "empty",
        "unknown_magic",
        "unknown_schema_id",
        "unknown_fingerprint",
        "truncated",
        "corrupt",
        "invalid_utf8",
        "schema_mismatch",
    }
)


def _decodes_or_refuses(value: bytes) -> None:
    """Decoding returns a Listing or raises DecodeError with a known code; anything else escapes."""
    code = None
    try:
        CODEC.decode_listing(value)
    except DecodeError as exc:
        code = exc.code
    assert code is None or code in DECODE_CODES


class TestHostileBytes:
    @settings(max_examples=300)
    @given(st.binary(max_size=200))
    def test_random_bytes(self, value: bytes) -> None:
        """Any value at all decodes or raises DecodeError with a known code, nothing else."""
        _decodes_or_refuses(value)

    @settings(max_examples=500)
    @given(headers, st.binary(max_size=300))
    def test_valid_header_then_random_body(self, header: bytes, body: bytes) -> None:
        """Past a recognised header, garbage bodies still only produce DecodeError."""
        _decodes_or_refuses(header + body)

    @settings(max_examples=300)
    @given(listings(), st.data())
    def test_mutated_valid_value(self, listing: Listing, data: st.DataObject) -> None:
        """A real value with bytes flipped, cut or added only produces DecodeError."""
        value = bytearray(CODEC.encode_listing(listing))
        at = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            value[at] ^= data.draw(st.integers(min_value=1, max_value=255))
        elif action == "cut":
            del value[at:]
        else:
            value[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        _decodes_or_refuses(bytes(value))


class TestRoundTrips:
    @given(listings())
    def test_listing_single_object(self, listing: Listing) -> None:
        """encode_listing then decode_listing is the identity."""
        assert PLAIN_CODEC.decode_listing(PLAIN_CODEC.encode_listing(listing)) == listing

    @given(listings())
    def test_listing_confluent(self, listing: Listing) -> None:
        """The Confluent framing round-trips through the schema source too."""
        assert CODEC.decode_listing(CODEC.encode_listing_confluent(listing, KNOWN_ID)) == listing

    @given(decisions)
    def test_decision(self, decision: Decision) -> None:
        """encode_decision then decode_decision is the identity, in both framings."""
        assert PLAIN_CODEC.decode_decision(PLAIN_CODEC.encode_decision(decision)) == decision
        assert CODEC.decode_decision(CODEC.encode_decision(decision)) == decision

    @given(listings(PRINTABLE_MS))
    def test_listing_json_form(self, listing: Listing) -> None:
        """listing_to_json, serialised and parsed as the CLI does, reads back to the same listing."""
        text = json.dumps(listing_to_json(listing), ensure_ascii=False)
        assert listing_from_json(json.loads(text)) == listing
