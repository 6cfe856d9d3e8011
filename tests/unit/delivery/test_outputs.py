"""Outputs: no single record can stop a partition; only errors no record can pass stop the worker."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from consumer import config
from consumer.codec import AvroCodec
from consumer.core.pipeline import Decided, Decider, Result, Tally, tally
from consumer.core.records import Price, RawRecord
from consumer.delivery.ledger import Chunk, OffsetLedger
from consumer.delivery.outputs import SMALL_DEAD_LETTER_BYTES, Outputs
from consumer.errors import DeliveryError
from consumer.kafka.faults import Faults
from consumer.policy import bundled_policy_text, compile_policy, load_policy
from consumer.telemetry.throttle import Warnings
from tests.unit.fakes import FakeProducer
from tests.unit.listings import make_listing
from tests.unit.policy.test_evaluate import reject, usd
from tests.unit.policy.test_language import compiled, review

SETTINGS = replace(config.load(env={}), worker_id="w-1")


def results(*values: bytes) -> list[Result]:
    decider = Decider(AvroCodec(), compile_policy(load_policy(bundled_policy_text())))
    records = [RawRecord("in", 0, n, None, b"key", v, ()) for n, v in enumerate(values)]
    return decider.decide(records, 0)


def good_value() -> bytes:
    return AvroCodec().encode_listing(make_listing())


def run(producer: FakeProducer, group: list[Result], max_bytes: int = 1_000_000):
    faults = Faults()
    outputs = Outputs(producer, SETTINGS, faults, Warnings(), max_bytes)  # type: ignore[arg-type]
    ledger: OffsetLedger[Tally] = OffsetLedger()
    chunk = ledger.open("in", 0, 0, len(group) - 1, len(group), tally(group))
    outputs.send(group, chunk)
    for _ in range(5):
        producer.poll()
        outputs.resend_failed({("in", 0)})
    return chunk, faults


#: Cross-border fashion goes to review, cross-border listings under USD 5 are rejected (which beats
#: review), domestic listings are approved.
_ROUTING_POLICY = compiled(
    [
        review("fashion_review", cross_border=True, cluster_in=["fashion"]),
        reject("cheap", cross_border=True, price_below=usd(5)),
    ]
)


class TestRouting:
    @pytest.mark.parametrize(
        ("listing", "outcome", "topic"),
        [
            ({}, "REVIEW", SETTINGS.rejected_topic),
            ({"price": Price(100, "USD")}, "REJECTED", SETTINGS.rejected_topic),
            ({"channel": "DOMESTIC"}, "APPROVED", SETTINGS.approved_topic),
        ],
        ids=["review-to-rejected-topic", "rejected-to-rejected-topic", "approved-to-approved"],
    )
    def test_a_decision_goes_to_the_topic_of_its_outcome(
        self, listing: dict[str, Any], outcome: str, topic: str
    ) -> None:
        """Only APPROVED goes to the approved topic: a REVIEW decision is produced to the
        rejected topic (fail closed), keyed by its listing id like any decision."""
        value = AvroCodec().encode_listing(make_listing(**listing))
        record = RawRecord("in", 0, 0, None, b"key", value, ())
        group = Decider(AvroCodec(), _ROUTING_POLICY).decide([record], 0)
        [decided] = group
        assert isinstance(decided, Decided)
        assert decided.verdict.outcome == outcome
        producer = FakeProducer()
        chunk, faults = run(producer, group)
        assert chunk.done
        assert faults.first is None
        [message] = producer.sent
        assert (message.topic(), message.key()) == (topic, decided.listing_id.encode())
        assert AvroCodec().decode_decision(message.value()).outcome == outcome


class TestOversizedDeadLetters:
    def test_a_1mb_poison_message_is_dead_lettered_truncated_and_acknowledged(self) -> None:
        """The copy would exceed message.max.bytes: it is cut to fit, and the chunk completes."""
        producer = FakeProducer()
        chunk, faults = run(producer, results(b"\x07" * 999_900), max_bytes=1_000_000)
        assert chunk.done
        assert faults.first is None
        [letter] = producer.sent
        headers = headers_of(letter)
        assert letter.topic() == SETTINGS.dlq_topic
        assert headers["ic.error.code"] == b"too_large"
        assert headers["ic.value.truncated"] == b"true"
        assert headers["ic.value.original.size"] == b"999900"

    def test_a_decision_the_client_refuses_for_its_size_is_dead_lettered(self) -> None:
        """produce() raising MSG_SIZE_TOO_LARGE for a decision becomes a dead letter, not a crash."""
        value = good_value()
        producer = FakeProducer(refuse=None)
        group = results(value)
        producer.limits[SETTINGS.approved_topic] = len(group[0].value) - 1  # type: ignore[union-attr]
        chunk, faults = run(producer, group, max_bytes=100_000)
        assert chunk.done
        assert faults.first is None
        [letter] = producer.sent
        assert letter.topic() == SETTINGS.dlq_topic
        assert headers_of(letter)["ic.error.code"] == b"output_too_large"
        assert letter.value() == value

    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (KafkaError.MSG_SIZE_TOO_LARGE, b"output_too_large"),
            (KafkaError.INVALID_RECORD, b"output_rejected"),
            (KafkaError.POLICY_VIOLATION, b"output_rejected"),
        ],
        ids=["too-large", "invalid-record", "policy-violation"],
    )
    def test_a_decision_the_broker_refuses_is_dead_lettered(self, error: int, code: bytes) -> None:
        """A per-record refusal in the delivery report re-routes that record, with its own code."""

        def refuse_decisions(topic, _v):
            return KafkaError(error) if topic != SETTINGS.dlq_topic else None

        producer = FakeProducer(refuse=refuse_decisions)
        value = good_value()
        chunk, faults = run(producer, results(value))
        assert chunk.done
        assert faults.first is None
        [letter] = producer.sent
        assert headers_of(letter)["ic.error.code"] == code
        assert letter.value() == value

    def test_a_dead_letter_the_broker_refuses_for_size_is_sent_again_smaller(self) -> None:
        """A topic whose max.message.bytes is below ours: the dead letter shrinks to 64 KiB."""

        def refuse(topic: str, value: bytes | None) -> KafkaError | None:
            big = len(value or b"") > SMALL_DEAD_LETTER_BYTES
            return KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if big else None

        producer = FakeProducer(refuse=refuse)
        chunk, faults = run(producer, results(b"\x07" * 500_000))
        assert chunk.done
        assert faults.first is None
        [letter] = producer.sent
        headers = headers_of(letter)
        assert headers["ic.error.code"] == b"too_large"
        assert headers["ic.value.original.size"] == b"500000"
        assert len(letter.value() or b"") <= SMALL_DEAD_LETTER_BYTES

    def test_authorization_failure_stops_the_worker_with_one_line(self) -> None:
        """No record can get past a missing WRITE permission: fatal, naming the error."""
        refuse = lambda _t, _v: KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)  # noqa: E731
        chunk, faults = run(FakeProducer(refuse=refuse), results(good_value()))
        assert not chunk.done
        assert isinstance(faults.first, DeliveryError)
        assert "TOPIC_AUTHORIZATION_FAILED" in str(faults.first)

    def test_a_write_refused_at_once_stops_the_worker_with_one_line_naming_the_topic(self) -> None:
        """librdkafka already knows the topic is unauthorized and produce() raises: the same
        one-line refusal as an asynchronous one, naming the topic and the ACL, not a traceback."""
        producer = FakeProducer()
        producer.refuse_at_once[SETTINGS.approved_topic] = KafkaError(
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        )
        with pytest.raises(DeliveryError) as refused:
            run(producer, results(good_value()))
        topic = SETTINGS.approved_topic
        assert str(refused.value).startswith(
            f"{topic}: not authorized: Write on topic {topic} (TOPIC_AUTHORIZATION_FAILED)"
        )

    def test_an_asynchronous_authorization_failure_names_the_acl_too(self) -> None:
        refuse = lambda _t, _v: KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)  # noqa: E731
        _chunk, faults = run(FakeProducer(refuse=refuse), results(good_value()))
        assert f"not authorized: Write on topic {SETTINGS.approved_topic}" in str(faults.first)

    def test_retriable_failures_are_sent_again(self) -> None:
        """A timed-out or retriable delivery is re-produced, never dropped or dead-lettered."""
        failures = [KafkaError(KafkaError._MSG_TIMED_OUT)]
        refuse = lambda _t, _v: failures.pop() if failures else None  # noqa: E731
        producer = FakeProducer(refuse=refuse)
        chunk, faults = run(producer, results(good_value()))
        assert chunk.done
        assert faults.first is None
        assert [m.topic() for m in producer.sent] == [SETTINGS.approved_topic]


def headers_of(message: Message) -> dict[str, bytes]:
    return dict(message.headers() or [])  # type: ignore[arg-type]


SHADOW_SETTINGS = replace(SETTINGS, shadow_topic="shadow-decisions")


def shadowed_results(*values: bytes) -> list[Result]:
    """Decided by the bundled policy, shadowed by the same policy, every shadow decision produced."""
    policy = compile_policy(load_policy(bundled_policy_text()))
    decider = Decider(AvroCodec(), policy, shadow=policy, shadow_output="all")
    records = [RawRecord("in", 0, n, None, b"key", v, ()) for n, v in enumerate(values)]
    return decider.decide(records, 0)


def run_shadowed(producer: FakeProducer, group: list[Result]) -> tuple[Chunk[Tally], Faults]:
    faults = Faults()
    outputs = Outputs(producer, SHADOW_SETTINGS, faults, Warnings())  # type: ignore[arg-type]
    ledger: OffsetLedger[Tally] = OffsetLedger()
    count = Outputs.count(group)
    chunk = ledger.open("in", 0, 0, len(group) - 1, count, tally(group))
    outputs.send(group, chunk)
    producer.poll()
    return chunk, faults


class TestShadowOutputs:
    def test_an_input_is_done_only_when_its_live_and_shadow_decisions_are_acknowledged(
        self,
    ) -> None:
        group = shadowed_results(good_value(), b"\x07")  # a decision and a dead letter
        assert Outputs.count(group) == 3
        producer = FakeProducer()
        outputs = Outputs(producer, SHADOW_SETTINGS, Faults(), Warnings())  # type: ignore[arg-type]
        ledger: OffsetLedger[Tally] = OffsetLedger()
        chunk = ledger.open("in", 0, 0, 1, Outputs.count(group), tally(group))
        outputs.send(group, chunk)
        assert chunk.remaining == 3
        producer.poll()
        assert chunk.done
        topics = sorted(str(m.topic()) for m in producer.sent)
        assert topics == sorted([SETTINGS.rejected_topic, "shadow-decisions", SETTINGS.dlq_topic])
        [shadow] = [m for m in producer.sent if m.topic() == "shadow-decisions"]
        assert ("ic.shadow", b"true") in (shadow.headers() or [])
        assert shadow.key() == b"lst-1"

    def test_a_refused_shadow_decision_is_skipped_and_the_live_one_stands(self) -> None:
        refused = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
        producer = FakeProducer(
            refuse=lambda topic, _value: refused if topic == "shadow-decisions" else None
        )
        chunk, faults = run_shadowed(producer, shadowed_results(good_value()))
        assert chunk.done
        assert faults.first is None
        assert [m.topic() for m in producer.sent] == [SETTINGS.rejected_topic]


class _FatalProducer(FakeProducer):
    """confluent-kafka's poll() and flush() raise the producer's fatal error."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def poll(self, _timeout: float = 0) -> int:
        raise KafkaException(KafkaError(self.code, fatal=True))

    def flush(self, _timeout: float = 0) -> int:
        raise KafkaException(KafkaError(self.code, fatal=True))


class TestFatalProducerErrors:
    def test_no_producer_id_names_write_on_the_decision_topic(self) -> None:
        """Without Write on any topic the idempotent producer is refused its id with
        CLUSTER_AUTHORIZATION_FAILED: one line naming the ACL, not a traceback."""
        producer = _FatalProducer(KafkaError.CLUSTER_AUTHORIZATION_FAILED)
        outputs = Outputs(producer, SETTINGS, Faults(), Warnings())  # type: ignore[arg-type]
        topic = SETTINGS.approved_topic
        for serve in (outputs.poll, outputs.flush):
            with pytest.raises(
                DeliveryError, match=f"^{topic}: not authorized: Write on topic {topic} "
            ):
                serve(0)

    def test_any_other_fatal_error_is_one_line_too(self) -> None:
        outputs = Outputs(_FatalProducer(KafkaError._FATAL), SETTINGS, Faults(), Warnings())  # type: ignore[arg-type]
        with pytest.raises(DeliveryError, match=r"^fatal Kafka producer error: _FATAL"):
            outputs.poll(0)
