"""Waiting with deadlines: the only waiting code in tests. Nothing here sleeps blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from consumer.kafka.client_conf import ClientConf
from consumer.kafka.messages import raw_record

T = TypeVar("T")


class Deadline:
    """Raises TimeoutError naming what was awaited once `seconds` have passed."""

    def __init__(self, seconds: float, what: str) -> None:
        self.what = what
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def check(self, detail: str = "") -> None:
        if time.monotonic() >= self._end:
            msg = f"timed out after {self.seconds:.0f}s waiting for {self.what}"
            raise TimeoutError(msg + (f": {detail}" if detail else ""))


def wait_until(predicate: Callable[[], T], seconds: float, what: str, interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; return it."""
    deadline = Deadline(seconds, what)
    while True:
        value = predicate()
        if value:
            return value
        deadline.check()
        time.sleep(min(interval, deadline.remaining))


def wait_at_most(predicate: Callable[[], object], seconds: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until it is truthy (True) or `seconds` have passed (False): for waits
    whose running out is an outcome the test measures, not a failure."""
    deadline = Deadline(seconds, "")
    while not predicate():
        if deadline.remaining <= 0:
            return False
        time.sleep(min(interval, deadline.remaining))
    return True


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int | None = None


def drain(conf: ClientConf, topic: str, seconds: float = 60.0) -> list[Record]:
    """Read `topic` from the beginning to the end of every partition (partition EOF), then stop."""
    consumer = Consumer(
        {
            **conf,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_eof: set[int] = set()
        records: list[Record] = []
        deadline = Deadline(seconds, f"end of {topic}")
        while len(at_eof) < len(partitions):
            deadline.check(f"{len(records)} records read, partitions at EOF {sorted(at_eof)}")
            for m in consumer.consume(num_messages=10000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(cast(int, m.partition()))
                        continue
                    raise AssertionError(f"consume error: {err}")
                raw = raw_record(m)
                at_eof.discard(raw.partition)
                headers = {k: v for k, v in raw.headers if v is not None}
                records.append(
                    Record(
                        raw.topic,
                        raw.partition,
                        raw.offset,
                        raw.key,
                        raw.value,
                        headers,
                        raw.timestamp_ms,
                    )
                )
        return records
    finally:
        consumer.close()


def committed(conf: ClientConf, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (-1001 where none)."""
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()


def end_offsets(conf: ClientConf, topic: str) -> dict[int, int]:
    consumer = Consumer({**conf, "group.id": "end-offsets-probe", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.topics[topic].partitions
        }
    finally:
        consumer.close()


def all_committed(conf: ClientConf, group: str, topic: str) -> bool:
    """The group has committed every partition of `topic` up to its end."""
    return committed(conf, group, topic) == end_offsets(conf, topic)
