"""The hand-written hot path against its references: fastavro for bytes, the typed chain for meaning.

- DecisionWriter.encode: fastavro decodes its bytes to the same record, and fastavro's own
  encoding is the same bytes, for arbitrary decisions.
- decide_batch: each value is what make_decision(listing, evaluate(...)) encoded by fastavro
  would be, for arbitrary listings under every test policy; tally counts the same.
- read_listing: on valid and mutated values it returns what fastavro (strict schema) reads, or
  fails the same way.
- scan + verdict_of: equal to the evaluation loop as it was before the split (kept below).
"""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO
from typing import Any, cast

import pytest
from fastavro import schemaless_reader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.codec import LISTING_CREATED, AvroCodec, BundledSchemas
from consumer.codec.avro import _read_error
from consumer.codec.limits import listing_too_large
from consumer.codec.listing_reader import CANONICAL_FINGERPRINT
from consumer.codec.records import row_from_record
from consumer.codec.resolution import strict_schema, strip_logical_types
from consumer.core.judgement import VERDICT_CACHE_ENTRIES
from consumer.core.pipeline import (
    DeadLettered,
    Decided,
    Verdicts,
    decide_batch,
    tally,
)
from consumer.core.records import (
    LIVE,
    Decision,
    Exemption,
    FxUsed,
    Listing,
    Provenance,
    RawRecord,
    Reason,
    SourceRef,
    Verdict,
    make_decision,
)
from consumer.errors import DecodeError
from consumer.policy import CompiledPolicy, evaluate
from consumer.policy.compile import CompiledRule
from consumer.policy.evaluate import is_cross_border, rule_matches, unknown_currency_reason
from tests.unit.codec.test_properties import decisions
from tests.unit.codec.test_properties import listings as any_listings
from tests.unit.listings import make_listing
from tests.unit.policy.test_properties import POLICIES, policy_names
from tests.unit.policy.test_properties import listings as policy_listings

CODEC = AvroCodec()
BUNDLED = BundledSchemas.load()
_STRICT = strict_schema(strip_logical_types(BUNDLED[LISTING_CREATED].parsed))
NOW_MS = 1_700_000_000_123


def _reference_evaluate(listing: Listing, compiled: CompiledPolicy) -> Verdict:
    """evaluate() as it was before scan/verdict_of (commit cbc865e), the spec of the split."""
    cross_border = is_cross_border(listing)
    cluster = compiled.taxonomy.cluster_of(listing.category_id, listing.category_path)
    scope = compiled.scope_sites
    if scope is not None and listing.site not in scope:
        return Verdict("APPROVED", (), (), cluster, cross_border)
    now = listing.event_time_ms
    matched: list[str] = []
    reasons: list[Reason] = []
    priced = False
    allowed = False
    rule: CompiledRule
    for rule in compiled.rules:
        if not rule.from_ms <= now < rule.until_ms:
            continue
        outcome = rule_matches(rule, listing, cross_border, cluster)
        if outcome is False:
            continue
        if rule.allow:
            if outcome is True:
                allowed = True
                matched.append(rule.id)
            continue
        matched.append(rule.id)
        priced = priced or rule.when.priced
        reason = rule.reason
        if outcome is None or reason is None:
            reason = unknown_currency_reason(rule, listing.price.currency, compiled.model.languages)
        reasons.append(reason)
    if allowed:
        # issue 15: the decision records each matched reject rule exempted by each allow rule
        allows = [r.id for r in compiled.rules if r.allow and r.id in matched]
        exempted = tuple(
            Exemption(r.rule_id, a) for r in reasons for a in allows
        )  # one reason per matched reject rule, in file order
        return Verdict("APPROVED", (), tuple(matched), cluster, cross_border, exempted)
    if not reasons:
        return Verdict("APPROVED", (), tuple(matched), cluster, cross_border)
    # issue 15: a price rule among the reasons names the (undated) fx rates and the rate used
    fx = compiled.model.fx
    used = None
    if priced and fx is not None:
        rate = fx.rate(listing.price.currency)
        shown = None if rate is None else format(rate.normalize(), "f")
        used = FxUsed(None, fx.base, listing.price.currency, shown)
    return Verdict("REJECTED", tuple(reasons), tuple(matched), cluster, cross_border, (), used)


