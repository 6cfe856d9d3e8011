"""Exactly-once: decisions, dead letters and input offsets of many batches commit in one Kafka
transaction (KIP-98), the offsets with the consumer's group metadata so a zombie is fenced
(KIP-447). A read_committed reader of the outputs sees each input's output exactly once.

The loop follows confluent-kafka-python's examples/eos-transactions.py: begin, produce, send the
offsets, commit; an abortable error aborts and rewinds the consumer to the committed offsets.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Set

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from consumer.core.pipeline import DeadLettered, Result, Tally, tally
from consumer.core.records import PartitionKey
from consumer.delivery import Span, by_partition
from consumer.delivery.ledger import Chunk
from consumer.delivery.outputs import Outputs
from consumer.delivery.watchdog import Watchdog
from consumer.errors import KafkaClientError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.clients import ProduceRefused, flush_at_exit
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings

log = logging.getLogger(__name__)

#: Seconds allowed for each transactional call before it counts as failed (then it is retried
#: if retriable, else the transaction is aborted).
CALL_TIMEOUT = 30.0
#: How far past its own timeout a call may run before the watchdog ends the process.
OVERRUN_GRACE = 30.0
#: How long a retriable transactional call (init, begin, abort) is repeated before giving up.
RETRY_FOR = 120.0
#: send_offsets_to_transaction's own timeout. A healthy call takes milliseconds; when the group
#: coordinator moves or is loading, librdkafka retries within this bound and then fails the call
#: as abortable, and the transaction is aborted and redone (a tenth of a second of work).
SEND_OFFSETS_TIMEOUT = 5.0
#: How far past it the watchdog lets send_offsets_to_transaction run. The idle-connection limit
#: (client_conf.EOS_CONNECTIONS_MAX_IDLE_MS) usually frees librdkafka's coordinator lookup within
#: ~6 s of a broker restart, but not always (3 of 8 recovery-test runs); a call still blocked 2 s
#: past its timeout is stuck in a way nothing in this process ends, and exiting at 7 s keeps the
#: whole stall, restart included, under 15 s (a 60 s bound let partitions stand still 52-63 s).
SEND_OFFSETS_GRACE = 2.0
#: How far past its timeout send_offsets_to_transaction may still be running before the worker
#: gives its producer up in-process (below the watchdog's SEND_OFFSETS_GRACE): the call runs on a
#: thread of its own, and a new producer with the same transactional.id fences the stuck one and
#: aborts its transaction; the consumer rewinds to the last commit. About 0.3 s instead of the
#: watchdog's exit and a restart. Bounded by MAX_RENEWALS like any renewal; past that, the call
#: runs as before and the watchdog is the last resort.
STUCK_AFTER = 1.0
#: A flush, commit or abort that took longer than this waited for a coordinator that moved (a
#: broker lost or restarting). librdkafka can then keep the dead broker as the group coordinator of
#: the next send_offsets_to_transaction, which hangs (#5511): on a cluster, after the node
#: coordinating the transactions and the group was SIGKILLed, a worker's commit waited 10 s for
#: the move and its next send_offsets hung until the watchdog (15.1 s of stall). So after such a
#: call the producer is replaced by a new one (same transactional.id, so init_transactions fences
#: the old one), whose coordinator lookups start afresh: about 0.1 s. After a slow commit or abort
#: that is between transactions; after a slow flush the transaction is given up with the old
#: producer (fenced, so aborted) and redone from the last commit, before send_offsets can hang.
SLOW_CALL = 2.0
#: Renewals allowed within RENEW_WINDOW seconds; past that the coordinators are not moving but
#: failing, and a renewal would only hide it.
MAX_RENEWALS = 3
RENEW_WINDOW = 300.0


class ExactlyOnce:
    """The Delivery for `processing_guarantee: exactly-once`."""

    def __init__(
        self,
        consumer: Callable[[], Consumer],
        producer: Producer,
        outputs: Outputs,
        warnings: Warnings,
        metrics: Metrics,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
        watchdog: Watchdog | None = None,
        transactional_id: str | None = None,
        renew: Callable[[], Producer] | None = None,
    ) -> None:
        """`renew` builds a producer like `producer` (same transactional.id): see SLOW_CALL."""
        self._watchdog = watchdog or Watchdog()
        self._renew_with = renew
        self._renewed_at: list[float] = []
        self._transactional_id = transactional_id  # named when its ACL is missing
        #: The current consumer: a new one after a fenced membership (kafka/membership.py).
        self._consumer = consumer
        self._producer = producer
        self._outputs = outputs
        self._warnings = warnings
        self._metrics = metrics
        self._interval = interval
        self._monotonic = monotonic
        self._tallies: list[Tally] = []
        self._produced = 0  # outputs in the open transaction
        #: Next offset to commit, per partition, in this transaction.
        self._next: dict[PartitionKey, int] = {}
        #: Where each partition's part of it began: the rewind point.
        self._first: dict[PartitionKey, int] = {}
        self._opened_at: float | None = None
        #: Why the open transaction must be aborted (produce() refused to add to it), if it must.
        self._doomed: str | None = None
        #: Records the broker refused for reasons of their own: dead-lettered when they come back.
        self._refused: dict[tuple[str, int, int], tuple[str, str]] = {}
        # Fences any earlier producer with our transactional.id and aborts its open transaction.
        self._call(producer.init_transactions, "init_transactions")

    def submit(
        self, results: Sequence[Result], consumed: Mapping[PartitionKey, Span] | None = None
    ) -> None:
        if self._opened_at is None:
            self._call(lambda _timeout: self._producer.begin_transaction(), "begin_transaction")
            self._opened_at = self._monotonic()
        if self._refused:
            results = [self._instead(r) for r in results]
        for (topic, partition), (first, last, group) in by_partition(results, consumed).items():
            # Recorded before sending: an abort rewinds to `first` whatever happens next.
            self._first.setdefault((topic, partition), first)
            self._next[(topic, partition)] = last + 1
            if self._doomed is not None:
                continue  # the transaction is aborted at the next service(): nothing more in it
            count = self._outputs.count(group)
            chunk = Chunk(topic, partition, first, last, count, tally(group))
            if group:
                try:
                    self._outputs.send(group, chunk)
                except ProduceRefused as exc:
                    # Either way nothing of this transaction may commit: its offsets now cover
                    # this chunk, whose output was refused (closing the consumer revokes the
                    # partitions, and revoke commits an open transaction unless it is doomed).
                    self._doomed = str(exc)
                    if not exc.abortable:
                        raise
                    continue
            self._tallies.append(chunk.payload)
            self._produced += count

    def service(self, owned: Set[PartitionKey]) -> list[Tally]:
        self._outputs.poll(0)
        if self._doomed is not None:
            self._abort(owned, self._doomed)
            return []
        if self._opened_at is None or self._monotonic() - self._opened_at < self._interval:
            return []
        return self._commit(owned)

    def in_flight(self) -> int:
        return self._produced

    def idle(self) -> bool:
        return self._opened_at is None

    def revoke(
        self, partitions: Set[PartitionKey], owned: Set[PartitionKey], timeout: float
    ) -> list[Tally]:
        # The whole transaction commits before the partitions go: its offsets are still ours.
        return self._commit(owned) if self._opened_at is not None else []

    def lose(self, partitions: Set[PartitionKey], owned: Set[PartitionKey]) -> None:
        # Offsets of a lost partition can no longer be committed: the open transaction goes.
        if self._opened_at is not None:
            self._abort(owned - set(partitions), "partitions lost")

    def shutdown(self, owned: Set[PartitionKey], timeout: float) -> list[Tally]:
        return self._commit(owned) if self._opened_at is not None else []

    def close(self) -> None:
        flush_at_exit(self._producer, 5)

    def _instead(self, result: Result) -> Result:
        r = result.record
        found = self._refused.pop((r.topic, r.partition, r.offset), None)
        return result if found is None else DeadLettered(r, found[0], found[1])

    def _commit(self, owned: Set[PartitionKey]) -> list[Tally]:
        """Commit the open transaction with its offsets; on an abortable error, abort and rewind."""
        started = self._monotonic()
        offsets = [
            TopicPartition(t, p, o) for (t, p), o in sorted(self._next.items()) if (t, p) in owned
        ]
        if self._doomed is not None:
            self._abort(owned, self._doomed)
            return []
        with self._watchdog.guard("flush", CALL_TIMEOUT + OVERRUN_GRACE):
            self._producer.flush(CALL_TIMEOUT)  # every delivery report of the transaction is in
        if self._outputs.retrying:
            self._abort(owned, "an output was refused or not delivered")
            return []
        if (took := self._monotonic() - started) > SLOW_CALL and self._may_renew():
            # The outputs waited for a moved coordinator or leader: send_offsets_to_transaction
            # on this producer is where #5511 would hang next. Redo the transaction (its part of
            # a second of input) on a new producer instead.
            self._give_up_producer(owned, f"the flush took {took:.1f}s: a coordinator moved")
            return []
        metadata = self._consumer().consumer_group_metadata()
        steps: list[tuple[str, Callable[[float], object], float, float]] = [
            ("commit_transaction", self._producer.commit_transaction, CALL_TIMEOUT, OVERRUN_GRACE)
        ]
        if offsets:
            send: Callable[[float], object] = functools.partial(
                self._producer.send_offsets_to_transaction, offsets, metadata
            )
            if self._may_renew():
                send = _on_own_thread(send, STUCK_AFTER)
            name = "send_offsets_to_transaction"
            steps.insert(0, (name, send, SEND_OFFSETS_TIMEOUT, SEND_OFFSETS_GRACE))
        for name, step, timeout, grace in steps:
            try:
                self._call(step, name, timeout, grace)
            except _Stuck as stuck:
                self._give_up_producer(owned, f"{name} still blocked {stuck.seconds:.0f}s in")
                return []
            except KafkaClientError as exc:
                cause = exc.__cause__
                error = cause.args[0] if isinstance(cause, KafkaException) else None
                if error is not None and error.txn_requires_abort():
                    self._abort(owned, kafka_errors.describe(error))
                    return []
                raise
        done = self._tallies
        self._reset()
        self._metrics.transactions.labels("committed").inc()
        took = self._monotonic() - started
        self._metrics.transaction_duration.observe(took)
        self._renew_after(took, "commit")
        return done

    def _reset(self) -> None:
        self._tallies = []
        self._produced = 0
        self._next.clear()
        self._first.clear()
        self._opened_at = None
        self._doomed = None

    def _abort(self, owned: Set[PartitionKey], why: str) -> None:
        """Abort the open transaction and rewind each owned partition to where its part began.

        That point is the offset the previous transaction committed, known here without asking
        the broker (which may be the reason for the abort).
        """
        rewind = {key: offset for key, offset in self._first.items() if key in owned}
        started = self._monotonic()
        self._call(self._producer.abort_transaction, "abort_transaction")
        self._producer.flush(
            CALL_TIMEOUT
        )  # serve the purged messages' reports now, then forget them
        for record, code, message in self._outputs.take_refused():
            self._refused[(record.topic, record.partition, record.offset)] = (code, message)
        self._reset()
        self._metrics.transactions.labels("aborted").inc()
        self._warnings.warn("transaction aborted, rewinding to the last commit", why)
        for (topic, partition), offset in sorted(rewind.items()):
            self._consumer().seek(TopicPartition(topic, partition, offset))
        self._renew_after(self._monotonic() - started, "abort")

    def _give_up_producer(self, owned: Set[PartitionKey], why: str) -> None:
        """The stuck call's thread keeps the old producer (freed if the call ever returns); a new
        one fences it, which aborts the open transaction; then rewind like _abort."""
        rewind = {key: offset for key, offset in self._first.items() if key in owned}
        self._outputs.take_refused()  # the abandoned producer's; its transaction is aborted
        self._reset()
        self._metrics.transactions.labels("aborted").inc()
        self._renew(why)
        for (topic, partition), offset in sorted(rewind.items()):
            self._consumer().seek(TopicPartition(topic, partition, offset))

    def _renew_after(self, took: float, what: str) -> None:
        """Replace the producer after a call that waited for a moved coordinator (SLOW_CALL)."""
        if took > SLOW_CALL and self._may_renew():
            self._renew(f"the {what} took {took:.1f}s: a coordinator moved")

    def _may_renew(self) -> bool:
        if self._renew_with is None:
            return False
        now = self._monotonic()
        self._renewed_at = [t for t in self._renewed_at if now - t < RENEW_WINDOW]
        return len(self._renewed_at) < MAX_RENEWALS

    def _renew(self, why: str) -> None:
        """A new producer, same transactional.id: its init_transactions fences the old one."""
        assert self._renew_with is not None  # _may_renew said so
        self._renewed_at.append(self._monotonic())
        log.warning("transactional producer renewed", extra={"detail": why})
        old, self._producer = self._producer, self._renew_with()
        self._outputs.use(self._producer)
        retire(old)
        del old
        self._call(self._producer.init_transactions, "init_transactions")

    def _call(
        self,
        call: Callable[[float], object],
        name: str,
        timeout: float = CALL_TIMEOUT,
        grace: float = OVERRUN_GRACE,
    ) -> None:
        """A transactional call, repeated while its error is retriable (a broker restarting);
        fencing and fatal errors stop the worker with one line. The watchdog ends the process
        when one call runs `grace` past its `timeout`."""
        started = self._monotonic()
        deadline = started + RETRY_FOR
        while True:
            try:
                with self._watchdog.guard(name, timeout + grace):
                    call(timeout)
                if (took := self._monotonic() - started) > SLOW_CALL:
                    # Where a broker failure's stall goes: waiting for which coordinator.
                    self._warnings.warn(f"{name} was slow", f"{took:.1f}s")
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                # An abortable error may also say "retriable": the transaction must go first.
                abortable = error.txn_requires_abort()
                if abortable or not error.retriable() or self._monotonic() >= deadline:
                    detail = _fatal(error, self._transactional_id)
                    raise KafkaClientError(f"{name}: {detail}") from exc
                self._warnings.warn(f"{name} failed, retrying", kafka_errors.describe(error))


class _Stuck(Exception):
    """A call still running `seconds` after it was started, on the thread it was left on."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"still running after {seconds:.1f}s")
        self.seconds = seconds


