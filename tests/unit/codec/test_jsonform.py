"""The JSON form for `check`: reading listings with clear field errors, and printing decisions."""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import pytest

from consumer.codec import decision_to_json, listing_from_json, listing_to_json
from consumer.codec.jsonform import (
    MAX_LINE_BYTES,
    format_time,
    json_lines,
    listing_from_json_line,
    parse_time,
)
from consumer.core.records import Decision, FxUsed, Listing, Price, Provenance, Reason, SourceRef
from consumer.errors import DecodeError
from tests.unit.listings import MINIMAL_JSON

MINIMAL: dict[str, Any] = MINIMAL_JSON
MINIMAL_LISTING = Listing(
    event_id="evt-1",
    event_time_ms=1_627_984_800_000,
    listing_id="lst-1",
    seller_id="seller-cn-7",
    site="ID",
    seller_country="CN",
    ship_from_country="CN",
    category_id="c-101",
    category_path=("Women's Fashion", "Dresses"),
    title="Gaun Midi Motif Bunga",
    price=Price(15_000_000, "IDR"),
)


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in MINIMAL.items() if k != key}


class TestListingFromJson:
    def test_optional_fields_may_be_left_out(self) -> None:
        """channel, brand, hs_code and attributes default as in the Avro schema."""
        assert listing_from_json(MINIMAL) == MINIMAL_LISTING

    def test_every_field_is_read(self) -> None:
        """Optional fields given in JSON land in the listing."""
        obj = {
            **MINIMAL,
            "channel": "CROSS_BORDER",
            "brand": "Uniqlo",
            "hs_code": "620442",
            "attributes": {"condition": "new"},
        }
        listing = listing_from_json(obj)
        assert (listing.channel, listing.brand, listing.hs_code, listing.attributes) == (
            "CROSS_BORDER",
            "Uniqlo",
            "620442",
            {"condition": "new"},
        )

    def test_explicit_nulls_are_accepted(self) -> None:
        """null for a nullable field is the same as leaving it out."""
        obj = {**MINIMAL, "channel": None, "brand": None, "hs_code": None}
        assert listing_from_json(obj) == MINIMAL_LISTING

    @pytest.mark.parametrize(
        ("event_time", "expected_ms"),
        [
            ("2021-08-03T10:00:00Z", 1_627_984_800_000),
            ("2021-08-03T10:00:00.000Z", 1_627_984_800_000),
            ("2021-08-03T17:00:00+07:00", 1_627_984_800_000),
            ("2021-08-03t10:00:00z", 1_627_984_800_000),
            ("2021-08-03 10:00:00Z", 1_627_984_800_000),
            ("2021-08-03T10:00:00.1239Z", 1_627_984_800_123),
            ("1969-12-31T23:59:59.999Z", -1),
            (1_627_984_800_000, 1_627_984_800_000),
            (0, 0),
        ],
        ids=[
            "utc-z",
            "milliseconds",
            "jakarta-offset",
            "lowercase",
            "space-separator",
            "sub-ms-truncated",
            "before-epoch",
            "epoch-ms",
            "epoch-zero",
        ],
    )
    def test_event_time_forms(self, event_time: object, expected_ms: int) -> None:
        """RFC 3339 with any offset, or epoch milliseconds, become epoch milliseconds UTC."""
        assert listing_from_json({**MINIMAL, "event_time": event_time}).event_time_ms == expected_ms

    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            ([MINIMAL], "listing: expected a JSON object, got a list"),
            ("text", 'listing: expected a JSON object, got "text"'),
            (_without("title"), "title: required field missing"),
            (_without("price"), "price: required field missing"),
            ({**MINIMAL, "hs-code": "4901"}, "hs-code: unknown field"),
            ({**MINIMAL, "title": 5}, "title: expected a string, got 5"),
            ({**MINIMAL, "title": None}, "title: expected a string, got null"),
            ({**MINIMAL, "site": ["ID"]}, "site: expected a string, got a list"),
            (
                {**MINIMAL, "channel": "OFFSHORE"},
                'channel: expected null or one of DOMESTIC, CROSS_BORDER, got "OFFSHORE"',
            ),
            ({**MINIMAL, "brand": 4}, "brand: expected null or a string, got 4"),
            (
                {**MINIMAL, "category_path": "Fashion"},
                'category_path: expected a list of strings, got "Fashion"',
            ),
            (
                {**MINIMAL, "category_path": ["Fashion", 3]},
                "category_path: each item must be a string, got 3",
            ),
            (
                {**MINIMAL, "attributes": {"size": 42}},
                "attributes: each value must be a string, got 42",
            ),
            (
                {**MINIMAL, "attributes": []},
                "attributes: expected an object of strings, got a list",
            ),
            ({**MINIMAL, "price": 150000}, "price: expected an object, got 150000"),
            (
                {**MINIMAL, "price": {"currency": "IDR"}},
                "price.amount_minor: required field missing",
            ),
            (
                {**MINIMAL, "price": {"amount_minor": 1, "currency": "IDR", "tax": 0}},
                "price.tax: unknown field",
            ),
            (
                {**MINIMAL, "price": {"amount_minor": 1.5, "currency": "IDR"}},
                "price.amount_minor: expected a 64-bit integer, got 1.5",
            ),
            (
                {**MINIMAL, "price": {"amount_minor": True, "currency": "IDR"}},
                "price.amount_minor: expected a 64-bit integer, got true",
            ),
            (
                {**MINIMAL, "price": {"amount_minor": 2**63, "currency": "IDR"}},
                "price.amount_minor: expected a 64-bit integer, got 9223372036854775808",
            ),
            (
                {**MINIMAL, "price": {"amount_minor": 1, "currency": None}},
                "price.currency: expected a string, got null",
            ),
            (
                {**MINIMAL, "event_time": "2021-08-03"},
                r"event_time: '2021-08-03' has no UTC offset \(add Z or \+07:00\)",
            ),
            (
                {**MINIMAL, "event_time": "2021-08-03T10:00:00"},
                r"event_time: '2021-08-03T10:00:00' has no UTC offset \(add Z or \+07:00\)",
            ),
            (
                {**MINIMAL, "event_time": "yesterday"},
                "event_time: 'yesterday' is not an RFC 3339 date-time",
            ),
            (
                {**MINIMAL, "event_time": True},
                "event_time: expected an RFC 3339 string or epoch milliseconds, got true",
            ),
            (
                {**MINIMAL, "event_time": 1.5e12},
                "event_time: expected an RFC 3339 string or epoch milliseconds, got 1500000000000.0",
            ),
            ({**MINIMAL, "event_time": 10**18}, "event_time: .* outside the years 0001 to 9999"),
        ],
        ids=[
            "not-an-object",
            "string",
            "missing-title",
            "missing-price",
            "unknown-field",
            "title-int",
            "title-null",
            "site-list",
            "bad-channel",
            "brand-int",
            "path-string",
            "path-item-int",
            "attribute-value-int",
            "attributes-list",
            "price-number",
            "missing-amount",
            "unknown-price-field",
            "amount-float",
            "amount-bool",
            "amount-over-64-bits",
            "currency-null",
            "date-only",
            "naive-datetime",
            "not-a-time",
            "time-bool",
            "time-float",
            "time-out-of-range",
        ],
    )
    def test_invalid_listing_names_the_field(self, obj: object, message: str) -> None:
        """Each problem is DecodeError("invalid_listing") with "<field>: <what is wrong>"."""
        with pytest.raises(DecodeError, match=f"^invalid_listing: {message}$") as info:
            listing_from_json(obj)
        assert info.value.code == "invalid_listing"


