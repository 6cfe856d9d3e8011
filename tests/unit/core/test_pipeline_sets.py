"""The batch pipeline with a policy set, live or shadow: the same decisions, encoded once per
distinct tuple of layer keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.codec import AvroCodec
from consumer.core.pipeline import POLICY_HEADER, POLICY_VERSION_HEADER, Decided, Decider
from consumer.core.records import Price, RawRecord
from consumer.policy.sets import CompiledSet
from consumer.service.policy_watch import load_policy_file
from tests.unit.listings import make_listing
from tests.unit.policy.test_sets import AFTER_BOTH, write_indonesia_set

CODEC = AvroCodec()
LISTINGS = [
    make_listing(
        event_id=f"e-{i}",
        listing_id=f"l-{i}",
        event_time_ms=AFTER_BOTH,
        category_path=path,
        price=Price(amount, "USD"),
    )
    for i, (path, amount) in enumerate(
        [
            (("Batik", "Kemeja"), 5_000),
            (("Electronics",), 5_000),
            (("Electronics",), 50_000),
            (("Batik", "Kemeja"), 4_000),  # the same key as the first listing
        ]
    )
]
RECORDS = [
    RawRecord("in", 0, offset, None, None, CODEC.encode_listing(listing), ())
    for offset, listing in enumerate(LISTINGS)
]


@pytest.fixture
def indonesia(tmp_path: Path) -> CompiledSet:
    policy = load_policy_file(write_indonesia_set(tmp_path))
    assert isinstance(policy, CompiledSet)
    return policy


def decided(decider: Decider) -> list[Decided]:
    results = decider.decide(RECORDS, 1_700_000_000_000)
    return [r for r in results if isinstance(r, Decided)]


class TestPipelineWithASet:
    def test_decisions_are_the_sets_verdicts_and_name_the_set(self, indonesia: CompiledSet) -> None:
        """Value and headers carry the set's id and version; the verdict is its combined one."""
        results = decided(Decider(CODEC, indonesia))
        assert len(results) == len(LISTINGS)
        for result, listing in zip(results, LISTINGS, strict=True):
            assert result.verdict == indonesia.verdict_of(indonesia.scan(listing))
            decision = CODEC.decode_decision(result.value)
            assert (decision.policy, decision.policy_version) == (
                indonesia.policy_id,
                indonesia.version,
            )
            assert decision.reasons == result.verdict.reasons
            assert (POLICY_HEADER, b"indonesia-cross-border") in result.headers
            assert (POLICY_VERSION_HEADER, indonesia.version.encode()) in result.headers
        outcomes = [r.verdict.outcome for r in results]
        assert outcomes == ["REJECTED", "REJECTED", "APPROVED", "REJECTED"]

    def test_one_verdict_per_distinct_key(self, indonesia: CompiledSet) -> None:
        """Equal layer keys share one verdict object (and encoded part), as for a policy."""
        results = decided(Decider(CODEC, indonesia))
        assert results[0].verdict is results[3].verdict

    def test_a_set_as_shadow_beside_a_single_policy(self, indonesia: CompiledSet) -> None:
        """The live AKAR layer alone; the set in shadow sees Permendag's extra rejections."""
        akar = indonesia.layers[0]
        results = decided(Decider(CODEC, akar, shadow=indonesia))
        live = [r.verdict.outcome for r in results]
        shadow = [r.shadow.verdict.outcome for r in results if r.shadow is not None]
        assert live == ["REJECTED", "APPROVED", "APPROVED", "REJECTED"]
        assert shadow == ["REJECTED", "REJECTED", "APPROVED", "REJECTED"]
