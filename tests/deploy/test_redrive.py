"""deploy/tools/redrive_dead_letters.py: a dead letter maps back to the record the worker received.

The dead letters here are built by the worker's own consumer.deadletter, so the tool and the
worker agree on the headers. The Kafka loop itself needs a broker and was verified by hand.
"""

from __future__ import annotations

import pytest

from consumer.core.deadletter import dead_letter_headers
from consumer.core.records import RawRecord
from tests.deploy.tools import load_tool

redrive = load_tool("redrive_dead_letters.py")

ORIGINAL = RawRecord(
    topic="listing-created",
    partition=3,
    offset=1042,
    timestamp_ms=1_700_000_000_000,
    key=b"listing-1",
    value=b"\xc3\x01garbage",
    headers=(("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),),
)


class TestPlan:
    def test_restores_key_value_and_only_the_original_headers(self) -> None:
        """The worker's ic.* headers are dropped; the original ones come back in order."""
        headers = dead_letter_headers(ORIGINAL, "unknown_magic", "bad first byte", "w-1")
        planned = redrive.plan(ORIGINAL.key, ORIGINAL.value, headers, default_topic="unused")
        assert planned.topic == ORIGINAL.topic
        assert planned.key == ORIGINAL.key
        assert planned.value == ORIGINAL.value
        assert planned.headers == list(ORIGINAL.headers)
        assert planned.code == "unknown_magic"

    def test_every_header_the_worker_adds_is_known_to_the_tool(self) -> None:
        """A header added by consumer.deadletter but unknown here would leak into the re-drive."""
        bare = RawRecord("t", 0, 0, 1, None, None)
        added = {name for name, _ in dead_letter_headers(bare, "empty", "m", "w")}
        assert added == redrive.ADDED_HEADERS

    @pytest.mark.parametrize(
        ("to_topic", "source", "expected"),
        [
            (None, b"listing-created", "listing-created"),
            ("listing-created-retry", b"listing-created", "listing-created-retry"),
            (None, None, "fallback"),
        ],
        ids=["source-topic", "override", "no-source-header"],
    )
    def test_chooses_the_target_topic(
        self, to_topic: str | None, source: bytes | None, expected: str
    ) -> None:
        headers = [("ic.error.code", b"truncated")]
        if source is not None:
            headers.append(("ic.source.topic", source))
        planned = redrive.plan(b"k", b"v", headers, default_topic="fallback", to_topic=to_topic)
        assert planned.topic == expected
