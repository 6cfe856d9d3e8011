"""Dead-letter records keep the original and say why and where."""

from __future__ import annotations

from consumer.deadletter import dead_letter_headers, describe
from consumer.events import RawRecord

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
