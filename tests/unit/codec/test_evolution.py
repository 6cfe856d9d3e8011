"""Schema evolution: older and newer writers against our reader, and our output against older readers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from consumer.codec import LISTING_CREATED, LISTING_DECISION, AvroCodec, BundledSchemas
from consumer.codec.framing import confluent_header, schema_fingerprint, single_object_header
from consumer.codec.schemas import ParsedSchema
from consumer.core.records import (
    LIVE,
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

ROOT = Path(__file__).resolve().parents[3]

BUNDLED = BundledSchemas.load()
Raw = dict[str, Any]

RECORD: Raw = {
    "event_id": "evt-9",
    "event_time": 1_695_661_200_000,
    "listing_id": "lst-9",
    "seller_id": "seller-my-1",
    "site": "ID",
    "seller_country": "MY",
    "ship_from_country": "MY",
    "channel": "CROSS_BORDER",
    "category_id": "c-402",
    "category_path": ["Electronics", "Audio"],
    "title": "Wireless Earbuds",
    "brand": "Sonic",
    "price": {"amount_minor": 8900, "currency": "MYR"},
    "hs_code": "851830",
    "attributes": {"condition": "new"},
}
EXPECTED = Listing(
    event_id="evt-9",
    event_time_ms=1_695_661_200_000,
    listing_id="lst-9",
    seller_id="seller-my-1",
    site="ID",
    seller_country="MY",
    ship_from_country="MY",
    category_id="c-402",
    category_path=("Electronics", "Audio"),
    title="Wireless Earbuds",
    price=Price(8900, "MYR"),
    channel="CROSS_BORDER",
    brand="Sonic",
    hs_code="851830",
    attributes={"condition": "new"},
)


def _schema(name: str) -> Raw:
    raw: Raw = json.loads(BUNDLED[name].text)
    return raw


def _field(raw: Raw, name: str) -> Raw:
    found: Raw = next(f for f in raw["fields"] if f["name"] == name)
    return found


def _without(*names: str) -> Callable[[Raw], Raw]:
    def change(raw: Raw) -> Raw:
        raw["fields"] = [f for f in raw["fields"] if f["name"] not in names]
        return raw

    return change


def _with_field(field: Raw) -> Callable[[Raw], Raw]:
    def change(raw: Raw) -> Raw:
        raw["fields"].append(field)
        return raw

    return change


def _retyped(name: str, new_type: Any) -> Callable[[Raw], Raw]:
    def change(raw: Raw) -> Raw:
        _field(raw, name)["type"] = new_type
        return raw

    return change


def _renamed(new_name: str) -> Callable[[Raw], Raw]:
    def change(raw: Raw) -> Raw:
        raw["name"] = new_name
        return raw

    return change


def _price_defined_earlier(raw: Raw) -> Raw:
    """A newer writer that defines Price in an added field first and then refers to it by name."""
    price = _field(raw, "price")
    raw["fields"].insert(
        0, {"name": "list_price", "type": ["null", price["type"]], "default": None}
    )
    price["type"] = "Price"
    return raw


def _write(schema: ParsedSchema, record: Raw) -> bytes:
    stream = BytesIO()
    schemaless_writer(stream, schema, record)
    return stream.getvalue()


def _single_object(schema: ParsedSchema, record: Raw) -> bytes:
    return single_object_header(schema_fingerprint(schema)) + _write(schema, record)


class TestListingWriters:
    """Producers on another version of ListingCreated, read with our reader schema."""

    @pytest.mark.parametrize(
        ("change", "record", "expected"),
        [
            (
                _with_field({"name": "condition", "type": ["null", "string"], "default": None}),
                {**RECORD, "condition": "refurbished"},
                EXPECTED,
            ),
            (
                _with_field(
                    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}
                ),
                {**RECORD, "tags": ["sale", "new"]},
                EXPECTED,
            ),
            (
                _without("attributes", "hs_code"),
                {k: v for k, v in RECORD.items() if k not in ("attributes", "hs_code")},
                replace(EXPECTED, attributes={}, hs_code=None),
            ),
            (
                _without("channel", "brand"),
                {k: v for k, v in RECORD.items() if k not in ("channel", "brand")},
                replace(EXPECTED, channel=None, brand=None),
            ),
            (
                _retyped("event_time", "long"),
                RECORD,
                EXPECTED,
            ),
            (
                _price_defined_earlier,
                {**RECORD, "list_price": {"amount_minor": 9900, "currency": "MYR"}},
                EXPECTED,
            ),
        ],
        ids=[
            "newer-writer-added-optional-field",
            "newer-writer-added-array",
            "older-writer-without-attributes-and-hs-code",
            "older-writer-without-channel-and-brand",
            "writer-without-logical-type",
            "named-type-moved-to-an-added-field",
        ],
    )
    def test_compatible_writer_decodes(
        self, change: Callable[[Raw], Raw], record: Raw, expected: Listing
    ) -> None:
        """A writer that differs only in ways Avro resolution allows decodes, in both framings."""
        writer = parse_schema(change(_schema(LISTING_CREATED)))
        single = AvroCodec(writer_schemas=[writer])
        assert single.decode_listing(_single_object(writer, record)) == expected

        class Source:
            def writer_schema(self, schema_id: int) -> ParsedSchema:
                assert schema_id == 31
                return writer

        confluent = AvroCodec(Source())
        assert confluent.decode_listing(confluent_header(31) + _write(writer, record)) == expected

    @pytest.mark.parametrize(
        ("change", "record", "message"),
        [
            (
                _without("title"),
                {k: v for k, v in RECORD.items() if k != "title"},
                "No default value for field title",
            ),
            (
                _retyped("category_id", "long"),
                {**RECORD, "category_id": 402},
                "long is not string",
            ),
            (
                _retyped(
                    "channel",
                    [
                        "null",
                        {
                            "type": "enum",
                            "name": "Channel",
                            "symbols": ["DOMESTIC", "CROSS_BORDER", "BONDED_ZONE"],
                        },
                    ],
                ),
                {**RECORD, "channel": "BONDED_ZONE"},
                "BONDED_ZONE",
            ),
            (
                _retyped("event_time", {"type": "long", "logicalType": "timestamp-micros"}),
                {**RECORD, "event_time": 1_695_661_200_000_000},
                "timestamp-micros in the writer but timestamp-millis",
            ),
            (
                _renamed("ListingUpdated"),
                RECORD,
                "ListingUpdated cannot be read as",
            ),
            (
                lambda raw: {"type": "enum", "name": raw["name"], "symbols": ["A"]},
                "A",
                "enum ListingCreated cannot be read as record",
            ),
        ],
        ids=[
            "writer-missing-required-field",
            "field-type-changed",
            "unknown-channel-symbol",
            "timestamp-micros",
            "other-record",
            "enum-with-our-name",
        ],
    )
    def test_incompatible_writer_is_schema_mismatch(
        self, change: Callable[[Raw], Raw], record: Any, message: str
    ) -> None:
        """A writer our reader cannot resolve is dead-lettered as schema_mismatch, never misread."""
        writer = parse_schema(change(_schema(LISTING_CREATED)))
        codec = AvroCodec(writer_schemas=[writer])
        with pytest.raises(DecodeError, match=message) as info:
            codec.decode_listing(_single_object(writer, record))
        assert info.value.code == "schema_mismatch"

    def test_unknown_channel_symbol_only_fails_the_records_that_use_it(self) -> None:
        """Records of a newer writer using known symbols still decode; Channel has no default."""
        raw = _retyped(
            "channel",
            [
                "null",
                {
                    "type": "enum",
                    "name": "Channel",
                    "symbols": ["DOMESTIC", "CROSS_BORDER", "BONDED_ZONE"],
                },
            ],
        )(_schema(LISTING_CREATED))
        writer = parse_schema(raw)
        codec = AvroCodec(writer_schemas=[writer])
        assert codec.decode_listing(_single_object(writer, RECORD)) == EXPECTED

    def test_writer_named_by_a_reader_alias_decodes(self) -> None:
        """A record renamed in the writer still decodes when our reader lists the old name."""
        reader = {**_schema(LISTING_CREATED), "aliases": ["ListingPosted"]}
        bundled = BundledSchemas.of([json.dumps(reader), BUNDLED[LISTING_DECISION].text])
        writer = parse_schema(_renamed("ListingPosted")(_schema(LISTING_CREATED)))
        codec = AvroCodec(writer_schemas=[writer], bundled=bundled)
        assert codec.decode_listing(_single_object(writer, RECORD)) == EXPECTED

    def test_defaulted_attributes_are_not_shared(self) -> None:
        """Two listings defaulted by resolution do not share one attributes dict."""
        writer = parse_schema(_without("attributes")(_schema(LISTING_CREATED)))
        codec = AvroCodec(writer_schemas=[writer])
        record = {k: v for k, v in RECORD.items() if k != "attributes"}
        first = codec.decode_listing(_single_object(writer, record))
        second = codec.decode_listing(_single_object(writer, record))
        assert first.attributes == {}
        assert first.attributes is not second.attributes


DECISION = Decision(
    decision_id="d-1",
    event_id="evt-9",
    listing_id="lst-9",
    seller_id="seller-my-1",
    site="ID",
    outcome="REJECTED",
    reasons=(Reason("CROSS_BORDER_BELOW_MIN_PRICE", "permendag-min-price", "below USD 100"),),
    matched_rules=("permendag-min-price",),
    cluster=None,
    cross_border=True,
    policy="permendag-31-2023",
    policy_version="2023.09+a1b2c3d",
    event_time_ms=1_695_661_200_000,
    decided_at_ms=1_695_661_200_500,
    source=SourceRef("listing-created", 0, 7),
)
DECISION_RECORD: Raw = {
    "decision_id": "d-1",
    "event_id": "evt-9",
    "listing_id": "lst-9",
    "seller_id": "seller-my-1",
    "site": "ID",
    "outcome": "REJECTED",
    "reasons": [
        {
            "code": "CROSS_BORDER_BELOW_MIN_PRICE",
            "rule_id": "permendag-min-price",
            "message": "below USD 100",
            "messages": {},
            "phrase": None,
        }
    ],
    "matched_rules": ["permendag-min-price"],
    "cluster": None,
    "cross_border": True,
    "policy": "permendag-31-2023",
    "policy_version": "2023.09+a1b2c3d",
    "event_time": 1_695_661_200_000,
    "decided_at": 1_695_661_200_500,
    "source": {"topic": "listing-created", "partition": 0, "offset": 7},
    "mode": "LIVE",
    "replay_run": None,
    "as_of": None,
    "exemptions": [],
    "fx": None,
}


def _before_review(raw: Raw) -> Raw:
    """ListingDecision as it was before issue 15: no REVIEW symbol, no exemptions field."""
    raw = _without("exemptions")(raw)
    outcome = _field(raw, "outcome")["type"]
    outcome["symbols"] = [s for s in outcome["symbols"] if s != "REVIEW"]
    return raw


#: ListingDecision's fields with defaults, grouped as they were added: each group may be missing
#: from an older writer or reader.
DEFAULTED = [
    ("cluster",),
    ("source",),
    ("reasons", "matched_rules"),
    ("mode", "replay_run", "as_of"),
    ("exemptions",),
    ("fx",),
]
DEFAULTED_IDS = ["cluster", "source", "reasons-and-matched-rules", "provenance", "exemptions", "fx"]


class TestDecisionEvolution:
    """Our ListingDecision against older and newer versions of itself."""

    def test_newer_outcome_reads_as_rejected(self) -> None:
        """Outcome's default symbol: an outcome added later fails closed in an older reader."""
        raw = _schema(LISTING_DECISION)
        _field(raw, "outcome")["type"]["symbols"].append("HELD_FOR_REVIEW")
        writer = parse_schema(raw)
        codec = AvroCodec(writer_schemas=[writer])
        value = _single_object(writer, {**DECISION_RECORD, "outcome": "HELD_FOR_REVIEW"})
        assert codec.decode_decision(value).outcome == "REJECTED"

    def test_review_reads_as_rejected_in_a_reader_before_review(self) -> None:
        """Old reader, new writer: a REVIEW decision fails closed as REJECTED, and the
        exemptions field a reader from before it does not know is skipped."""
        review = replace(
            DECISION,
            outcome="REVIEW",
            exemptions=(Exemption("permendag-min-price", "unless"),),
        )
        value = AvroCodec().encode_decision(review)
        old_reader = parse_schema(_before_review(_schema(LISTING_DECISION)))
        ours = parse_schema(_schema(LISTING_DECISION))
        record = schemaless_reader(BytesIO(value[10:]), ours, old_reader)
        assert isinstance(record, dict)
        assert record["outcome"] == "REJECTED"
        assert "exemptions" not in record
        assert record["reasons"] == DECISION_RECORD["reasons"]

    def test_new_reader_reads_a_writer_before_review(self) -> None:
        """New reader, old writer: a decision without the exemptions field reads with none."""
        writer = parse_schema(_before_review(_schema(LISTING_DECISION)))
        record = {k: v for k, v in DECISION_RECORD.items() if k != "exemptions"}
        codec = AvroCodec(writer_schemas=[writer])
        assert codec.decode_decision(_single_object(writer, record)) == DECISION

    def test_review_and_exemptions_round_trip(self) -> None:
        """Our reader reads our REVIEW decisions and their exemptions back unchanged."""
        review = replace(
            DECISION,
            outcome="REVIEW",
            exemptions=(Exemption("a", "unless"), Exemption("a", "allow-1")),
        )
        assert AvroCodec().decode_decision(AvroCodec().encode_decision(review)) == review

    def test_fx_is_skipped_by_a_reader_before_it(self) -> None:
        """Old reader, new writer: a decision naming its fx table and rate reads as before,
        without the fx field."""
        priced = replace(DECISION, fx=FxUsed(1_695_574_800_000, "USD", "IDR", "0.0000625"))
        value = AvroCodec().encode_decision(priced)
        old_reader = parse_schema(_without("fx")(_schema(LISTING_DECISION)))
        ours = parse_schema(_schema(LISTING_DECISION))
        record = schemaless_reader(BytesIO(value[10:]), ours, old_reader)
        assert isinstance(record, dict)
        assert "fx" not in record
        assert record["reasons"] == DECISION_RECORD["reasons"]
        assert record["exemptions"] == []

    def test_a_decision_before_fx_reads_with_none(self) -> None:
        """New reader, old writer: a decision written before the fx field reads with fx None."""
        writer = parse_schema(_without("fx")(_schema(LISTING_DECISION)))
        record = {k: v for k, v in DECISION_RECORD.items() if k != "fx"}
        decoded = AvroCodec(writer_schemas=[writer]).decode_decision(_single_object(writer, record))
        assert decoded == DECISION
        assert decoded.fx is None

    @pytest.mark.parametrize(
        "fx",
        [
            FxUsed(1_695_574_800_000, "USD", "IDR", "0.0000625"),
            FxUsed(None, "USD", "IDR", "0.000062"),
            FxUsed(1_695_574_800_000, "USD", "EUR", None),
        ],
        ids=["dated-table", "undated-rates", "no-rate-in-force"],
    )
    def test_fx_round_trips(self, fx: FxUsed) -> None:
        """Our reader reads the fx table and rate we write back unchanged."""
        priced = replace(DECISION, fx=fx)
        assert AvroCodec().decode_decision(AvroCodec().encode_decision(priced)) == priced

    def test_newer_writer_with_added_field(self) -> None:
        """A decision written with an extra optional field still decodes."""
        raw = _with_field({"name": "reviewer", "type": ["null", "string"], "default": None})(
            _schema(LISTING_DECISION)
        )
        writer = parse_schema(raw)
        codec = AvroCodec(writer_schemas=[writer])
        value = _single_object(writer, {**DECISION_RECORD, "reviewer": "ops"})
        assert codec.decode_decision(value) == DECISION

    def test_older_reader_reads_a_replay_decision(self) -> None:
        """A reader from before the provenance fields reads a REPLAY decision, minus those fields."""
        replayed = replace(
            DECISION, provenance=Provenance("REPLAY", "close-crafts", 1_700_000_000_000)
        )
        value = AvroCodec().encode_decision(replayed)
        old_reader = parse_schema(
            _without("mode", "replay_run", "as_of")(_schema(LISTING_DECISION))
        )
        ours = parse_schema(_schema(LISTING_DECISION))
        record = schemaless_reader(BytesIO(value[10:]), ours, old_reader)
        assert isinstance(record, dict)
        assert record["decision_id"] == "d-1"
        assert not {"mode", "replay_run", "as_of"} & set(record)
        assert AvroCodec().decode_decision(value) == replayed

    @pytest.mark.parametrize("dropped", DEFAULTED, ids=DEFAULTED_IDS)
    def test_older_reader_reads_our_output(self, dropped: tuple[str, ...]) -> None:
        """A consumer on a schema without our defaulted fields still reads what we produce."""
        old_reader = parse_schema(_without(*dropped)(_schema(LISTING_DECISION)))
        value = AvroCodec().encode_decision(DECISION)
        ours = parse_schema(_schema(LISTING_DECISION))
        record = schemaless_reader(BytesIO(value[10:]), ours, old_reader)
        assert isinstance(record, dict)
        assert record["decision_id"] == "d-1"
        assert not set(dropped) & set(record)

    @pytest.mark.parametrize("dropped", DEFAULTED, ids=DEFAULTED_IDS)
    def test_older_writer_without_defaulted_fields(self, dropped: tuple[str, ...]) -> None:
        """Fields with defaults may be missing in the writer; the reader fills the default."""
        writer = parse_schema(_without(*dropped)(_schema(LISTING_DECISION)))
        record = {k: v for k, v in copy.deepcopy(DECISION_RECORD).items() if k not in dropped}
        decoded = AvroCodec(writer_schemas=[writer]).decode_decision(_single_object(writer, record))
        defaults: dict[str, Any] = {
            "cluster": None,
            "source": None,
            "reasons": (),
            "matched_rules": (),
            "exemptions": (),
            "fx": None,
        }
        provenance = {"mode", "replay_run", "as_of"}
        kept = {k: defaults[k] for k in dropped if k not in provenance}
        # A decision written before the provenance fields existed reads as a live one.
        assert decoded == replace(DECISION, **kept)
        assert decoded.provenance == LIVE


