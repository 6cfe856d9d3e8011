"""Dead-letter records keep the original and say why and where."""

from __future__ import annotations

import hashlib

from consumer.core.deadletter import dead_letter_headers, describe, fitted_dead_letter
from consumer.core.records import RawRecord

RECORD = RawRecord(
    "listing-created",
    3,
    1042,
    1_700_000_000_000,
    b"k",
    b"\x00bad",
    (("traceparent", b"00-abc-01"),),
)


class TestDeadLetterHeaders:
    def test_original_headers_come_first_then_error_and_source(self) -> None:
        """A re-drive can copy the original headers back; ours follow with stable names."""
        headers = dead_letter_headers(RECORD, "unknown_schema_id", "unknown schema id 17", "w-1")
        assert headers[0] == ("traceparent", b"00-abc-01")
        as_dict = dict(headers)
        assert as_dict == {
            "traceparent": b"00-abc-01",
            "ic.error.code": b"unknown_schema_id",
            "ic.error.message": b"unknown schema id 17",
            "ic.source.topic": b"listing-created",
            "ic.source.partition": b"3",
            "ic.source.offset": b"1042",
            "ic.source.timestamp": b"1700000000000",
            "ic.worker.id": b"w-1",
        }

    def test_long_messages_are_bounded(self) -> None:
        """Whatever the error text, the header stays small."""
        headers = dict(dead_letter_headers(RECORD, "corrupt", "x" * 10_000, "w"))
        assert headers["ic.error.message"] == b"x" * 1000

    def test_describe_names_partition_and_offset(self) -> None:
        """Log lines point at topic[partition]@offset."""
        assert (
            describe(RECORD, "corrupt", "bad varint")
            == "listing-created[3]@1042: corrupt: bad varint"
        )


class TestFittedDeadLetter:
    def test_a_small_record_is_copied_whole(self) -> None:
        """Under the limit, key, value and headers are the original's."""
        letter = fitted_dead_letter(RECORD, "corrupt", "bad", "w-1", 1_000_000)
        assert (letter.key, letter.value) == (RECORD.key, RECORD.value)
        assert "ic.value.truncated" not in dict(letter.headers)

    def test_an_oversized_value_is_truncated_with_its_size_and_hash(self) -> None:
        """A 1 MB value near the limit still fits: cut, with the original size and SHA-256 in headers."""
        value = bytes(range(256)) * 4000
        record = RECORD._replace(value=value)
        letter = fitted_dead_letter(record, "corrupt", "bad", "w-1", 1_000_000)
        headers = dict(letter.headers)
        assert letter.key == record.key
        assert headers["traceparent"] == b"00-abc-01"
        assert headers["ic.value.truncated"] == b"true"
        assert headers["ic.value.original.size"] == str(len(value)).encode()
        assert headers["ic.value.sha256"] == hashlib.sha256(value).hexdigest().encode()
        assert value.startswith(letter.value or b"")
        assert size_of(letter) <= 1_000_000

    def test_huge_headers_are_dropped_when_the_value_alone_is_not_enough(self) -> None:
        """Original headers go next, and their count is recorded."""
        record = RECORD._replace(headers=tuple((f"h{i}", b"x" * 1000) for i in range(100)))
        letter = fitted_dead_letter(record, "corrupt", "bad", "w-1", 50_000)
        headers = dict(letter.headers)
        assert headers["ic.headers.dropped"] == b"100"
        assert headers["ic.error.code"] == b"corrupt"
        assert size_of(letter) <= 50_000

    def test_a_huge_key_is_cut_last(self) -> None:
        """Even a key over the limit leaves a record that fits."""
        record = RECORD._replace(key=b"k" * 100_000)
        letter = fitted_dead_letter(record, "corrupt", "bad", "w-1", 50_000)
        assert dict(letter.headers)["ic.key.truncated"] == b"100000"
        assert size_of(letter) <= 50_000


def size_of(letter) -> int:
    return (
        len(letter.key or b"")
        + len(letter.value or b"")
        + sum(len(k) + len(v or b"") for k, v in letter.headers)
    )
