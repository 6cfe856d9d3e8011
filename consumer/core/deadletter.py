"""Builds a dead-letter record: the original key, value and headers plus why and where it failed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from consumer.core.records import Header, Headers, RawRecord

#: Every header this service adds starts so; a re-drive or a re-fit strips them.
OUR_HEADER_PREFIX = "ic."
ERROR_CODE = "ic.error.code"
ERROR_MESSAGE = "ic.error.message"
SOURCE_TOPIC = "ic.source.topic"
SOURCE_PARTITION = "ic.source.partition"
SOURCE_OFFSET = "ic.source.offset"
SOURCE_TIMESTAMP = "ic.source.timestamp"
WORKER_ID = "ic.worker.id"
VALUE_TRUNCATED = "ic.value.truncated"
ORIGINAL_SIZE = "ic.value.original.size"
ORIGINAL_SHA256 = "ic.value.sha256"
HEADERS_DROPPED = "ic.headers.dropped"
KEY_TRUNCATED = "ic.key.truncated"
#: Room kept under the size limit for Kafka's per-record framing (lengths, varints, attributes).
RECORD_OVERHEAD = 512
#: Keep header size bounded whatever an error message contains.
MAX_MESSAGE_BYTES = 1000


def dead_letter_headers(record: RawRecord, code: str, message: str, worker_id: str) -> list[Header]:
    """Original headers first (so a re-drive can copy them back), then ours."""
    text = message.encode("utf-8", "replace")[:MAX_MESSAGE_BYTES]
    ours: list[Header] = [
        (ERROR_CODE, code.encode()),
        (ERROR_MESSAGE, text),
        (SOURCE_TOPIC, record.topic.encode()),
        (SOURCE_PARTITION, str(record.partition).encode()),
        (SOURCE_OFFSET, str(record.offset).encode()),
        (WORKER_ID, worker_id.encode()),
    ]
    if record.timestamp_ms is not None:
        ours.append((SOURCE_TIMESTAMP, str(record.timestamp_ms).encode()))
    return [*record.headers, *ours]


def describe(record: RawRecord, code: str, message: str) -> str:
    """`listing-created[3]@1042: unknown_schema_id: unknown schema id 17`, for logs."""
    return f"{record.topic}[{record.partition}]@{record.offset}: {code}: {message}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-letter record ready to produce."""

    key: bytes | None
    value: bytes | None
    headers: Headers


def _size(key: bytes | None, value: bytes | None, headers: Sequence[Header]) -> int:
    return (
        RECORD_OVERHEAD
        + len(key or b"")
        + len(value or b"")
        + sum(len(k) + len(v or b"") + 8 for k, v in headers)
    )


def fitted_dead_letter(
    record: RawRecord, code: str, message: str, worker_id: str, max_bytes: int
) -> DeadLetter:
    """The dead letter of `record`, shrunk to fit `max_bytes` so it can always be produced.

    A dead letter that cannot be produced would stop its partition for good (every restart fails
    the same way), so one too large loses, in this order: the tail of its value (with headers
    giving the original size and SHA-256), the original headers, then the tail of its key.
    """
    headers = dead_letter_headers(record, code, message, worker_id)
    key, value = record.key, record.value
    if _size(key, value, headers) <= max_bytes:
        return DeadLetter(key, value, tuple(headers))
    original = value or b""
    headers += [
        (VALUE_TRUNCATED, b"true"),
        (ORIGINAL_SIZE, str(len(original)).encode()),
        (ORIGINAL_SHA256, hashlib.sha256(original).hexdigest().encode()),
    ]
    room = max_bytes - _size(key, b"", headers)
    if room >= 0:
        return DeadLetter(key, original[:room], tuple(headers))
    ours = headers[len(record.headers) :]
    ours.append((HEADERS_DROPPED, str(len(record.headers)).encode()))
    room = max_bytes - _size(b"", b"", ours)
    if len(key or b"") > room:
        ours.append((KEY_TRUNCATED, str(len(key or b"")).encode()))
        key = (key or b"")[: max(0, room - 64)]
    return DeadLetter(key, b"", tuple(ours))
