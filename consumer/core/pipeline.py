"""decide_batch: raw records in, decisions or dead letters out, in input order. No I/O, no clock.

Per event the hot path decodes into a ListingRow (codec.read_listing), scans the policy into a
VerdictKey (a policy set's: the tuple of its layers' keys), looks up the verdict and its encoded
part (built once per distinct key, see Verdicts) and joins the decision's bytes from that part
(and the verdict's exemptions field, the last), the input's own encodings of the ids and event
time, and constants (header, decided_at, source topic and partition, the writer's provenance
trailer). No Listing, Verdict, Decision or dict is built per event.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from consumer.codec import AvroCodec
from consumer.codec.binary import encode_long
from consumer.codec.decision_writer import DecisionWriter, source_prefix
from consumer.core.judgement import Judgement, VerdictCache, changed, deciding_rules, judgement
from consumer.core.records import LIVE, Headers, Provenance, RawRecord, Verdict
from consumer.errors import DecodeError
from consumer.policy.enforced import Enforced

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
#: On a shadow policy's decisions (shadow_topic): they are what a candidate would have decided.
SHADOW_HEADER = "ic.shadow"
#: The bytes the verdicts' encoded parts may take (their number is bounded by
#: judgement.VERDICT_CACHE_ENTRIES); the bound matters only against hostile input.
VERDICT_CACHE_BYTES: Final = 4 * 1024 * 1024


class Shadowed(NamedTuple):
    """The shadow policy's verdict on a decided listing; `value` is its decision when produced."""

    verdict: Verdict
    value: bytes | None
    headers: Headers


class Decided(NamedTuple):
    """A decided record, encoded and ready to produce.

    `verdict` is shared by every decision with the same verdict under one policy (so counting
    by it is cheap); `value` is the ListingDecision; the Kafka key is `listing_id`. `shadow` is
    the shadow policy's verdict when one runs.
    """

    record: RawRecord
    value: bytes
    headers: Headers
    verdict: Verdict
    listing_id: str
    event_time_ms: int
    shadow: Shadowed | None = None


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
    #: (reason, rule_id) of REJECTED decisions only; a REVIEW decision's reasons go to `reviews`
    rejections: Counter[tuple[str, str]] = field(default_factory=Counter)
    reviews: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, rule_id)
    dead_letters: Counter[str] = field(default_factory=Counter)  # error code
    event_times_ms: list[int] = field(default_factory=list)
    shadow_decisions: Counter[tuple[str, str]] = field(
        default_factory=Counter
    )  # (outcome, cluster)
    #: (live outcome, shadow outcome, rule that makes the difference): one per deciding rule
    disagreements: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.decisions.update(other.decisions)
        self.rejections.update(other.rejections)
        self.reviews.update(other.reviews)
        self.dead_letters.update(other.dead_letters)
        self.event_times_ms.extend(other.event_times_ms)
        self.shadow_decisions.update(other.shadow_decisions)
        self.disagreements.update(other.disagreements)

    @property
    def total(self) -> int:
        return sum(self.decisions.values()) + sum(self.dead_letters.values())


class _Entry(NamedTuple):
    verdict: Verdict
    part: bytes
    #: The exemptions field, written after the provenance trailer.
    tail: bytes
    #: What the decision says, for comparing a live and a shadow verdict (judgement.judgement).
    judgement: Judgement
    #: This verdict as a shadow verdict with nothing to produce: one shared object, no allocation
    #: per event in the (usual) metrics-only shadow mode.
    unproduced: Shadowed


