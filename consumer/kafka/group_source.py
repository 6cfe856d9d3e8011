"""Where the loop's records come from: the consumer group subscription, behind a small wrapper.

The loop never sees a confluent_kafka.Message: `poll` copies each into a RawRecord, so the loop can
be tested against a fake of this class, and errors are sorted here (stop, report, or skip).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.core.records import RawRecord
from consumer.errors import ConfigError, KafkaClientError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.callbacks import ClientEvents
from consumer.kafka.lag import Offsets, partition_lag
from consumer.service.health import Health

log = logging.getLogger(__name__)

Key = tuple[str, int]
#: Messages asked of consume() per call, and the bytes after which a batch is cut short.
CHUNK = 32
MAX_BATCH_BYTES = 4 * 1024 * 1024
RebalanceCallback = Callable[[Consumer, list[TopicPartition]], None]


class GroupSource:
    """The group subscription to the input topic, as the worker's loop uses it."""

    def __init__(
        self, consumer: Consumer, topic: str, events: ClientEvents, health: Health
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self._events = events
        self._health = health

    def check_topic(self) -> None:
        """A missing input topic is a setting error: say so at start instead of idling silently."""
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=10)
        except KafkaException as exc:
            log.warning("cannot read topic metadata yet; continuing", extra={"detail": str(exc)})
            return
        found = metadata.topics.get(self.topic)
        missing = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
        if found is not None and found.error is not None and found.error.code() in missing:
            msg = (
                f"input topic {self.topic!r} does not exist (create it with `import-closure topics "
                f"create`, or start with `run --create-topics`)"
            )
            raise ConfigError(msg)

    def subscribe(
        self, on_assign: RebalanceCallback, on_revoke: RebalanceCallback, on_lost: RebalanceCallback
    ) -> None:
        self.consumer.subscribe(
            [self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost
        )

    def poll(self, batch_size: int, timeout: float) -> list[RawRecord]:
        """Up to `batch_size` records and about MAX_BATCH_BYTES; errors no message can get past
        raise, the rest are logged.

        consume() is asked for CHUNK messages at a time: one call for a whole batch would copy
        every message it returns into Python at once, and a batch of megabyte records would be
        a gigabyte. Later chunks do not wait (timeout 0).
        """
        records: list[RawRecord] = []
        size = 0
        wait = timeout
        while len(records) < batch_size and size < MAX_BATCH_BYTES:
            want = min(CHUNK, batch_size - len(records))
            messages = self.consumer.consume(num_messages=want, timeout=wait)
            for m in messages:
                err = m.error()
                if err is not None:
                    self._consume_error(err, m)
                    continue
                record = raw_record(m)
                size += len(record.value or b"")
                records.append(record)
            if len(messages) < want:
                break
            wait = 0
        if records:
            self._health.broker_up = True  # a fetch arrived: a broker answered
        return records

    def _consume_error(self, error: KafkaError, message: Message) -> None:
        topic = message.topic()
        if kafka_errors.stops_worker(error):
            where = f"{topic}: " if topic else ""
            msg = f"{where}cannot consume: {kafka_errors.describe(error)}"
            raise KafkaClientError(msg)
        if error.code() in kafka_errors.AUTHENTICATION:
            self._health.client_problem = f"authentication failed: {kafka_errors.describe(error)}"
        self._events.report(logging.WARNING, "consume error", error)

    def pause(self, keys: Iterable[Key]) -> None:
        tps = _tps(keys)
        if tps:
            self.consumer.pause(tps)

    def resume(self, keys: Iterable[Key]) -> None:
        tps = _tps(keys)
        if tps:
            self.consumer.resume(tps)

    def seek(self, offsets: dict[Key, int]) -> None:
        """Fetch these partitions again from these offsets (a batch that must be decided later)."""
        for (topic, partition), offset in sorted(offsets.items()):
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def lag(self, assigned: Iterable[Key]) -> dict[Key, int]:
        """Lag of every assigned partition from local positions and cached watermarks (no I/O)."""
        keys = sorted(assigned)
        known: dict[Key, Offsets] = {}
        if keys:
            for tp in self.consumer.position(_tps(keys)):
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                known[(tp.topic, tp.partition)] = Offsets(tp.offset, low, high)
        return partition_lag(known, self._events.partition_stats, keys)

    def done(self) -> bool:
        """Whether a bounded source has read all it was asked to; a subscription never has."""
        return False

    def close(self) -> None:
        self.consumer.close()


def _tps(keys: Iterable[Key]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, p in sorted(keys)]


def raw_record(m: Message) -> RawRecord:
    """Copy a consumed message out of librdkafka's object; the core never sees a Message."""
    ts_type, ts = m.timestamp()
    # A message without error always has topic, partition and offset; the stubs allow None.
    return RawRecord(
        cast(str, m.topic()),
        cast(int, m.partition()),
        cast(int, m.offset()),
        ts if ts_type else None,
        m.key(),
        m.value(),
        tuple(cast(list[tuple[str, bytes | None]], m.headers() or ())),
    )
