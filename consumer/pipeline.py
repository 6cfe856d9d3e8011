"""decide_batch: raw records in, decisions or dead letters out, in input order. No I/O, no clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from consumer.codec import AvroCodec
from consumer.errors import DecodeError
from consumer.events import Decision, RawRecord, SourceRef, make_decision
from consumer.policy import CompiledPolicy, evaluate

#: Trace-context headers copied from a listing to its decision (W3C, B3, and common request ids).
TRACE_HEADERS = frozenset(
    {
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-request-id",
        "x-correlation-id",
    }
)
POLICY_HEADER = "ic.policy"
POLICY_VERSION_HEADER = "ic.policy.version"


@dataclass(frozen=True, slots=True)
class Decided:
    """A decided record, encoded and ready to produce."""

    record: RawRecord
    decision: Decision
    value: bytes
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """A record that could not be decided; `code` is stable (metric label, DLQ header)."""

    record: RawRecord
    code: str
    message: str


Result = Decided | DeadLettered


@dataclass(slots=True)
class Tally:
    """What a group of results adds to the counters, aggregated so metrics cost per batch, not per event."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (outcome, cluster)
    rejections: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, rule_id)
    dead_letters: Counter[str] = field(default_factory=Counter)  # error code
    event_times_ms: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.decisions.update(other.decisions)
        self.rejections.update(other.rejections)
        self.dead_letters.update(other.dead_letters)
        self.event_times_ms.extend(other.event_times_ms)

    @property
    def total(self) -> int:
        return sum(self.decisions.values()) + sum(self.dead_letters.values())


@dataclass(frozen=True, slots=True)
class Decider:
    """The pure core the loop calls per batch."""

    codec: AvroCodec
    policy: CompiledPolicy

    def decide(self, records: Sequence[RawRecord], now_ms: int) -> list[Result]:
        return decide_batch(records, self.codec, self.policy, now_ms)


def decide_batch(
    records: Sequence[RawRecord], codec: AvroCodec, policy: CompiledPolicy, now_ms: int
) -> list[Result]:
    """Decode, evaluate and encode each record. A bad record becomes a DeadLettered, never an exception.

    SchemaSourceUnavailable (registry down) propagates: that is no fault of the record, so the
    caller retries the batch instead of dead-lettering it.
    """
    decode = codec.decode_listing
    encode = codec.encode_decision
    policy_id = policy.policy_id
    version = policy.version
    version_headers: tuple[tuple[str, bytes | None], ...] = (
        (POLICY_HEADER, policy_id.encode()),
        (POLICY_VERSION_HEADER, version.encode()),
    )
    results: list[Result] = []
    append = results.append
    for record in records:
        try:
            listing = decode(record.value)
        except DecodeError as exc:
            append(DeadLettered(record, exc.code, exc.message))
            continue
        decision = make_decision(
            listing,
            evaluate(listing, policy),
            policy=policy_id,
            policy_version=version,
            decided_at_ms=now_ms,
            source=SourceRef(record.topic, record.partition, record.offset),
        )
        try:
            value = encode(decision)
        except DecodeError as exc:
            append(DeadLettered(record, "encode_failed", exc.message))
            continue
        if record.headers:
            headers = (
                tuple(h for h in record.headers if h[0].lower() in TRACE_HEADERS) + version_headers
            )
        else:
            headers = version_headers
        append(Decided(record, decision, value, headers))
    return results


def tally(results: Iterable[Result]) -> Tally:
    """Count outcomes by the low-cardinality labels the metrics use."""
    out = Tally()
    decisions = out.decisions
    rejections = out.rejections
    times = out.event_times_ms
    for result in results:
        if isinstance(result, Decided):
            d = result.decision
            decisions[(d.outcome.lower(), d.cluster or "none")] += 1
            for reason in d.reasons:
                rejections[(reason.code, reason.rule_id)] += 1
            times.append(d.event_time_ms)
        else:
            out.dead_letters[result.code] += 1
    return out