class Verdicts:
    """Verdicts and their encoded parts by VerdictKey, for one policy and one decision framing.

    A judgement.VerdictCache, bounded in entries and by VERDICT_CACHE_BYTES.
    """

    __slots__ = ("entries", "policy", "writer")

    def __init__(self, writer: DecisionWriter, policy: Enforced) -> None:
        self.writer = writer
        self.policy = policy
        self.entries: VerdictCache[Hashable, _Entry] = VerdictCache(VERDICT_CACHE_BYTES)

    @classmethod
    def of(cls, codec: AvroCodec, policy: Enforced, provenance: Provenance = LIVE) -> Verdicts:
        return cls(codec.decision_writer(policy.policy_id, policy.version, provenance), policy)

    def add(self, key: Hashable) -> _Entry:
        """Build, encode and keep the verdict for `key`; DecodeError if it cannot be encoded."""
        verdict = self.policy.verdict_of(key)
        part = self.writer.verdict_part(verdict)
        tail = self.writer.exemptions_part(verdict)
        entry = _Entry(verdict, part, tail, judgement(verdict), Shadowed(verdict, None, ()))
        # the key's own strings (cluster, currency) are shared with the verdict or tiny
        return self.entries.put(key, entry, 200 + 2 * (len(part) + len(tail)))

    @property
    def size_bytes(self) -> int:
        """Estimated memory held (at most VERDICT_CACHE_BYTES)."""
        return self.entries.size_bytes


#: Which shadow decisions become records on shadow_topic: none, all, or only those that differ.
ShadowOutput = Literal["none", "all", "changes"]


class Decider:
    """The pure core the loop calls per batch; keeps the verdict caches between batches.

    With a `shadow` policy every decided listing is also evaluated by it (Decided.shadow); the
    shadow never changes the live decision. A Decider is immutable in its policies: a reload
    builds a new one with `replaced`, so no batch is decided by a mix of versions.
    """

    __slots__ = ("_shadow", "_shadow_output", "_verdicts", "codec", "policy")

    def __init__(
        self,
        codec: AvroCodec,
        policy: Enforced,
        provenance: Provenance = LIVE,
        *,
        shadow: Enforced | None = None,
        shadow_output: ShadowOutput = "none",
    ) -> None:
        self.codec = codec
        self.policy = policy
        self._verdicts = Verdicts.of(codec, policy, provenance)
        self._shadow_output: ShadowOutput = shadow_output
        self._shadow = None
        if shadow is not None:
            shadowing = dataclasses.replace(provenance, mode="SHADOW")
            self._shadow = Verdicts.of(codec, shadow, shadowing)

    @property
    def shadow_policy(self) -> Enforced | None:
        return None if self._shadow is None else self._shadow.policy

    def replaced(self, policy: Enforced, shadow: Enforced | None) -> Decider:
        """The same decider with other policies (fresh caches for the ones that changed)."""
        same_live = policy is self.policy
        same_shadow = shadow is self.shadow_policy
        if same_live and same_shadow:
            return self
        out = Decider(
            self.codec,
            policy,
            self._verdicts.writer.provenance,
            shadow=shadow,
            shadow_output=self._shadow_output,
        )
        if same_live:
            out._verdicts = self._verdicts
        if same_shadow:
            out._shadow = self._shadow
        return out

    def decide(self, records: Sequence[RawRecord], now_ms: int) -> list[Result]:
        """Rule windows are checked against the provenance's as-of time when it has one."""
        verdicts = self._verdicts
        as_of = verdicts.writer.provenance.as_of_ms
        return decide_batch(
            records,
            self.codec,
            self.policy,
            now_ms,
            verdicts,
            as_of,
            shadow=self._shadow,
            shadow_output=self._shadow_output,
        )


