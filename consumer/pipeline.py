"""decide_batch: raw records in, decisions or dead letters out, in input order. No I/O, no clock.

Per event the hot path decodes into a ListingRow (codec.read_listing), scans the policy into a
VerdictKey, looks up the verdict and its encoded part (built once per distinct key, see Verdicts)
and joins the decision's bytes from that part, the input's own encodings of the ids and event
time, and constants (header, decided_at, source topic and partition, the writer's provenance
trailer). No Listing,
Verdict, Decision or dict is built per event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from consumer.codec import AvroCodec
from consumer.codec.binary import encode_long
from consumer.codec.decision_writer import DecisionWriter, source_prefix
from consumer.errors import DecodeError
from consumer.events import LIVE, Provenance, RawRecord, Verdict
from consumer.policy import CompiledPolicy
from consumer.policy.evaluate import VerdictKey, scan, verdict_of

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
#: Distinct verdicts kept with their encoded part, and the bytes those parts may take. A policy
#: gives a few hundred at most (clusters x cross-border x matched rules); listings with unknown
#: currencies add one per currency, so the bound matters only against hostile input.
VERDICT_CACHE_ENTRIES: Final = 4096
VERDICT_CACHE_BYTES: Final = 4 * 1024 * 1024

Headers = tuple[tuple[str, bytes | None], ...]


class Decided(NamedTuple):
    """A decided record, encoded and ready to produce.

    `verdict` is shared by every decision with the same verdict under one policy (so counting
    by it is cheap); `value` is the ListingDecision; the Kafka key is `listing_id`.
    """

    record: RawRecord
    value: bytes
    headers: Headers
    verdict: Verdict
    listing_id: str
    event_time_ms: int


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


class _Entry(NamedTuple):
    verdict: Verdict
    part: bytes


class Verdicts:
    """Verdicts and their encoded parts by VerdictKey, for one policy and one decision framing.

    Bounded by VERDICT_CACHE_ENTRIES and VERDICT_CACHE_BYTES: when either would be passed the
    cache starts again (a pure function's memo: clearing it changes no answer).
    """

    __slots__ = ("_bytes", "entries", "policy", "writer")

    def __init__(self, writer: DecisionWriter, policy: CompiledPolicy) -> None:
        self.writer = writer
        self.policy = policy
        self.entries: dict[VerdictKey, _Entry] = {}
        self._bytes = 0

    @classmethod
    def of(
        cls, codec: AvroCodec, policy: CompiledPolicy, provenance: Provenance = LIVE
    ) -> Verdicts:
        return cls(codec.decision_writer(policy.policy_id, policy.version, provenance), policy)

    def add(self, key: VerdictKey) -> _Entry:
        """Build, encode and keep the verdict for `key`; DecodeError if it cannot be encoded."""
        verdict = verdict_of(key, self.policy)
        entry = _Entry(verdict, self.writer.verdict_part(verdict))
        # the key's own strings (cluster, currency) are shared with the verdict or tiny
        cost = 200 + 2 * len(entry.part)
        if len(self.entries) >= VERDICT_CACHE_ENTRIES or self._bytes + cost > VERDICT_CACHE_BYTES:
            self.entries.clear()
            self._bytes = 0
        self.entries[key] = entry
        self._bytes += cost
        return entry

    @property
    def size_bytes(self) -> int:
        """Estimated memory held (at most VERDICT_CACHE_BYTES)."""
        return self._bytes


class Decider:
    """The pure core the loop calls per batch; keeps the verdict cache between batches."""

    __slots__ = ("_verdicts", "codec", "policy")

    def __init__(
        self, codec: AvroCodec, policy: CompiledPolicy, provenance: Provenance = LIVE
    ) -> None:
        self.codec = codec
        self.policy = policy
        self._verdicts = Verdicts.of(codec, policy, provenance)

    def decide(self, records: Sequence[RawRecord], now_ms: int) -> list[Result]:
        """Rule windows are checked against the provenance's as-of time when it has one."""
        verdicts = self._verdicts
        as_of = verdicts.writer.provenance.as_of_ms
        return decide_batch(records, self.codec, self.policy, now_ms, verdicts, as_of)


def decide_batch(
    records: Sequence[RawRecord],
    codec: AvroCodec,
    policy: CompiledPolicy,
    now_ms: int,
    verdicts: Verdicts | None = None,
    as_of_ms: int | None = None,
) -> list[Result]:
    """Decode, evaluate and encode each record. A bad record becomes a DeadLettered, never an exception.

    `as_of_ms`: check rule windows against this time instead of each listing's event_time
    (replay); the as_of field written is the writer's provenance, so give both the same time.

    `verdicts` carries encoded verdicts from batch to batch (a fresh cache when None or when it
    belongs to another policy). SchemaSourceUnavailable (registry down) propagates: that is no
    fault of the record, so the caller retries the batch instead of dead-lettering it.
    """
    if verdicts is None or verdicts.policy is not policy:
        provenance = LIVE if verdicts is None else verdicts.writer.provenance
        verdicts = Verdicts.of(codec, policy, provenance)
    read = codec.read_listing
    entries = verdicts.entries
    add = verdicts.add
    writer = verdicts.writer
    header = writer.header
    decision_id = writer.decision_id_field
    trailer = writer.trailer
    decided_at = encode_long(now_ms)  # per batch: every decision of it carries this time
    version_headers: Headers = (
        (POLICY_HEADER, policy.policy_id.encode()),
        (POLICY_VERSION_HEADER, policy.version.encode()),
    )
    join = b"".join
    new = tuple.__new__
    topic: str | None = None
    partition = -1
    source = b""
    results: list[Result] = []
    append = results.append
    for record in records:
        try:
            row, event_id, event_time, ids = read(record.value)
        except DecodeError as exc:
            append(DeadLettered(record, exc.code, exc.message))
            continue
        key = scan(row, policy, as_of_ms)
        entry = entries.get(key)
        if entry is None:
            try:
                entry = add(key)
            except DecodeError as exc:
                append(DeadLettered(record, "encode_failed", exc.message))
                continue
        if record.partition != partition or record.topic != topic:
            topic, partition = record.topic, record.partition
            source = source_prefix(topic, partition)
        value = join(
            (
                header,
                decision_id(row.event_id),
                event_id,
                ids,
                entry.part,
                event_time,
                decided_at,
                source,
                encode_long(record.offset),
                trailer,
            )
        )
        trace = record.headers
        if not trace:
            headers = version_headers
        elif len(trace) == 1 and trace[0][0] in TRACE_HEADERS:
            headers = (trace[0], *version_headers)
        else:
            headers = (
                *(h for h in trace if h[0].lower() in TRACE_HEADERS),
                *version_headers,
            )
        append(
            new(Decided, (record, value, headers, entry.verdict, row.listing_id, row.event_time_ms))
        )
    return results


def tally(results: Iterable[Result]) -> Tally:
    """Count outcomes by the low-cardinality labels the metrics use."""
    out = Tally()
    times = out.event_times_ms
    # Decisions share their verdict objects: count per object, then expand once per verdict.
    per_verdict: Counter[int] = Counter()
    verdicts: dict[int, Verdict] = {}
    for result in results:
        if isinstance(result, Decided):
            v = result.verdict
            per_verdict[id(v)] += 1
            verdicts[id(v)] = v
            times.append(result.event_time_ms)
        else:
            out.dead_letters[result.code] += 1
    for key, n in per_verdict.items():
        v = verdicts[key]
        out.decisions[(v.outcome.lower(), v.cluster or "none")] += n
        for reason in v.reasons:
            out.rejections[(reason.code, reason.rule_id)] += n
    return out