def _reason_without(*names: str) -> Callable[[Raw], Raw]:
    """ListingDecision with fields of its nested Reason record removed (an older Reason)."""

    def drop(raw: Raw) -> Raw:
        raw = copy.deepcopy(raw)
        reason = _field(raw, "reasons")["type"]["items"]
        reason["fields"] = [f for f in reason["fields"] if f["name"] not in names]
        return raw

    return drop


#: A reason of a text rule with its message in two languages (issue 16).
TRANSLATED = Reason(
    "IMPORT_CLOSED_GOODS_NAMED",
    "closed-goods-in-title",
    "Judul menyebut barang kluster tertutup",
    (("id", "Judul menyebut barang kluster tertutup"), ("en", "The title names closed goods")),
    "batik",
)


class TestReasonEvolution:
    """Reason's messages and phrase (issue 16) against readers and writers without them."""

    def test_translations_and_phrase_round_trip(self) -> None:
        decision = replace(DECISION, reasons=(TRANSLATED,))
        assert AvroCodec().decode_decision(AvroCodec().encode_decision(decision)) == decision

    def test_a_reader_before_them_reads_the_default_message(self) -> None:
        """Old reader, new writer: the reason reads as code, rule and default-language message."""
        value = AvroCodec().encode_decision(replace(DECISION, reasons=(TRANSLATED,)))
        old_reader = parse_schema(_reason_without("messages", "phrase")(_schema(LISTING_DECISION)))
        ours = parse_schema(_schema(LISTING_DECISION))
        record = schemaless_reader(BytesIO(value[10:]), ours, old_reader)
        assert isinstance(record, dict)
        assert record["reasons"] == [
            {
                "code": "IMPORT_CLOSED_GOODS_NAMED",
                "rule_id": "closed-goods-in-title",
                "message": "Judul menyebut barang kluster tertutup",
            }
        ]

    def test_a_writer_before_them_reads_with_no_translations_and_no_phrase(self) -> None:
        """New reader, old writer: messages {} and phrase null, so the Reason is as before."""
        writer = parse_schema(_reason_without("messages", "phrase")(_schema(LISTING_DECISION)))
        record = copy.deepcopy(DECISION_RECORD)
        for reason in record["reasons"]:
            del reason["messages"], reason["phrase"]
        decoded = AvroCodec(writer_schemas=[writer]).decode_decision(_single_object(writer, record))
        assert decoded == DECISION
        assert decoded.reasons[0].messages == ()
        assert decoded.reasons[0].phrase is None

    def test_message_in_falls_back_to_the_default_language(self) -> None:
        assert TRANSLATED.message_in("en") == "The title names closed goods"
        assert TRANSLATED.message_in("fr") == TRANSLATED.message
        assert TRANSLATED.message_in(None) == TRANSLATED.message


