"""Size limits: a listing past any of them is DecodeError too_large; one at a limit still decodes."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.codec import AvroCodec, listing_from_json, listing_to_json
from consumer.codec.limits import (
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTES,
    MAX_FIELD_CHARS,
    MAX_PATH_CHARS,
    MAX_PATH_SEGMENTS,
    MAX_TITLE_CHARS,
    MAX_VALUE_BYTES,
)
from consumer.core.pipeline import Decided, decide_batch
from consumer.core.records import Price, RawRecord
from consumer.errors import DecodeError
from consumer.policy import bundled_policy_text, compile_policy, load_policy
from tests.unit.listings import make_listing


def _attributes(entries: int, chars_each: int) -> dict[str, str]:
    """`entries` attributes whose key and value together have `chars_each` characters."""
    return {f"{n:04d}": "v" * (chars_each - 4) for n in range(entries)}


#: (field overrides at the limit, the same past it, words of the message)
CASES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        {"category_path": ("a",) * MAX_PATH_SEGMENTS},
        {"category_path": ("a",) * (MAX_PATH_SEGMENTS + 1)},
        "category_path has 33 segments",
    ),
    (
        {"category_path": ("x" * (MAX_PATH_CHARS // 2),) * 2},
        {"category_path": ("x" * (MAX_PATH_CHARS // 2), "x" * (MAX_PATH_CHARS // 2 + 1))},
        "category_path has 4097 characters",
    ),
    ({"title": "t" * MAX_TITLE_CHARS}, {"title": "t" * (MAX_TITLE_CHARS + 1)}, "title has 2049"),
    (
        {"title": "界" * MAX_TITLE_CHARS},  # characters, not UTF-8 bytes, are counted
        {"title": "界" * (MAX_TITLE_CHARS + 1)},
        "title has 2049 characters",
    ),
    (
        {"attributes": _attributes(MAX_ATTRIBUTES, 5)},
        {"attributes": _attributes(MAX_ATTRIBUTES + 1, 5)},
        "attributes has 65 entries",
    ),
    (
        {"attributes": _attributes(8, MAX_ATTRIBUTE_CHARS // 8)},
        {"attributes": {**_attributes(8, MAX_ATTRIBUTE_CHARS // 8), "k": ""}},
        "attributes have 8193 characters",
    ),
    (
        {"seller_id": "s" * MAX_FIELD_CHARS},
        {"seller_id": "s" * (MAX_FIELD_CHARS + 1)},
        "seller_id has 1025",
    ),
    (
        {"category_id": "c" * MAX_FIELD_CHARS},
        {"category_id": "c" * (MAX_FIELD_CHARS + 1)},
        "category_id has 1025",
    ),
    ({"brand": "b" * MAX_FIELD_CHARS}, {"brand": "b" * (MAX_FIELD_CHARS + 1)}, "brand has 1025"),
    (
        {"price": Price(1, "X" * MAX_FIELD_CHARS)},
        {"price": Price(1, "X" * (MAX_FIELD_CHARS + 1))},
        "currency has 1025",
    ),
]
IDS = [
    "path-segments",
    "path-chars",
    "title",
    "title-in-characters",
    "attribute-count",
    "attribute-chars",
    "seller-id",
    "category-id",
    "brand",
    "currency",
]


class TestListingLimits:
    @pytest.mark.parametrize(("at", "past", "message"), CASES, ids=IDS)
    def test_at_the_limit_decodes(
        self, at: dict[str, Any], past: dict[str, Any], message: str
    ) -> None:
        """A listing exactly at a limit is an ordinary listing."""
        codec = AvroCodec()
        listing = make_listing(**at)
        assert codec.decode_listing(codec.encode_listing(listing)) == listing

    @pytest.mark.parametrize(("at", "past", "message"), CASES, ids=IDS)
    def test_past_the_limit_is_too_large(
        self, at: dict[str, Any], past: dict[str, Any], message: str
    ) -> None:
        """One past a limit is a DecodeError too_large naming the field and the limit."""
        codec = AvroCodec()
        with pytest.raises(DecodeError, match=message) as info:
            codec.decode_listing(codec.encode_listing(make_listing(**past)))
        assert info.value.code == "too_large"

    @pytest.mark.parametrize(("at", "past", "message"), CASES, ids=IDS)
    def test_check_applies_the_same_limits(
        self, at: dict[str, Any], past: dict[str, Any], message: str
    ) -> None:
        """The JSON form (`check`) accepts and refuses the same listings as the Avro path."""
        listing = make_listing(**at)
        assert listing_from_json(listing_to_json(listing)) == listing
        with pytest.raises(DecodeError, match=message) as info:
            listing_from_json(listing_to_json(make_listing(**past)))
        assert info.value.code == "too_large"

    def test_the_issue_listing_is_refused(self) -> None:
        """The reported case: a valid listing whose category_path is one 450 KB segment."""
        codec = AvroCodec()
        value = codec.encode_listing(make_listing(category_path=("x" * 450_000,)))
        with pytest.raises(DecodeError, match="more than 65536") as info:
            codec.decode_listing(value)
        assert info.value.code == "too_large"

    def test_value_size_is_checked_before_decoding(self) -> None:
        """A value past MAX_VALUE_BYTES is refused whatever its bytes; no decoding is attempted."""
        value = AvroCodec().encode_listing(make_listing())
        huge = value + b"\xff" * (MAX_VALUE_BYTES - len(value) + 1)
        with pytest.raises(DecodeError, match="65537 bytes") as info:
            AvroCodec().decode_listing(huge)
        assert info.value.code == "too_large"

    def test_small_values_skip_the_length_checks_but_not_the_counts(self) -> None:
        """Below MAX_FIELD_CHARS bytes no string can be too long; segment counts still count."""
        codec = AvroCodec()
        value = codec.encode_listing(make_listing(category_path=("",) * 40))
        assert len(value) < MAX_FIELD_CHARS
        with pytest.raises(DecodeError, match="40 segments"):
            codec.decode_listing(value)


class TestPipeline:
    def test_worker_dead_letters_a_too_large_listing(self) -> None:
        """decide_batch turns the refusal into a DeadLettered with code too_large; others go on."""
        codec = AvroCodec()
        policy = compile_policy(load_policy(bundled_policy_text()))
        values = [
            codec.encode_listing(make_listing(category_path=("x" * 450_000,))),
            codec.encode_listing(make_listing(category_path=("a",) * 33)),
            codec.encode_listing(make_listing()),
        ]
        records = [RawRecord("t", 0, n, None, None, v) for n, v in enumerate(values)]
        results = decide_batch(records, codec, policy, 0)
        assert [getattr(r, "code", None) for r in results] == ["too_large", "too_large", None]
        assert isinstance(results[2], Decided)