class TestEveryFieldProblem:
    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            (
                {k: v for k, v in MINIMAL.items() if k not in ("title", "site", "seller_id")},
                "seller_id, site, title: required fields missing",
            ),
            (
                {**_without("title"), "hs-code": "4901", "colour": "red"},
                "hs-code: unknown field; colour: unknown field; title: required field missing",
            ),
            (
                {**_without("listing_id"), "price": {"tax": 1}},
                "listing_id: required field missing; price.tax: unknown field; "
                "price.amount_minor, price.currency: required fields missing",
            ),
            ({}, ", ".join(sorted(MINIMAL, key=list(MINIMAL).index)) + ": required fields missing"),
        ],
        ids=["three-missing", "unknown-and-missing", "price-too", "empty-object"],
    )
    def test_all_missing_and_unknown_fields_in_one_message(self, obj: object, message: str) -> None:
        """Not only the first: every unknown and missing field of the listing and its price."""
        with pytest.raises(DecodeError) as info:
            listing_from_json(obj)
        assert info.value.message.split("; ") == message.split("; ")


def _line(**changes: Any) -> bytes:
    return json.dumps({**MINIMAL, **changes}).encode()


class TestListingFromJsonLine:
    def test_valid_line(self) -> None:
        """A JSON line, newline and all, is the same listing as its parsed object."""
        assert listing_from_json_line(_line() + b"\n") == MINIMAL_LISTING

    def test_characters_beyond_the_bmp_are_fine(self) -> None:
        """A proper surrogate pair escape is one character, not a problem."""
        listing = listing_from_json_line(_line(title="Gaun \U0001f600"))
        assert listing.title == "Gaun \U0001f600"

    @pytest.mark.parametrize(
        ("line", "code", "message"),
        [
            (None, "too_long", "longer than 1,048,576 bytes; skipped"),
            (
                _line().replace(b"Gaun", b"G\xe9un"),
                "invalid_utf8",
                "not UTF-8: byte 0xe9 at byte offset {offset} (invalid continuation byte)",
            ),
            (
                b"\xff\xfe{}",
                "invalid_utf8",
                "not UTF-8: byte 0xff at byte offset 0 (invalid start byte)",
            ),
            (
                b"{not json",
                "invalid_json",
                "not valid JSON: Expecting property name enclosed in double quotes at column 2",
            ),
            (b"[" * 1_000 + b"]" * 1_000, "invalid_json", "not valid JSON: nested too deeply"),
            (b"[" * 100_000, "invalid_json", "not valid JSON: nested too deeply"),
            (
                _line(title="\ud800"),
                "invalid_listing",
                "title: contains a lone surrogate such as \\ud800, which is not a Unicode character",
            ),
            (
                _line(attributes={"\udc00": "x"}),
                "invalid_listing",
                "attributes.\\udc00: contains a lone surrogate such as \\ud800, which is not a Unicode character",
            ),
            (
                _line().replace(b"15000000", b"9" * 5_000),
                "invalid_listing",
                "price.amount_minor: expected a 64-bit integer, got a number of 5,000 digits",
            ),
            (
                _line(event_time=0).replace(b'"event_time": 0', b'"event_time": -' + b"1" * 4_400),
                "invalid_listing",
                "event_time: expected an RFC 3339 string or epoch milliseconds, got a number of 4,400 digits",
            ),
        ],
        ids=[
            "too-long",
            "latin-1-byte",
            "utf-16-bom",
            "not-json",
            "nesting-1000",
            "nesting-100k",
            "lone-surrogate",
            "surrogate-key",
            "amount-5000-digits",
            "event-time-4400-digits",
        ],
    )
    def test_broken_line_is_one_decode_error(
        self, line: bytes | None, code: str, message: str
    ) -> None:
        """Every way a line can be broken is a DecodeError with a code, never another exception."""
        if line is not None and b"\xe9" in line:
            message = message.format(offset=line.index(b"\xe9"))
        with pytest.raises(DecodeError) as info:
            listing_from_json_line(line)
        assert (info.value.code, info.value.message) == (code, message)