class TestReleasedDecisionSchemas:
    """Decisions already on the topics, written by a released version without a registry, stay
    readable: the codec knows every released writer (schemas/history/) without being told."""

    def test_a_decision_written_before_issue_15_decodes_with_the_defaults(self) -> None:
        """The 8c5c1a4 writer (no REVIEW, no exemptions, no fx): read as it was, new fields empty."""
        text = (ROOT / "schemas" / "history" / "ListingDecision.1.avsc").read_text()
        writer = parse_schema(json.loads(text))
        record = {
            k: v for k, v in copy.deepcopy(DECISION_RECORD).items() if k not in ("exemptions", "fx")
        }
        decoded = AvroCodec().decode_decision(_single_object(writer, record))
        assert decoded == replace(DECISION, exemptions=(), fx=None)

    def test_a_decision_written_before_issue_16_decodes_with_the_defaults(self) -> None:
        """The 8a812c5 writer (reasons without messages and phrase): read with both empty."""
        text = (ROOT / "schemas" / "history" / "ListingDecision.2.avsc").read_text()
        writer = parse_schema(json.loads(text))
        record = copy.deepcopy(DECISION_RECORD)
        for reason in record["reasons"]:
            del reason["messages"], reason["phrase"]
        decoded = AvroCodec().decode_decision(_single_object(writer, record))
        assert decoded == DECISION

    def test_every_released_schema_is_known_by_its_fingerprint(self) -> None:
        """A history file the package does not ship would leave its decisions unreadable."""
        shipped = BundledSchemas.load().by_fingerprint
        for path in sorted((ROOT / "schemas" / "history").glob("*.avsc")):
            fingerprint = schema_fingerprint(parse_schema(json.loads(path.read_text())))
            assert fingerprint in shipped, path.name