def _reference_decision(
    listing: Listing, record: RawRecord, policy: CompiledPolicy, provenance: Provenance = LIVE
) -> Decision:
    return make_decision(
        listing,
        _reference_evaluate(listing, policy),
        policy=policy.policy_id,
        policy_version=policy.version,
        decided_at_ms=NOW_MS,
        source=SourceRef(record.topic, record.partition, record.offset),
        provenance=provenance,
    )


provenances = st.builds(
    Provenance,
    mode=st.sampled_from(["LIVE", "SHADOW", "REPLAY"]),
    replay_run=st.none() | st.text(max_size=12),
    as_of_ms=st.none() | st.integers(-(2**63), 2**63 - 1),
)


class TestDecisionWriter:
    @settings(max_examples=300, deadline=None)
    @given(decisions)
    def test_fastavro_reads_what_it_writes(self, decision: Decision) -> None:
        """Hand-written bytes decode with fastavro to the same record, and are fastavro's bytes."""
        writer = CODEC.decision_writer(decision.policy, decision.policy_version)
        value = writer.encode(decision)
        assert CODEC.decode_decision(value) == decision
        assert value == CODEC.encode_decision(decision)

    @settings(max_examples=100, deadline=None)
    @given(decisions, provenances)
    def test_trailer_is_the_encoded_provenance(
        self, decision: Decision, provenance: Provenance
    ) -> None:
        """A writer's trailer is how fastavro ends a decision with that provenance, before the
        exemptions and fx fields (empty and null here: one byte each)."""
        decision = replace(decision, exemptions=(), fx=None)
        value = CODEC.encode_decision(replace(decision, provenance=provenance))
        trailer = CODEC.decision_writer("p", "1", provenance).trailer
        assert value.endswith(trailer + b"\x00\x00")
        live = CODEC.encode_decision(replace(decision, provenance=LIVE))
        assert value[: len(value) - len(trailer) - 2] == live[:-5]  # LIVE, null, null, [], null

    def test_mode_outside_the_schema(self) -> None:
        """A mode that is no DecisionMode symbol is refused when the writer is built."""
        with pytest.raises(DecodeError, match="not a symbol of DecisionMode") as info:
            CODEC.decision_writer("p", "1", Provenance("DRY"))  # type: ignore[arg-type]
        assert info.value.code == "schema_mismatch"

    def test_verdict_part_outside_the_schema(self) -> None:
        """An outcome that is no Outcome symbol is refused, like fastavro refuses it."""
        writer = CODEC.decision_writer("p", "1")
        with pytest.raises(DecodeError, match="not a symbol of Outcome") as info:
            writer.verdict_part(Verdict("MAYBE", (), (), None, False))  # type: ignore[arg-type]
        assert info.value.code == "schema_mismatch"

    def test_decision_id_is_uuid5_of_event_and_version(self) -> None:
        """The spliced decision_id is decision_id_for(event_id, version), with its length prefix."""
        from consumer.core.records import decision_id_for

        field = CODEC.decision_writer("p", "2021.08+abc").decision_id_field("evt-ü-1")
        assert field == b"\x48" + decision_id_for("evt-ü-1", "2021.08+abc").encode()


def _records(listings: list[Listing], partition: int, offset: int) -> list[RawRecord]:
    return [
        RawRecord(
            "listing-created",
            partition,
            offset + n,
            None,
            None,
            CODEC.encode_listing(x),
            (("traceparent", b"00-1"),),
        )
        for n, x in enumerate(listings)
    ]