class TestJsonLines:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (b"", []),
            (b"a\nb\n", [b"a\n", b"b\n"]),
            (b"a\nb", [b"a\n", b"b"]),
            (b"\n\n", [b"\n", b"\n"]),
            (b"1234\n12345\n123456\nok\n", [b"1234\n", b"12345\n", None, b"ok\n"]),
            (b"x" * 23 + b"\nok", [None, b"ok"]),
            (b"x" * 23, [None]),
        ],
        ids=[
            "empty",
            "two",
            "no-final-newline",
            "blank",
            "limit-boundary",
            "long-then-ok",
            "long-at-end",
        ],
    )
    def test_lines_are_bounded(self, data: bytes, expected: list[bytes | None]) -> None:
        """Lines of at most `limit` bytes (newline not counted) come whole; longer ones are None."""
        assert list(json_lines(io.BytesIO(data), limit=5)) == expected

    def test_long_line_is_not_held_in_memory(self) -> None:
        """A line far over the limit is read past in limit-sized pieces."""

        class Counting(io.BytesIO):
            biggest = 0

            def readline(self, size: int | None = -1) -> bytes:
                chunk = super().readline(size)
                Counting.biggest = max(Counting.biggest, len(chunk))
                return chunk

        stream = Counting(b"x" * (3 * MAX_LINE_BYTES) + b"\n{}\n")
        assert list(json_lines(stream)) == [None, b"{}\n"]
        assert Counting.biggest <= MAX_LINE_BYTES + 1