def decide_batch(
    records: Sequence[RawRecord],
    codec: AvroCodec,
    policy: Enforced,
    now_ms: int,
    verdicts: Verdicts | None = None,
    as_of_ms: int | None = None,
    *,
    shadow: Verdicts | None = None,
    shadow_output: ShadowOutput = "none",
) -> list[Result]:
    """Decode, evaluate and encode each record. A bad record becomes a DeadLettered, never an exception.

    `as_of_ms`: check rule windows against this time instead of each listing's event_time
    (replay); the as_of field written is the writer's provenance, so give both the same time.

    `verdicts` carries encoded verdicts from batch to batch (a fresh cache when None or when it
    belongs to another policy). SchemaSourceUnavailable (registry down) propagates: that is no
    fault of the record, so the caller retries the batch instead of dead-lettering it.

    `shadow`: a second policy's verdict cache; each decided listing gets its verdict too, and
    its encoded decision when `shadow_output` is "all", or "changes" and the decision changed
    (judgement.changed, compared on the judgements computed once per verdict).
    """
    if verdicts is None or verdicts.policy is not policy:
        provenance = LIVE if verdicts is None else verdicts.writer.provenance
        verdicts = Verdicts.of(codec, policy, provenance)
    read = codec.read_listing
    scan = policy.scan  # bound once per batch: a CompiledPolicy's or a policy set's
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
    if shadow is not None:
        spolicy = shadow.policy
        sscan = spolicy.scan
        sentries = shadow.entries
        sadd = shadow.add
        swriter = shadow.writer
        sdecision_id = swriter.decision_id_field
        sframe = (swriter.header, swriter.trailer)
        shadow_headers: Headers = (
            (POLICY_HEADER, spolicy.policy_id.encode()),
            (POLICY_VERSION_HEADER, spolicy.version.encode()),
            (SHADOW_HEADER, b"true"),
        )
        produce_all = shadow_output == "all"
        produce_changes = shadow_output == "changes"
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
        key = scan(row, as_of_ms)
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
        offset = encode_long(record.offset)
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
                offset,
                trailer,
                entry.tail,
            )
        )
        trace = record.headers
        if not trace:
            kept: Headers = ()
            headers = version_headers
        elif len(trace) == 1 and trace[0][0] in TRACE_HEADERS:
            kept = trace
            headers = (trace[0], *version_headers)
        else:
            kept = tuple(h for h in trace if h[0].lower() in TRACE_HEADERS)
            headers = (*kept, *version_headers)
        shadowed = None
        if shadow is not None:
            skey = sscan(row, as_of_ms)
            sentry = sentries.get(skey)
            if sentry is None:
                try:
                    sentry = sadd(skey)
                except DecodeError:
                    sentry = None  # the live decision stands; this shadow verdict is not encodable
            if sentry is not None and (
                produce_all or (produce_changes and sentry.judgement != entry.judgement)
            ):
                svalue = join(
                    (
                        sframe[0],
                        sdecision_id(row.event_id),
                        event_id,
                        ids,
                        sentry.part,
                        event_time,
                        decided_at,
                        source,
                        offset,
                        sframe[1],
                        sentry.tail,
                    )
                )
                shadowed = new(Shadowed, (sentry.verdict, svalue, (*kept, *shadow_headers)))
            elif sentry is not None:
                shadowed = sentry.unproduced
        append(
            new(
                Decided,
                (
                    record,
                    value,
                    headers,
                    entry.verdict,
                    row.listing_id,
                    row.event_time_ms,
                    shadowed,
                ),
            )
        )
    return results


def tally(results: Iterable[Result]) -> Tally:
    """Count outcomes by the low-cardinality labels the metrics use.

    A shadow verdict that changes the decision (judgement.changed) counts once under each rule
    that makes the difference (judgement.deciding_rules), as `diff` counts it by rule.
    """
    out = Tally()
    times = out.event_times_ms
    # Decisions share their verdict objects: count per object, then expand once per verdict.
    per_verdict: Counter[int] = Counter()
    verdicts: dict[int, Verdict] = {}
    pairs: Counter[tuple[int, int]] = Counter()
    for result in results:
        if isinstance(result, Decided):
            v = result.verdict
            per_verdict[id(v)] += 1
            verdicts[id(v)] = v
            times.append(result.event_time_ms)
            shadowed = result.shadow
            if shadowed is not None:
                sv = shadowed.verdict
                pairs[(id(v), id(sv))] += 1
                verdicts[id(sv)] = sv
        else:
            out.dead_letters[result.code] += 1
    for key, n in per_verdict.items():
        v = verdicts[key]
        out.decisions[(v.outcome.lower(), v.cluster or "none")] += n
        # A verdict's reasons are the rules that give its outcome: review rules for REVIEW.
        reasons = out.reviews if v.outcome == "REVIEW" else out.rejections
        for reason in v.reasons:
            reasons[(reason.code, reason.rule_id)] += n
    for (live_key, shadow_key), n in pairs.items():
        live, shadowed_verdict = verdicts[live_key], verdicts[shadow_key]
        outcome = shadowed_verdict.outcome.lower()
        out.shadow_decisions[(outcome, shadowed_verdict.cluster or "none")] += n
        if changed(live, shadowed_verdict):
            live_outcome = live.outcome.lower()
            for rule in deciding_rules(live, shadowed_verdict):
                out.disagreements[(live_outcome, outcome, rule)] += n
    return out