class TestDecideBatch:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(policy_listings, min_size=1, max_size=8),
        policy_names,
        st.integers(0, 2**31 - 1),
        st.integers(0, 2**63 - 9),
    )
    def test_same_decisions_as_the_typed_chain(
        self, listings: list[Listing], name: str, partition: int, offset: int
    ) -> None:
        """Every value is the reference decision's fastavro bytes; tally counts what it counted."""
        policy = POLICIES[name]
        records = _records(listings, partition, offset)
        results = decide_batch(records, CODEC, policy, NOW_MS, Verdicts.of(CODEC, policy))
        expected = [
            _reference_decision(x, r, policy) for x, r in zip(listings, records, strict=True)
        ]
        values = [r.value for r in results if isinstance(r, Decided)]
        assert values == [CODEC.encode_decision(d) for d in expected]
        assert [CODEC.decode_decision(v) for v in values] == expected
        counted = tally(results)
        assert sum(counted.decisions.values()) == len(expected)
        for d in expected:
            assert counted.decisions[(d.outcome.lower(), d.cluster or "none")] > 0
        assert sum(counted.rejections.values()) == sum(
            len(d.reasons) for d in expected if d.outcome == "REJECTED"
        )
        assert sum(counted.reviews.values()) == sum(
            len(d.reasons) for d in expected if d.outcome == "REVIEW"
        )
        assert counted.event_times_ms == [d.event_time_ms for d in expected]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(policy_listings, min_size=1, max_size=4), policy_names, provenances)
    def test_provenance_is_spliced_after_the_source(
        self, listings: list[Listing], name: str, provenance: Provenance
    ) -> None:
        """With a writer of any provenance, each value is fastavro's bytes of that decision."""
        policy = POLICIES[name]
        records = _records(listings, 1, 5)
        verdicts = Verdicts.of(CODEC, policy, provenance)
        results = decide_batch(records, CODEC, policy, NOW_MS, verdicts)
        expected = [
            _reference_decision(x, r, policy, provenance)
            for x, r in zip(listings, records, strict=True)
        ]
        values = [r.value for r in results if isinstance(r, Decided)]
        assert values == [CODEC.encode_decision(d) for d in expected]

    @settings(max_examples=100, deadline=None)
    @given(st.lists(any_listings(), min_size=1, max_size=5))
    def test_any_listing_the_schema_carries(self, listings: list[Listing]) -> None:
        """Arbitrary strings and 64-bit values: decided or dead-lettered as the typed chain would."""
        policy = POLICIES["kitchen-sink"]
        records = _records(listings, 3, 7)
        results = decide_batch(records, CODEC, policy, NOW_MS)
        for listing, record, result in zip(listings, records, results, strict=True):
            too_large = listing_too_large(listing, len(record.value or b""))
            if too_large is not None:
                assert isinstance(result, DeadLettered)
                assert result.code == "too_large"
                continue
            assert isinstance(result, Decided)
            assert CODEC.decode_decision(result.value) == _reference_decision(
                listing, record, policy
            )

    def test_cache_is_kept_between_batches_and_bounded(self) -> None:
        """A Verdicts cache fills once per distinct verdict; unknown currencies cannot grow it."""
        policy = POLICIES["kitchen-sink"]
        verdicts = Verdicts.of(CODEC, policy)
        cheap = make_listing(site="ID", category_path=("x",), price=make_listing().price)
        decide_batch(_records([cheap] * 10, 0, 0), CODEC, policy, NOW_MS, verdicts)
        assert len(verdicts.entries) == 1
        hostile = [
            make_listing(site="ID", price=type(cheap.price)(1, f"Q{n:05d}"))
            for n in range(VERDICT_CACHE_ENTRIES + 100)
        ]
        results = decide_batch(_records(hostile, 0, 0), CODEC, policy, NOW_MS, verdicts)
        assert all(isinstance(r, Decided) for r in results)
        assert len(verdicts.entries) <= VERDICT_CACHE_ENTRIES
        assert verdicts.size_bytes <= 4 * 1024 * 1024

    def test_a_new_policy_gets_a_new_cache(self) -> None:
        """A cache built for one policy is not used for another (their parts differ)."""
        first, second = POLICIES["kitchen-sink"], POLICIES["id-akar-import-closure"]
        verdicts = Verdicts.of(CODEC, first)
        records = _records([make_listing()], 0, 0)
        (result,) = decide_batch(records, CODEC, second, NOW_MS, verdicts)
        assert isinstance(result, Decided)
        assert CODEC.decode_decision(result.value).policy == second.policy_id
        assert verdicts.entries == {}

    @pytest.mark.parametrize(
        ("headers", "kept"),
        [
            ((), ()),
            ((("traceparent", b"t"),), (("traceparent", b"t"),)),
            ((("TraceParent", b"t"),), (("TraceParent", b"t"),)),
            ((("x-api-key", b"secret"),), ()),
            (
                (("b3", b"1"), ("cookie", b"c"), ("X-Request-Id", b"r")),
                (("b3", b"1"), ("X-Request-Id", b"r")),
            ),
        ],
        ids=["none", "one-trace", "case-insensitive", "non-trace-dropped", "mixed"],
    )
    def test_trace_headers_are_copied_then_policy_headers(
        self, headers: tuple[tuple[str, bytes], ...], kept: tuple[tuple[str, bytes], ...]
    ) -> None:
        """Trace headers of the input, in order, then ic.policy and ic.policy.version."""
        policy = POLICIES["kitchen-sink"]
        record = RawRecord("t", 0, 0, None, None, CODEC.encode_listing(make_listing()), headers)
        (result,) = decide_batch([record], CODEC, policy, NOW_MS)
        assert isinstance(result, Decided)
        assert result.headers == (
            *kept,
            ("ic.policy", policy.policy_id.encode()),
            ("ic.policy.version", policy.version.encode()),
        )