class TestListingToJson:
    def test_reads_back_through_json_text(self) -> None:
        """listing_to_json is JSON-serialisable and listing_from_json reads it back."""
        listing = MINIMAL_LISTING
        text = json.dumps(listing_to_json(listing))
        assert listing_from_json(json.loads(text)) == listing

    def test_shape(self) -> None:
        """Avro field names, every field present, the time as RFC 3339 UTC with milliseconds."""
        assert listing_to_json(MINIMAL_LISTING) == {
            **MINIMAL,
            "event_time": "2021-08-03T10:00:00.000Z",
            "channel": None,
            "brand": None,
            "hs_code": None,
            "attributes": {},
        }


class TestDecisionToJson:
    def test_every_field_with_rfc3339_times(self) -> None:
        """All Decision fields under their Avro names; reasons and source as plain objects."""
        decision = Decision(
            decision_id="d-1",
            event_id="evt-1",
            listing_id="lst-1",
            seller_id="seller-cn-7",
            site="ID",
            outcome="REJECTED",
            reasons=(Reason("IMPORT_CLOSED_CATEGORY", "akar-fashion-textile", "closed"),),
            matched_rules=("akar-fashion-textile",),
            cluster="fashion_textile",
            cross_border=True,
            policy="id-akar-import-closure",
            policy_version="2021.08+abc1234",
            event_time_ms=1_627_984_800_000,
            decided_at_ms=1_627_984_800_007,
            source=SourceRef("listing-created", 2, 99),
        )
        assert decision_to_json(decision) == {
            "decision_id": "d-1",
            "event_id": "evt-1",
            "listing_id": "lst-1",
            "seller_id": "seller-cn-7",
            "site": "ID",
            "outcome": "REJECTED",
            "reasons": [
                {
                    "code": "IMPORT_CLOSED_CATEGORY",
                    "rule_id": "akar-fashion-textile",
                    "message": "closed",
                    "messages": {},
                    "phrase": None,
                }
            ],
            "matched_rules": ["akar-fashion-textile"],
            "cluster": "fashion_textile",
            "cross_border": True,
            "policy": "id-akar-import-closure",
            "policy_version": "2021.08+abc1234",
            "event_time": "2021-08-03T10:00:00.000Z",
            "decided_at": "2021-08-03T10:00:00.007Z",
            "source": {"topic": "listing-created", "partition": 2, "offset": 99},
            "mode": "LIVE",
            "replay_run": None,
            "as_of": None,
            "exemptions": [],
            "fx": None,
        }

    @pytest.mark.parametrize(
        ("fx", "shown"),
        [
            (
                FxUsed(1_695_574_800_000, "USD", "IDR", "0.0000625"),
                {
                    "table_from": "2023-09-24T17:00:00.000Z",
                    "base": "USD",
                    "currency": "IDR",
                    "rate": "0.0000625",
                },
            ),
            (
                FxUsed(None, "USD", "EUR", None),
                {"table_from": None, "base": "USD", "currency": "EUR", "rate": None},
            ),
        ],
        ids=["dated-table", "undated-rates-no-rate"],
    )
    def test_fx_with_its_table_date(self, fx: FxUsed, shown: dict[str, object]) -> None:
        """`check` JSON names the fx table by its start as RFC 3339, and the rate as written."""
        decision = Decision(
            "d-1", "e", "l", "s", "ID", "REJECTED", (), (), None, True, "p", "1", 0, 0, None, fx=fx
        )
        assert decision_to_json(decision)["fx"] == shown

    def test_replay_provenance(self) -> None:
        """A replayed decision names its run and prints its as-of time like the other times."""
        decision = Decision(
            "d", "e", "l", "s", "ID", "APPROVED", (), (), None, False, "p", "v", 0, 0, None,
            Provenance("REPLAY", "close-crafts", 1_627_984_800_000),
        )  # fmt: skip
        out = decision_to_json(decision)
        assert (out["mode"], out["replay_run"], out["as_of"]) == (
            "REPLAY",
            "close-crafts",
            "2021-08-03T10:00:00.000Z",
        )

    def test_no_source_is_null(self) -> None:
        """A decision made outside Kafka (the check command) prints source as null."""
        decision = Decision(
            "d", "e", "l", "s", "ID", "APPROVED", (), (), None, False, "p", "v", 0, 0, None
        )
        out = decision_to_json(decision)
        assert out["source"] is None
        assert out["reasons"] == []
        json.dumps(out)


