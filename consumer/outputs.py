"""The producing side of the loop: routes each result to its topic and tracks its acknowledgement.

Each chunk of work gets one delivery callback, which acknowledges the chunk in the offset ledger.
Callbacks never raise: a retriable failure is queued for re-sending by the loop, any other
failure is recorded as fatal in ClientEvents and raised by the loop at its next turn.
"""

from __future__ import annotations

import logging
from collections.abc import Container
from typing import cast

from confluent_kafka import KafkaError, Message, Producer

from consumer.client_events import ClientEvents
from consumer.clients import DeliveryCallback, Headers, produce_waiting
from consumer.config import Settings
from consumer.deadletter import dead_letter_headers, describe
from consumer.errors import DeliveryError
from consumer.offsets import Chunk
from consumer.pipeline import Decided, Result, Tally

log = logging.getLogger(__name__)


class Outputs:
    """Decisions to the approved/rejected topics keyed by listing_id; failures to the dead-letter topic."""

    def __init__(self, producer: Producer, settings: Settings, events: ClientEvents) -> None:
        self._producer = producer
        self._settings = settings
        self._events = events
        self._retry: list[tuple[Chunk[Tally], Message]] = []

    def send(self, group: list[Result], chunk: Chunk[Tally]) -> None:
        """Produce one output per result of `group`, all acknowledged into `chunk`."""
        settings = self._settings
        on_delivery = self._callback(chunk)
        for result in group:
            if isinstance(result, Decided):
                approved = result.verdict.outcome == "APPROVED"
                topic = settings.approved_topic if approved else settings.rejected_topic
                headers: Headers = list(result.headers)
                key = result.listing_id.encode()
                produce_waiting(self._producer, topic, result.value, key, headers, on_delivery)
            else:
                r = result.record
                log.debug("dead letter", extra={"detail": describe(r, result.code, result.message)})
                dlq = dead_letter_headers(r, result.code, result.message, settings.worker_id)
                produce_waiting(
                    self._producer, settings.dlq_topic, r.value, r.key, list(dlq), on_delivery
                )

    def resend_failed(self, owned: Container[tuple[str, int]]) -> None:
        """Re-produce outputs whose delivery failed retriably, for partitions we still own."""
        pending, self._retry[:] = list(self._retry), []
        for chunk, message in pending:
            if (chunk.topic, chunk.partition) not in owned:
                continue  # partition moved on; its new owner re-processes from the committed offset
            log.info("re-sending output after retriable failure", extra={"topic": message.topic()})
            produce_waiting(
                self._producer,
                cast(str, message.topic()),
                message.value(),
                message.key(),
                cast(Headers, message.headers() or []),
                self._callback(chunk),
            )

    @property
    def retrying(self) -> bool:
        return bool(self._retry)

    def poll(self, timeout: float) -> None:
        """Serve delivery reports (which acknowledge chunks) for up to `timeout` seconds."""
        self._producer.poll(timeout)

    def _callback(self, chunk: Chunk[Tally]) -> DeliveryCallback:
        """One closure per chunk, not per message."""
        ack = chunk.ack
        retry = self._retry
        events = self._events

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                ack()
            elif error.retriable() or error.code() == KafkaError._MSG_TIMED_OUT:
                retry.append((chunk, message))
            elif events.fatal is None:
                events.fatal = DeliveryError(
                    f"{message.topic()}: broker refused output: {error.str()} ({error.name()})"
                )

        return delivered