def _fastavro_row(value: bytes) -> Any:
    """What the fastavro path reads from a single-object value, or the DecodeError code."""
    stream = BytesIO(value)
    stream.seek(10)
    try:
        record = schemaless_reader(stream, _STRICT, None)
    except Exception as exc:
        return _read_error(exc, "test").code
    if stream.tell() != len(value):
        return "corrupt"
    return row_from_record(cast(dict[str, Any], record))


def _fast_row(value: bytes) -> Any:
    try:
        return CODEC.read_listing(value)[0]
    except DecodeError as exc:
        return exc.code


class TestListingReader:
    def test_written_for_the_bundled_schema(self) -> None:
        """The hand-written reader is used only for the schema it was written for."""
        assert BUNDLED[LISTING_CREATED].fingerprint == CANONICAL_FINGERPRINT

    @settings(max_examples=300, deadline=None)
    @given(any_listings())
    def test_reads_what_fastavro_reads(self, listing: Listing) -> None:
        """Valid values: the same row as fastavro, and the same listing as was encoded."""
        value = CODEC.encode_listing(listing)
        fast = _fast_row(value)
        if fast == "too_large":
            return
        assert fast == _fastavro_row(value)
        assert fast.listing() == listing

    @settings(max_examples=600, deadline=None)
    @given(any_listings(), st.data())
    def test_mutated_values_fail_as_fastavro_fails(
        self, listing: Listing, data: st.DataObject
    ) -> None:
        """Flipped, cut or inserted bytes: the same row, or the same error code.

        Two differences, both stricter: a varint longer than 10 bytes is corrupt (fastavro
        wraps it), and a value ending inside a varint is truncated (fastavro: IndexError,
        so corrupt).
        """
        value = bytearray(CODEC.encode_listing(listing))
        at = data.draw(st.integers(min_value=10, max_value=len(value) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            value[at] ^= data.draw(st.integers(min_value=1, max_value=255))
        elif action == "cut":
            del value[at:]
        else:
            value[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        fast, reference = _fast_row(bytes(value)), _fastavro_row(bytes(value))
        if fast == "too_large" or (fast, reference) == ("truncated", "corrupt"):
            return
        if fast == "corrupt" and reference != "corrupt":
            with pytest.raises(DecodeError, match="varint"):  # the only other way to differ
                CODEC.read_listing(bytes(value))
            return
        assert fast == reference


class TestScanKey:
    @settings(max_examples=400, deadline=None)
    @given(listing=policy_listings, name=policy_names)
    def test_split_evaluation_is_the_old_evaluation(self, listing: Listing, name: str) -> None:
        """evaluate (= verdict_of(scan)) gives the verdict the single loop gave, plus the
        exemptions issue 15 records."""
        assert evaluate(listing, POLICIES[name]) == _reference_evaluate(listing, POLICIES[name])

    @settings(max_examples=200, deadline=None)
    @given(listing=policy_listings, name=policy_names)
    def test_row_and_listing_evaluate_alike(self, listing: Listing, name: str) -> None:
        """The ListingRow the hot path decodes gets the verdict its Listing gets."""
        row = CODEC.read_listing(CODEC.encode_listing(listing))[0]
        assert evaluate(row, POLICIES[name]) == evaluate(listing, POLICIES[name])