def _on_own_thread(call: Callable[[float], object], past: float) -> Callable[[float], object]:
    """`call(timeout)` on a daemon thread: its result or exception, or _Stuck when it has not
    returned `past` seconds after its timeout (confluent-kafka releases the GIL while it waits)."""

    def bounded(timeout: float) -> object:
        outcome: list[object] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(call(timeout))
            except Exception as exc:  # noqa: BLE001 - re-raised on the caller's thread
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name="transactional-call", daemon=True).start()
        if not done.wait(timeout + past):
            raise _Stuck(timeout + past)
        if failure:
            raise failure[0]
        return outcome[0] if outcome else None

    return bounded


def retire(producer: Producer) -> None:
    """Let a replaced producer go on a thread of its own: librdkafka's destroy may wait for the
    very coordinator request it was replaced for. A stuck call's thread still holds it: then it
    is destroyed when that call returns, if ever."""
    holder = [producer]
    del producer
    threading.Thread(target=holder.clear, name="retired-producer", daemon=True).start()


def _fatal(error: KafkaError, transactional_id: str | None) -> str:
    if error.code() in kafka_errors.FENCING:
        return f"fenced by a newer instance of this worker: {kafka_errors.describe(error)}"
    missing = kafka_errors.not_authorized(error, transactional_id=transactional_id)
    return missing or kafka_errors.describe(error)
