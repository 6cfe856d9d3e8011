"""Builds a dead-letter record: the original key, value and headers plus why and where it failed."""

from __future__ import annotations

from consumer.events import RawRecord

ERROR_CODE = "ic.error.code"
ERROR_MESSAGE = "ic.error.message"
SOURCE_TOPIC = "ic.source.topic"
SOURCE_PARTITION = "ic.source.partition"
SOURCE_OFFSET = "ic.source.offset"
SOURCE_TIMESTAMP = "ic.source.timestamp"
WORKER_ID = "ic.worker.id"
#: Keep header size bounded whatever an error message contains.
MAX_MESSAGE_BYTES = 1000


def dead_letter_headers(
    record: RawRecord, code: str, message: str, worker_id: str
) -> list[tuple[str, bytes | None]]:
    """Original headers first (so a re-drive can copy them back), then ours."""
    text = message.encode("utf-8", "replace")[:MAX_MESSAGE_BYTES]
    ours: list[tuple[str, bytes | None]] = [
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
