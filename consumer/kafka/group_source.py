"""Where the live loop's records come from: the consumer group's subscription, as a Source.

The loop never sees a confluent_kafka.Message or TopicPartition: `poll` copies each message into
a RawRecord, rebalance callbacks hand over PartitionKeys, and errors are sorted here (stop,
report, or skip). So the loop is tested against a fake of the Source protocol (kafka/source.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumer.core.records import PartitionKey, RawRecord
from consumer.errors import ConfigError, KafkaClientError, RebalanceError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.callbacks import report
from consumer.kafka.membership import GroupMember
from consumer.kafka.messages import partition_keys, raw_record, topic_partitions
from consumer.kafka.source import Rebalanced
from consumer.telemetry.health import Health
from consumer.telemetry.throttle import Warnings

log = logging.getLogger(__name__)

#: Seconds check_topic tries to read the input topic's metadata before the loop starts anyway.
METADATA_WAIT = 10.0
#: How long an assignment waits for the group's committed offsets (each try, and in all). A
#: transaction a dead worker left open holds them until its timeout (30 s, then the broker's
#: sweep, up to 10 s more); longer than that, the worker stops and is restarted.
COMMITTED_TRY = 10.0
COMMITTED_WAIT = 60.0
#: Messages asked of consume() per call, and the bytes after which a batch is cut short.
CHUNK = 32
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: A partition-EOF event (enable.partition.eof, bounded reads): its partition and offset.
EndOfPartition = Callable[[PartitionKey, int], None]
_ClientRebalance = Callable[[Consumer, list[TopicPartition]], None]


class GroupSource:
    """The group subscription to the input topic, as the worker's loop uses it.

    `on_eof`, when given, hears partition-EOF events (a bounded read asks for them); without
    it they are reported like any other consume error. When librdkafka ends the membership for
    good (a fatal FENCED_INSTANCE_ID: the static member's session expired), the member's next
    consumer is subscribed in its place (kafka/membership.py).

    `from_committed`: each assigned partition starts at the offset the group committed, read
    here, never where this consumer last fetched. librdkafka resumed a partition that was lost
    and came straight back to the same consumer (a static member rejoining) after the records it
    had fetched before the loss, which the loop had dropped with the loss: a cluster test lost
    72 exactly-once inputs that way.
    """

    def __init__(
        self,
        member: GroupMember,
        topic: str,
        health: Health,
        warnings: Warnings,
        *,
        on_eof: EndOfPartition | None = None,
        group: str | None = None,
        from_committed: bool = False,
    ) -> None:
        self._from_committed = from_committed
        self._member = member
        self._consumer = member.current()
        self._callbacks: dict[str, _ClientRebalance] = {}
        self._topic = topic
        self._group_id = group  # named in the line a missing group ACL stops the worker with
        self._health = health
        self._warnings = warnings
        self._on_eof = on_eof

    def check_topic(self) -> None:
        """A missing input topic is a setting error: say so at start instead of idling silently.

        Asked one second at a time: between two tries the client's callbacks are served, so a
        refused password or an untrusted CA is said at once, not after a metadata timeout.
        """
        deadline = time.monotonic() + METADATA_WAIT
        while True:
            try:
                metadata = self._consumer.list_topics(self._topic, timeout=1)
                break
            except KafkaException as exc:
                self._consumer.poll(0)  # error callbacks and librdkafka's lines: why it failed
                if (problem := self._health.client_problem) is not None:
                    log.error("cannot connect to Kafka; retrying", extra={"cause": problem})
                    return
                if time.monotonic() >= deadline:
                    detail = str(exc.args[0].str() if exc.args else exc)
                    log.warning(
                        "cannot read topic metadata yet; continuing", extra={"detail": detail}
                    )
                    return
        found = metadata.topics.get(self._topic)
        missing = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
        if found is not None and found.error is not None and found.error.code() in missing:
            msg = (
                f"input topic {self._topic!r} does not exist (create it with `import-closure "
                f"topics create`, or start with `run --create-topics`)"
            )
            raise ConfigError(msg)

    def subscribe(self, on_assign: Rebalanced, on_revoke: Rebalanced, on_lost: Rebalanced) -> None:
        if self._from_committed:
            loop_assign = on_assign

            def on_assign(keys: list[PartitionKey]) -> None:
                self.assign_at(self._committed_starts(keys))
                loop_assign(keys)

        self._callbacks = {
            "on_assign": _rebalance_boundary("on_assign", on_assign),
            "on_revoke": _rebalance_boundary("on_revoke", on_revoke),
            "on_lost": _rebalance_boundary("on_lost", on_lost),
        }
        self._consumer.subscribe([self._topic], **self._callbacks)

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
            messages = self._consumer.consume(num_messages=want, timeout=wait)
            for m in messages:
                err = m.error()
                if err is not None and err.code() == KafkaError._FATAL:
                    self._rejoin(err)
                    return []  # all from the fenced consumer, whose partitions were lost
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

    def _rejoin(self, error: KafkaError) -> None:
        """A fatal consumer error ends this group membership: librdkafka has already called
        on_lost for its partitions. Join again with a new consumer under the same instance id,
        unless that keeps happening (then two replicas share a worker id: stop)."""
        detail = kafka_errors.describe(error)
        if not self._member.may_rejoin():
            msg = (
                f"cannot consume: {detail} (fenced again and again: does another replica use "
                f"this worker id?)"
            )
            raise KafkaClientError(msg)
        log.warning(
            "group membership lost; rejoining with a new consumer", extra={"detail": detail}
        )
        self._consumer = self._member.rejoin()
        if self._callbacks:
            self._consumer.subscribe([self._topic], **self._callbacks)

    def _consume_error(self, error: KafkaError, message: Message) -> None:
        topic = message.topic()
        if error.code() == KafkaError._PARTITION_EOF and self._on_eof is not None:
            partition = message.partition()
            if topic is not None and partition is not None:
                self._on_eof((topic, partition), message.offset() or 0)
            return
        if kafka_errors.stops_worker(error):
            where = f"{topic}: " if topic else ""
            # A heartbeat's TOPIC_AUTHORIZATION_FAILED names no topic: it is the subscribed one.
            missing = kafka_errors.not_authorized(error, topic=self._topic, group=self._group_id)
            msg = f"{where}cannot consume: {missing or kafka_errors.describe(error)}"
            raise KafkaClientError(msg)
        if (problem := kafka_errors.connection_problem(error)) is not None:
            self._health.client_problem = problem
        report(self._warnings, logging.WARNING, "consume error", error)

    def pause(self, keys: Iterable[PartitionKey]) -> None:
        tps = topic_partitions(keys)
        if tps:
            self._consumer.pause(tps)

    def resume(self, keys: Iterable[PartitionKey]) -> None:
        tps = topic_partitions(keys)
        if tps:
            self._consumer.resume(tps)

    def seek(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Fetch these partitions again from these offsets (a batch that must be decided later)."""
        for (topic, partition), offset in sorted(offsets.items()):
            self._consumer.seek(TopicPartition(topic, partition, offset))

    def committed(self, keys: Iterable[PartitionKey], timeout: float) -> dict[PartitionKey, int]:
        """The group's committed offset of each partition; negative where it has none."""
        found = self._consumer.committed(topic_partitions(keys), timeout=timeout)
        return {(tp.topic, tp.partition): tp.offset for tp in found}

    def _committed_starts(self, keys: list[PartitionKey]) -> dict[PartitionKey, int]:
        """The group's committed offset of each key (OFFSET_INVALID where there is none, so
        auto.offset.reset applies), asked COMMITTED_TRY seconds at a time for COMMITTED_WAIT."""
        deadline = time.monotonic() + COMMITTED_WAIT
        while True:
            try:
                return self.committed(keys, COMMITTED_TRY)
            except KafkaException as exc:
                detail = kafka_errors.describe(exc.args[0])
                if time.monotonic() >= deadline:
                    msg = f"cannot read the group's committed offsets: {detail}"
                    raise KafkaClientError(msg) from exc
                self._warnings.warn("committed offsets not readable yet; retrying", detail)
                time.sleep(
                    0.2
                )  # an error that came at once (no coordinator) is not asked in a spin

    def assign_at(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Inside on_assign: take the newly assigned partitions, each from the offset given."""
        self._consumer.incremental_assign(
            [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        )

    def done(self) -> bool:
        """A subscription has no end."""
        return False

    def close(self) -> None:
        """Leave the group, then close. A static member's close() does not leave (KIP-345), and
        its partitions would wait out the session (6 s); unsubscribe() does leave: 0.8 s."""
        try:
            self._consumer.unsubscribe()
        except (KafkaException, RuntimeError) as exc:  # a fenced or closed consumer
            log.debug("unsubscribe before close failed", extra={"detail": str(exc)})
        self._consumer.close()


def _rebalance_boundary(name: str, callback: Rebalanced) -> _ClientRebalance:
    """librdkafka's rebalance callback around one of the loop's: the partitions become keys, and
    any exception becomes one RebalanceError naming the callback, with the original as cause."""

    def on_rebalance(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            callback(partition_keys(partitions))
        except Exception as exc:  # wrap and re-raise: librdkafka would otherwise hide the cause
            msg = f"{name} failed: {exc}"
            raise RebalanceError(msg) from exc

    return on_rebalance
