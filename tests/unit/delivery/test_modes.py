"""The two delivery modes against fakes of librdkafka's clients: what each commits, and when."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, cast
from unittest.mock import create_autospec

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from prometheus_client import CollectorRegistry

from consumer import config
from consumer.codec import AvroCodec
from consumer.core.pipeline import Decider, Result
from consumer.core.records import RawRecord
from consumer.delivery import exactly_once
from consumer.delivery.at_least_once import AtLeastOnce
from consumer.delivery.exactly_once import (
    CALL_TIMEOUT,
    MAX_RENEWALS,
    OVERRUN_GRACE,
    RENEW_WINDOW,
    SEND_OFFSETS_GRACE,
    SEND_OFFSETS_TIMEOUT,
    SLOW_CALL,
    ExactlyOnce,
)
from consumer.delivery.outputs import Outputs
from consumer.delivery.watchdog import Watchdog
from consumer.errors import DeliveryError, KafkaClientError
from consumer.kafka.faults import Faults
from consumer.policy import bundled_policy_text, compile_policy, load_policy
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings
from tests.unit.fakes import FakeProducer, FakeTransactionalProducer
from tests.unit.listings import make_listing

SETTINGS = replace(config.load(env={}), worker_id="w-1")
TP0 = ("in", 0)
OWNED = frozenset({TP0})


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def decided(*offsets: int, value: bytes | None = None) -> list[Result]:
    decider = Decider(AvroCodec(), compile_policy(load_policy(bundled_policy_text())))
    good = AvroCodec().encode_listing(make_listing())
    records = [RawRecord("in", 0, o, None, b"k", value or good, ()) for o in offsets]
    return decider.decide(records, 0)


def positions(tps: list[Any]) -> list[tuple[str, int, int]]:
    """TopicPartition's == ignores the offset, so offsets are compared as these triples."""
    return [(tp.topic, tp.partition, tp.offset) for tp in tps]


def stored(c: Any) -> list[tuple[str, int, int]]:
    """The offsets of the one store_offsets call."""
    c.store_offsets.assert_called_once()
    return positions(c.store_offsets.call_args.kwargs["offsets"])


def consumer() -> Any:
    c = create_autospec(Consumer, instance=True, spec_set=True)
    c.consumer_group_metadata.return_value = object()
    return c


def parts(producer: FakeProducer, transactional: bool = False):
    metrics = Metrics(CollectorRegistry())
    faults, warnings = Faults(), Warnings()
    outputs = Outputs(producer, SETTINGS, faults, warnings, transactional=transactional)  # type: ignore[arg-type]
    return outputs, faults, warnings, metrics


