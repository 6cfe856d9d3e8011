"""The producing side of the loop: routes each result to its topic and tracks its acknowledgement.

Each chunk of work gets one delivery callback, which acknowledges the chunk in the offset ledger.
Callbacks never raise: a retriable failure is queued for re-sending by the loop; a failure that
belongs to one record (too large, refused by the topic) queues that record for the dead-letter
topic; anything else is recorded in Faults (service/faults.py) and raised by the loop at its next turn.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from consumer.config.settings import Settings
from consumer.core.deadletter import (
    ERROR_CODE,
    ERROR_MESSAGE,
    OUR_HEADER_PREFIX,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TIMESTAMP,
    SOURCE_TOPIC,
    describe,
    fitted_dead_letter,
)
from consumer.core.pipeline import Decided, Result, Tally
from consumer.core.records import Headers, PartitionKey, RawRecord
from consumer.delivery.ledger import Chunk
from consumer.errors import DeliveryError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.clients import DeliveryCallback, ProduceRefused, produce_waiting
from consumer.kafka.faults import Faults
from consumer.telemetry.throttle import Warnings

log = logging.getLogger(__name__)

#: librdkafka's default message.max.bytes, used when the settings do not name one.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
#: Outputs an aborted transaction purged from librdkafka's queues (never lost: they are redone).
_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
#: A dead letter the broker refused for its size is tried again at most this large.
SMALL_DEAD_LETTER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Reroute:
    """A record whose output was refused for reasons of its own: it goes to the dead-letter topic."""

    chunk: Chunk[Tally]
    record: RawRecord
    code: str
    message: str
    max_bytes: int


class Outputs:
    """Decisions to the approved/rejected topics keyed by listing_id; failures to the dead-letter topic."""

    def __init__(
        self,
        producer: Producer,
        settings: Settings,
        faults: Faults,
        warnings: Warnings,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        transactional: bool = False,
    ) -> None:
        """`transactional`: every output is part of a transaction, so a failed one fails the
        transaction (which is aborted and redone) instead of stopping the worker."""
        self._transactional = transactional
        self._producer = producer
        self._settings = settings
        self._faults = faults
        self._warnings = warnings
        self._max_bytes = max_message_bytes
        self._retry: list[tuple[Chunk[Tally], Message]] = []
        self._reroute: list[_Reroute] = []

    def use(self, producer: Producer) -> None:
        """Produce with `producer` from now on (exactly-once renews its producer, see
        delivery/exactly_once.py SLOW_CALL); called between transactions, nothing in flight."""
        self._producer = producer

    @staticmethod
    def count(group: Sequence[Result]) -> int:
        """How many records `send` produces for `group`: one per result, plus shadow decisions."""
        shadows = sum(
            1
            for r in group
            if isinstance(r, Decided) and r.shadow is not None and r.shadow.value is not None
        )
        return len(group) + shadows

    def send(self, group: list[Result], chunk: Chunk[Tally]) -> None:
        """Produce the outputs of `group` (Outputs.count of them), all acknowledged into `chunk`."""
        settings = self._settings
        # Only decisions are kept for a refusal: their inputs are small (too_large bounds them),
        # while a dead letter's input can be a megabyte and is rebuilt from the refused copy.
        on_delivery = self._callback(chunk, [r for r in group if isinstance(r, Decided)])
        for result in group:
            if isinstance(result, Decided):
                approved = result.verdict.outcome == "APPROVED"
                topic = settings.approved_topic if approved else settings.rejected_topic
                key = result.listing_id.encode()
                refused = self._produce(topic, result.value, key, result.headers, on_delivery)
                if refused is not None:
                    code, detail = refused
                    msg = f"decision of {len(result.value)} bytes refused: {detail}"
                    self._dead_letter(result.record, code, msg, chunk, self._max_bytes)
                shadow = result.shadow
                if shadow is not None and shadow.value is not None:
                    self._shadow(shadow.value, key, shadow.headers, chunk, on_delivery)
            else:
                self._dead_letter(
                    result.record, result.code, result.message, chunk, self._max_bytes
                )

    def _shadow(
        self,
        value: bytes,
        key: bytes,
        headers: Headers,
        chunk: Chunk[Tally],
        on_delivery: DeliveryCallback,
    ) -> None:
        """A shadow decision; one the topic refuses is skipped (and said), never dead-lettered."""
        topic = cast(str, self._settings.shadow_topic)
        refused = self._produce(topic, value, key, headers, on_delivery)
        if refused is not None:
            chunk.ack()
            self._warnings.warn("shadow decision refused, skipped", refused[1])

    def _dead_letter(
        self, record: RawRecord, code: str, message: str, chunk: Chunk[Tally], max_bytes: int
    ) -> None:
        log.debug("dead letter", extra={"detail": describe(record, code, message)})
        letter = fitted_dead_letter(record, code, message, self._settings.worker_id, max_bytes)
        refused = self._produce(
            self._settings.dlq_topic,
            letter.value,
            letter.key,
            letter.headers,
            self._callback(chunk, []),
        )
        if refused is not None:
            msg = f"{self._settings.dlq_topic}: dead-letter topic refused a record: {refused[1]}"
            raise DeliveryError(msg)

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        on_delivery: DeliveryCallback,
    ) -> tuple[str, str] | None:
        """produce(); (dead-letter code, detail) when librdkafka refuses this record at once."""
        try:
            produce_waiting(self._producer, topic, value, key, headers, on_delivery)
        except ProduceRefused as exc:
            code = kafka_errors.per_message_code(exc.error)
            if code is None:
                raise
            return code, kafka_errors.describe(exc.error)
        return None

    def resend_failed(self, owned: Container[PartitionKey]) -> None:
        """Re-produce outputs whose delivery failed retriably, and dead-letter refused records,
        for partitions we still own (a partition that moved on is re-processed by its new owner)."""
        pending, self._retry[:] = list(self._retry), []
        for chunk, message in pending:
            if (chunk.topic, chunk.partition) not in owned:
                continue
            log.info("re-sending output after retriable failure", extra={"topic": message.topic()})
            produce_waiting(
                self._producer,
                cast(str, message.topic()),
                message.value(),
                message.key(),
                tuple(cast(Headers, message.headers() or ())),
                self._callback(chunk, []),
            )
        reroutes, self._reroute[:] = list(self._reroute), []
        for r in reroutes:
            if (r.chunk.topic, r.chunk.partition) in owned:
                self._dead_letter(r.record, r.code, r.message, r.chunk, r.max_bytes)

    @property
    def retrying(self) -> bool:
        return bool(self._retry or self._reroute)

    def poll(self, timeout: float) -> None:
        """Serve delivery reports (which acknowledge chunks) for up to `timeout` seconds."""
        try:
            self._producer.poll(timeout)
        except KafkaException as exc:
            raise self._fatal(exc.args[0]) from exc

    def flush(self, timeout: float) -> None:
        try:
            self._producer.flush(timeout)
        except KafkaException as exc:
            raise self._fatal(exc.args[0]) from exc

    def _fatal(self, error: KafkaError) -> DeliveryError:
        """poll() and flush() raise a fatal producer error. The idempotent producer's one that
        needs naming: no producer id (CLUSTER_AUTHORIZATION_FAILED) without Write on some topic,
        so none on the decision topic, the one every run writes."""
        if error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            return ProduceRefused(self._settings.approved_topic, error)
        return DeliveryError(f"fatal Kafka producer error: {kafka_errors.describe(error)}")

    def take_refused(self) -> list[tuple[RawRecord, str, str]]:
        """Records the broker refused for reasons of their own, to be dead-lettered (and forgotten here)."""
        refused, self._reroute[:] = [(r.record, r.code, r.message) for r in self._reroute], []
        self._retry.clear()
        return refused

    def _callback(self, chunk: Chunk[Tally], sources: Sequence[Result]) -> DeliveryCallback:
        """One closure per chunk, not per message; `sources` finds the input of a refused output."""
        ack = chunk.ack
        retry = self._retry
        faults = self._faults
        warnings = self._warnings
        dlq_topic = self._settings.dlq_topic
        shadow_topic = self._settings.shadow_topic
        transactional = self._transactional

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                ack()
            elif error.code() in _PURGED:
                pass  # an aborted transaction's output: whoever aborted it redoes the work
            elif error.retriable() or error.code() == KafkaError._MSG_TIMED_OUT:
                retry.append((chunk, message))
            elif (code := kafka_errors.per_message_code(error)) is not None and (
                message.topic() == shadow_topic
            ):
                ack()  # a shadow decision is advice: the live decision stands without it
                warnings.warn("shadow decision refused, skipped", kafka_errors.describe(error))
            elif code is not None:
                reroute = self._refused(chunk, sources, message, code, error, dlq_topic)
                if reroute is not None:
                    self._reroute.append(reroute)
                else:
                    faults.record(
                        DeliveryError(
                            f"{message.topic()}: broker refused even a minimal dead letter: "
                            f"{kafka_errors.describe(error)}"
                        )
                    )
            elif transactional and not kafka_errors.stops_worker(error):
                retry.append((chunk, message))  # the transaction fails to commit and is redone
            else:
                faults.record(
                    DeliveryError(kafka_errors.refused_output(str(message.topic()), error))
                )

        return delivered

    def _refused(
        self,
        chunk: Chunk[Tally],
        sources: Sequence[Result],
        message: Message,
        code: str,
        error: KafkaError,
        dlq_topic: str,
    ) -> _Reroute | None:
        """What to produce instead of a refused output; None when nothing smaller is left to try."""
        detail = kafka_errors.describe(error)
        if message.topic() != dlq_topic:
            value = message.value()
            for result in sources:
                if isinstance(result, Decided) and result.value == value:
                    msg = f"decision of {len(value or b'')} bytes refused by the broker: {detail}"
                    return _Reroute(chunk, result.record, code, msg, self._max_bytes)
            return None
        if len(message.value() or b"") <= SMALL_DEAD_LETTER_BYTES:
            return None
        pairs = cast(list[tuple[str, bytes]], message.headers() or [])  # our own dead letter's
        ours = dict(pairs)
        record = RawRecord(
            (ours.get(SOURCE_TOPIC) or b"").decode(),
            int(ours.get(SOURCE_PARTITION) or -1),
            int(ours.get(SOURCE_OFFSET) or -1),
            int(ours[SOURCE_TIMESTAMP]) if SOURCE_TIMESTAMP in ours else None,
            message.key(),
            message.value(),
            tuple((k, v) for k, v in pairs if not k.startswith(OUR_HEADER_PREFIX)),
        )
        # Keep the record's own error; only its size changes.
        original = (ours.get(ERROR_CODE) or code.encode()).decode()
        text = (ours.get(ERROR_MESSAGE) or b"").decode("utf-8", "replace")
        return _Reroute(chunk, record, original, text, SMALL_DEAD_LETTER_BYTES)