class TestTimes:
    @pytest.mark.parametrize(
        ("ms", "text"),
        [
            (1_627_984_800_000, "2021-08-03T10:00:00.000Z"),
            (1_695_661_199_999, "2023-09-25T16:59:59.999Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ],
        ids=["akar-start", "ms-before-permendag", "epoch", "before-epoch", "min", "max"],
    )
    def test_format_and_parse_agree(self, ms: int, text: str) -> None:
        """format_time prints RFC 3339 UTC with milliseconds, and parse_time reads it back."""
        assert format_time(ms) == text
        assert parse_time(text) == ms

    @pytest.mark.parametrize("ms", [-62_135_596_800_001, 253_402_300_800_000], ids=["low", "high"])
    def test_format_refuses_unprintable_times(self, ms: int) -> None:
        """Times outside years 0001 to 9999 have no RFC 3339 form."""
        with pytest.raises(ValueError, match="outside the years"):
            format_time(ms)


class TestBundledSamples:
    @staticmethod
    def _samples() -> list[Listing]:
        text = resources.files("consumer").joinpath("data", "samples", "listings.jsonl").read_text()
        return [listing_from_json(json.loads(line)) for line in text.splitlines() if line.strip()]

    def test_every_sample_line_is_a_valid_listing(self) -> None:
        """The samples `check` decides out of the box all parse, about twenty of them."""
        assert len(self._samples()) >= 18

    def test_samples_cover_the_cases_a_policy_cares_about(self) -> None:
        """Domestic and cross-border, each foreign country, with and without channel, books, dates."""
        samples = self._samples()
        assert {s.site for s in samples} == {"ID"}
        assert {"CN", "MY", "SG", "KR", "US"} <= {s.ship_from_country for s in samples}
        assert any(s.ship_from_country == "ID" for s in samples)
        assert {None, "DOMESTIC", "CROSS_BORDER"} <= {s.channel for s in samples}
        assert sum(1 for s in samples if (s.hs_code or "").startswith("4901")) >= 2
        assert {"IDR", "CNY", "MYR", "SGD", "KRW", "USD"} <= {s.price.currency for s in samples}
        akar, permendag = (
            parse_time("2021-08-03T00:00:00+07:00"),
            parse_time("2023-09-26T00:00:00+07:00"),
        )
        times = [s.event_time_ms for s in samples]
        assert min(times) < akar < permendag < max(times)
        assert any(akar <= t < permendag for t in times)