class NeverAcknowledges(FakeProducer):
    """A broker that is away: polling takes a second and delivers nothing."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def poll(self, _timeout: float = 0) -> int:
        self.clock.t += 1
        return 0


class TestAtLeastOnce:
    def make(self, producer: FakeProducer, clock: Clock | None = None) -> tuple[AtLeastOnce, Any]:
        outputs, faults, _warnings, metrics = parts(producer)
        c = consumer()
        return AtLeastOnce(
            lambda: c, outputs, faults, metrics, monotonic=clock or time.monotonic
        ), c

    def test_offsets_are_stored_only_after_acknowledgement(self) -> None:
        """Nothing is stored while outputs are in flight; then the next offset to read is."""
        producer = FakeProducer()
        delivery, c = self.make(producer)
        delivery.submit(decided(7, 8))
        assert delivery.in_flight() == 2
        assert delivery.service(OWNED)  # the fake acknowledges on poll
        assert stored(c) == [("in", 0, 9)]
        assert delivery.idle()

    @pytest.mark.parametrize(
        ("offsets", "consumed", "next_offset"),
        [
            ((7, 8), None, 9),
            ((7, 8), (7, 11), 12),
            ((9,), (7, 11), 12),
            ((), (7, 11), 12),
        ],
        ids=["the-results-own", "past-the-last-result", "around-the-result", "no-result"],
    )
    def test_the_stored_offset_covers_every_consumed_record(
        self, offsets: tuple[int, ...], consumed: tuple[int, int] | None, next_offset: int
    ) -> None:
        """Records that gave no output (replay's unchanged listings and dead letters) are
        committed with their batch, so a resumed run does not read them again."""
        producer = FakeProducer()
        delivery, c = self.make(producer)
        delivery.submit(decided(*offsets), None if consumed is None else {TP0: consumed})
        assert len(delivery.service(OWNED)) == 1
        assert stored(c) == [("in", 0, next_offset)]
        assert len(producer.sent) == len(offsets)
        assert delivery.idle()

    def test_a_batch_without_output_waits_behind_undelivered_work(self) -> None:
        """Done at once, but committed only in turn: never past an earlier unacknowledged output."""
        clock = Clock()
        delivery, c = self.make(NeverAcknowledges(clock), clock)
        delivery.submit(decided(3))
        delivery.submit([], {TP0: (4, 6)})
        assert delivery.service(OWNED) == []
        c.store_offsets.assert_not_called()
        assert delivery.in_flight() == 1

    def test_revoke_with_work_in_flight_drains_then_commits_the_revoked_partition(self) -> None:
        """Revocation waits for the outputs, then commits synchronously before letting go."""
        producer = FakeProducer()
        delivery, c = self.make(producer)
        delivery.submit(decided(3))
        done = delivery.revoke({TP0}, OWNED, timeout=5)
        assert len(done) == 1
        c.commit.assert_called_once()
        assert c.commit.call_args.kwargs["asynchronous"] is False
        assert positions(c.commit.call_args.kwargs["offsets"]) == [("in", 0, 4)]

    def test_lost_partitions_are_forgotten_uncommitted(self) -> None:
        """A lost partition's acknowledged work is not stored: its new owner redoes it."""
        producer = FakeProducer()
        delivery, c = self.make(producer)
        delivery.submit(decided(3))
        delivery.lose({TP0}, OWNED)
        assert delivery.service(frozenset()) == []
        c.store_offsets.assert_not_called()

    def test_a_fault_ends_the_wait_at_shutdown_and_is_raised_uncommitted(self) -> None:
        """The broker refused output for good: shutdown stops waiting, commits nothing, raises it."""
        clock = Clock()
        producer = NeverAcknowledges(clock)
        outputs, faults, _warnings, metrics = parts(producer)
        c = consumer()
        delivery = AtLeastOnce(lambda: c, outputs, faults, metrics, monotonic=clock)
        delivery.submit(decided(3))
        faults.record(DeliveryError("out: broker refused output"))
        with pytest.raises(DeliveryError, match="refused output"):
            delivery.shutdown(OWNED, timeout=30)
        assert clock.t < 30  # did not wait out the timeout
        c.store_offsets.assert_not_called()
        c.commit.assert_not_called()

    def test_shutdown_timeout_leaves_undelivered_work_uncommitted(self) -> None:
        """What is not acknowledged within the timeout is not committed."""
        clock = Clock()
        delivery, c = self.make(NeverAcknowledges(clock), clock)
        delivery.submit(decided(3))
        assert delivery.shutdown(OWNED, timeout=3) == []
        c.store_offsets.assert_not_called()


class RecordingWatchdog(Watchdog):
    """Records each guarded call's name and bound instead of timing it."""

    def __init__(self) -> None:
        super().__init__(lambda _message: None)
        self.bounds: list[tuple[str, float]] = []

    @contextmanager
    def guard(self, what: str, seconds: float) -> Iterator[None]:
        self.bounds.append((what, seconds))
        yield


class TimeoutRecordingProducer(FakeTransactionalProducer):
    """Also records the timeout each transactional call was given."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: dict[str, float] = {}

    def send_offsets_to_transaction(self, offsets, metadata, timeout: float) -> None:
        self.timeouts["send_offsets"] = timeout
        super().send_offsets_to_transaction(offsets, metadata, timeout)

    def commit_transaction(self, timeout: float) -> None:
        self.timeouts["commit"] = timeout
        super().commit_transaction(timeout)


class TestExactlyOnce:
    def make(
        self,
        producer: FakeTransactionalProducer,
        clock: Clock,
        c: Any = None,
        watchdog: Watchdog | None = None,
    ):
        outputs, _faults, warnings, metrics = parts(producer, transactional=True)
        c = c or consumer()
        fake: Any = producer
        delivery = ExactlyOnce(lambda: c, fake, outputs, warnings, metrics, 0.1, clock, watchdog)
        return delivery, c, metrics

    def test_send_offsets_has_a_short_bound_of_its_own(self) -> None:
        """send_offsets_to_transaction gets 5 s and the watchdog 7 s, not the minute the other
        calls get: a restart beats waiting on librdkafka's coordinator-lookup hang."""
        producer, clock, watchdog = TimeoutRecordingProducer(), Clock(), RecordingWatchdog()
        delivery, _c, _m = self.make(producer, clock, watchdog=watchdog)
        delivery.submit(decided(1))
        clock.t += 1
        assert len(delivery.service(OWNED)) == 1
        assert producer.timeouts == {"send_offsets": SEND_OFFSETS_TIMEOUT, "commit": CALL_TIMEOUT}
        assert dict(watchdog.bounds)["send_offsets_to_transaction"] == 7.0
        assert SEND_OFFSETS_TIMEOUT + SEND_OFFSETS_GRACE < CALL_TIMEOUT + OVERRUN_GRACE
        assert dict(watchdog.bounds)["commit_transaction"] == CALL_TIMEOUT + OVERRUN_GRACE

    def test_close_of_a_fenced_producer_raises_nothing_more(self) -> None:
        """A producer fenced during a long outage raises on flush; the worker already stops with
        that error's one line, so closing must not add a traceback."""

        class Fenced(FakeTransactionalProducer):
            def flush(self, _timeout: float = 0) -> int:
                raise KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

        delivery, _c, _m = self.make(Fenced(), Clock())
        delivery.close()

    def test_send_offsets_timing_out_aborts_and_rewinds(self) -> None:
        """librdkafka's own timeout of send_offsets is abortable: the transaction is redone from
        where it began, in the same process."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, c, metrics = self.make(producer, clock)
        delivery.submit(decided(7, 8))
        producer.fail["send_offsets"] = KafkaError(
            KafkaError._TIMED_OUT, "timed out", txn_requires_abort=True, retriable=True
        )
        clock.t += 1
        assert delivery.service(OWNED) == []
        assert producer.calls[-2:] == ["send_offsets", "abort"]
        assert positions(list(c.seek.call_args.args)) == [("in", 0, 7)]
        assert metrics.transactions.labels("aborted")._value.get() == 1

    def test_batches_commit_together_with_their_offsets_after_the_interval(self) -> None:
        """One transaction spans batches until transaction_interval_ms; offsets go inside it."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, _c, metrics = self.make(producer, clock)
        delivery.submit(decided(1, 2))
        delivery.submit(decided(3))
        assert delivery.service(OWNED) == []  # interval not reached
        clock.t += 0.1
        done = delivery.service(OWNED)
        assert len(done) == 2
        assert producer.calls == ["init", "begin", "send_offsets", "commit"]
        assert [positions(o) for o in producer.committed_offsets] == [[("in", 0, 4)]]
        assert delivery.idle()
        assert metrics.transactions.labels("committed")._value.get() == 1

    def test_records_without_output_commit_in_the_transaction(self) -> None:
        """The transaction's offsets cover the batches past their last output."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, _c, _m = self.make(producer, clock)
        delivery.submit([], {TP0: (1, 2)})
        delivery.submit(decided(4), {TP0: (3, 6)})
        clock.t += 0.1
        assert len(delivery.service(OWNED)) == 2
        assert [positions(o) for o in producer.committed_offsets] == [[("in", 0, 7)]]

    def test_an_abort_rewinds_to_the_first_record_even_without_output(self) -> None:
        """The rewind point is the transaction's first consumed record, output or not."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, c, _m = self.make(producer, clock)
        delivery.submit([], {TP0: (1, 2)})
        delivery.submit(decided(4), {TP0: (3, 6)})
        producer.fail["commit"] = KafkaError(
            KafkaError._STATE, "abortable", txn_requires_abort=True
        )
        clock.t += 1
        assert delivery.service(OWNED) == []
        c.seek.assert_called_once()
        assert positions(list(c.seek.call_args.args)) == [("in", 0, 1)]

    def test_an_abortable_error_aborts_and_rewinds_to_where_the_transaction_began(self) -> None:
        """Nothing of an aborted transaction counts; the consumer re-reads from its first offset."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, c, metrics = self.make(producer, clock)
        delivery.submit(decided(5, 6))
        producer.fail["commit"] = KafkaError(
            KafkaError._STATE, "abortable", txn_requires_abort=True
        )
        clock.t += 1
        assert delivery.service(OWNED) == []
        assert producer.calls[-1] == "abort"
        c.seek.assert_called_once()
        assert positions(list(c.seek.call_args.args)) == [("in", 0, 5)]
        assert metrics.transactions.labels("aborted")._value.get() == 1

    def test_fencing_stops_the_worker_with_one_line(self) -> None:
        """A newer instance with our transactional.id took over: stop, never write beside it."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, _c, _m = self.make(producer, clock)
        delivery.submit(decided(1))
        producer.fail["commit"] = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
        clock.t += 1
        with pytest.raises(KafkaClientError, match="fenced by a newer instance"):
            delivery.service(OWNED)

    def test_a_record_the_broker_refuses_is_dead_lettered_when_it_comes_back(self) -> None:
        """The refusal aborts the transaction; on the re-read that record goes to the dead letters."""

        def refuse(topic, _v):
            return (
                KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if topic != SETTINGS.dlq_topic else None
            )

        producer, clock = FakeTransactionalProducer(refuse=refuse), Clock()
        delivery, _c, _m = self.make(producer, clock)
        delivery.submit(decided(5))
        clock.t += 1
        assert delivery.service(OWNED) == []
        assert producer.calls[-1] == "abort"
        producer.refuse = lambda _t, _v: None
        delivery.submit(decided(5))
        clock.t += 1
        [done] = delivery.service(OWNED)
        assert dict(done.dead_letters) == {"output_too_large": 1}
        assert [m.topic() for m in producer.sent] == [SETTINGS.dlq_topic]

    def test_a_produce_refused_because_the_transaction_failed_aborts_and_rewinds(self) -> None:
        """produce() raises _STATE once the open transaction hit an abortable error (e.g. a
        broker restart): the transaction is aborted at the next turn and re-read from its start,
        the worker goes on, and nothing of it counts."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, c, metrics = self.make(producer, clock)
        delivery.submit(decided(5, 6))
        producer.refuse_at_once[SETTINGS.approved_topic] = KafkaError(
            KafkaError._STATE, "Operation not valid in state AbortableError"
        )
        delivery.submit(decided(7, 8))  # raises nothing: the transaction is doomed
        assert delivery.service(OWNED) == []  # at once, not after the interval
        assert producer.calls[-1] == "abort"
        assert positions(list(c.seek.call_args.args)) == [("in", 0, 5)]
        assert metrics.transactions.labels("aborted")._value.get() == 1
        del producer.refuse_at_once[SETTINGS.approved_topic]
        delivery.submit(decided(5, 6, 7, 8))
        clock.t += 1
        [done] = delivery.service(OWNED)
        assert done.decisions.total() == 4
        assert [positions(o) for o in producer.committed_offsets] == [[("in", 0, 9)]]

    def test_a_produce_refused_for_good_stops_the_worker_with_one_line(self) -> None:
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, _c, _m = self.make(producer, clock)
        delivery.submit(decided(1))  # delivered, in the open transaction
        producer.refuse_at_once[SETTINGS.approved_topic] = KafkaError(
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        )
        with pytest.raises(DeliveryError, match="not authorized: Write on topic"):
            delivery.submit(decided(2))

    def test_after_a_refusal_for_good_closing_commits_nothing(self) -> None:
        """The worker stops on the refusal and closes its consumer, which revokes the partitions;
        revoke commits an open transaction, but not this one: its offsets cover the refused
        record, so it is aborted (seen in CI: a replay without Write committed offset 2 of a
        partition whose decision 1 was never written)."""
        producer, clock = FakeTransactionalProducer(), Clock()
        delivery, _c, metrics = self.make(producer, clock)
        delivery.submit(decided(1))
        producer.refuse_at_once[SETTINGS.approved_topic] = KafkaError(
            KafkaError.TOPIC_AUTHORIZATION_FAILED
        )
        with pytest.raises(DeliveryError):
            delivery.submit(decided(2))
        assert delivery.revoke({TP0}, OWNED, 1.0) == []
        assert "send_offsets" not in producer.calls
        assert producer.calls[-1] == "abort"
        assert producer.committed_offsets == []
        assert metrics.transactions.labels("committed")._value.get() == 0


class SlowCommits(FakeTransactionalProducer):
    """A commit that waits `seconds` on the clock: its coordinator moved meanwhile."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def commit_transaction(self, timeout: float) -> None:
        self.clock.t += self.seconds
        super().commit_transaction(timeout)


def renewable(
    first: FakeTransactionalProducer,
    clock: Clock,
    next_producer: Callable[[], FakeTransactionalProducer] = FakeTransactionalProducer,
    watchdog: Watchdog | None = None,
) -> tuple[ExactlyOnce, Any, list[FakeTransactionalProducer]]:
    """An ExactlyOnce on `first` that may renew its producer; the producers it built, in order."""
    built: list[FakeTransactionalProducer] = []

    def renew() -> Any:
        built.append(next_producer())
        return built[-1]

    outputs, _faults, warnings, metrics = parts(first, transactional=True)
    c, fake = consumer(), cast(Any, first)
    delivery = ExactlyOnce(
        lambda: c, fake, outputs, warnings, metrics, 0.1, clock, watchdog, renew=renew
    )
    return delivery, c, built


class TestProducerRenewal:
    """After a commit or abort that waited for a moved coordinator, a new producer (same
    transactional.id) takes over: the old one's coordinator lookup could hang (librdkafka #5511)."""

    def make(self, clock: Clock, commit_takes: float):
        first = SlowCommits(clock, commit_takes)
        delivery, _c, built = renewable(first, clock, lambda: SlowCommits(clock, commit_takes))
        return delivery, first, built

    def commit_one(self, delivery: ExactlyOnce, clock: Clock, offset: int) -> None:
        delivery.submit(decided(offset))
        clock.t += 1
        assert len(delivery.service(OWNED)) == 1

    def test_a_slow_commit_hands_the_next_transaction_to_a_new_producer(self) -> None:
        clock = Clock()
        delivery, first, built = self.make(clock, SLOW_CALL + 1)
        self.commit_one(delivery, clock, 0)
        assert len(built) == 1
        assert built[0].calls == ["init"]  # fences the old one: nothing of it can commit now
        self.commit_one(delivery, clock, 1)
        assert first.calls == ["init", "begin", "send_offsets", "commit"]
        assert built[1].calls == ["init"]
        assert built[0].calls == ["init", "begin", "send_offsets", "commit"]
        assert len(first.sent) == 1
        assert len(built[0].sent) == 1  # the second decision, through the new producer

    def test_a_quick_commit_keeps_the_producer(self) -> None:
        clock = Clock()
        delivery, _first, built = self.make(clock, SLOW_CALL / 2)
        self.commit_one(delivery, clock, 0)
        assert built == []

    def test_renewals_are_bounded_so_a_failing_cluster_is_not_hidden(self) -> None:
        clock = Clock()
        delivery, _first, built = self.make(clock, SLOW_CALL + 1)
        for offset in range(MAX_RENEWALS + 2):
            self.commit_one(delivery, clock, offset)
        assert len(built) == MAX_RENEWALS
        clock.t += RENEW_WINDOW
        self.commit_one(delivery, clock, 99)
        assert len(built) == MAX_RENEWALS + 1


class BlocksInSendOffsets(FakeTransactionalProducer):
    """librdkafka #5511: send_offsets_to_transaction waits for a coordinator that is gone."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def send_offsets_to_transaction(self, offsets, metadata, timeout: float) -> None:
        self.calls.append("send_offsets")
        self.release.wait(10)


class TestStuckSendOffsets:
    def test_a_stuck_call_is_left_behind_and_a_new_producer_takes_over(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No exit, no restart: the stuck producer is fenced by a new one (which aborts its
        transaction) and the consumer rewinds to where the transaction began."""
        monkeypatch.setattr(exactly_once, "SEND_OFFSETS_TIMEOUT", 0.05)
        monkeypatch.setattr(exactly_once, "STUCK_AFTER", 0.05)
        clock, stuck = Clock(), BlocksInSendOffsets()
        delivery, c, built = renewable(stuck, clock, watchdog=RecordingWatchdog())
        try:
            delivery.submit(decided(5, 6))
            clock.t += 1
            assert delivery.service(OWNED) == []
            assert stuck.calls == ["init", "begin", "send_offsets"]  # never committed
            assert [p.calls for p in built] == [["init"]]
            (seek,) = c.seek.call_args_list
            assert (seek.args[0].partition, seek.args[0].offset) == (TP0[1], 5)
            assert delivery.idle()
            delivery.submit(decided(5, 6))
            clock.t += 1
            assert len(delivery.service(OWNED)) == 1
            assert built[0].calls == ["init", "begin", "send_offsets", "commit"]
        finally:
            stuck.release.set()


class SlowFlush(FakeTransactionalProducer):
    """Outputs that waited `seconds` for their acknowledgements: a coordinator or leader moved."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def flush(self, timeout: float = 0) -> int:
        self.clock.t += self.seconds
        return super().flush(timeout)


class TestSlowFlush:
    def test_a_transaction_whose_outputs_waited_is_redone_on_a_new_producer(self) -> None:
        """send_offsets_to_transaction is never called on a producer that just waited for a
        moved coordinator: the new producer fences the old one (aborting its transaction) and
        the consumer rewinds to where the transaction began."""
        clock = Clock()
        slow = SlowFlush(clock, SLOW_CALL + 1)
        delivery, c, built = renewable(slow, clock)
        delivery.submit(decided(3, 4))
        clock.t += 1
        assert delivery.service(OWNED) == []
        assert slow.calls == ["init", "begin"]
        assert [p.calls for p in built] == [["init"]]
        (seek,) = c.seek.call_args_list
        assert (seek.args[0].partition, seek.args[0].offset) == (TP0[1], 3)
