"""Shadow evaluation in the pure core: a second policy's verdict beside every live decision."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.codec import AvroCodec
from consumer.core.pipeline import SHADOW_HEADER, Decided, Decider, tally
from consumer.core.records import RawRecord
from consumer.policy import CompiledPolicy, evaluate
from tests.unit.listings import make_listing
from tests.unit.policy.test_evaluate import compiled, reject

CODEC = AvroCodec()
LIVE = compiled([reject("fashion", cross_border=True, cluster_in=["fashion"])])
#: The candidate also closes electronics, and gives fashion another rule id.
CANDIDATE = compiled(
    [
        reject("fashion_v2", cross_border=True, cluster_in=["fashion"]),
        reject("electronics", cross_border=True, cluster_in=["electronics"]),
    ]
)
LISTINGS = [
    make_listing(event_id="e-dress", listing_id="l-dress"),
    make_listing(
        event_id="e-phone",
        listing_id="l-phone",
        category_path=("Electronics", "Phones"),
        category_id="c-9",
    ),
    make_listing(
        event_id="e-local",
        listing_id="l-local",
        seller_country="ID",
        ship_from_country="ID",
        channel="DOMESTIC",
    ),
]
#: Two reject rules that both match the dress, and candidates that only reorder or reword them.
OVERLAPPING = [
    {**reject("fashion", cross_border=True, cluster_in=["fashion"]), "message": "closed"},
    {**reject("cross", cross_border=True), "message": "imports closed"},
]
REORDERED = compiled(OVERLAPPING[::-1])
REWORDED = compiled([{**rule, "message": f"{rule['message']}, reworded"} for rule in OVERLAPPING])
RECORDS = [
    RawRecord("in", 0, offset, None, None, CODEC.encode_listing(listing), ())
    for offset, listing in enumerate(LISTINGS)
]


def decide(live: CompiledPolicy = LIVE, **shadow: Any) -> list[Decided]:
    results = Decider(CODEC, live, **shadow).decide(RECORDS, 1_700_000_000_000)
    assert all(isinstance(r, Decided) for r in results)
    return [r for r in results if isinstance(r, Decided)]


class TestShadowVerdicts:
    def test_each_decision_carries_what_the_shadow_policy_says(self) -> None:
        decided = decide(shadow=CANDIDATE)
        for result, listing in zip(decided, LISTINGS, strict=True):
            assert result.verdict == evaluate(listing, LIVE)
            assert result.shadow is not None
            assert result.shadow.verdict == evaluate(listing, CANDIDATE)

    def test_the_live_output_is_the_same_bytes_with_or_without_a_shadow(self) -> None:
        alone = decide()
        shadowed = decide(shadow=CANDIDATE, shadow_output="all")
        assert [(r.value, r.headers) for r in alone] == [(r.value, r.headers) for r in shadowed]
        assert all(r.shadow is None for r in alone)

    def test_metrics_only_mode_encodes_no_shadow_decision(self) -> None:
        assert all(
            r.shadow is not None and r.shadow.value is None for r in decide(shadow=CANDIDATE)
        )


class TestShadowDecisions:
    def test_all_mode_encodes_every_shadow_decision_as_shadow_mode_under_the_candidate(
        self,
    ) -> None:
        for result in decide(shadow=CANDIDATE, shadow_output="all"):
            assert result.shadow is not None
            assert result.shadow.value is not None
            decision = CODEC.decode_decision(result.shadow.value)
            assert decision.policy_version == CANDIDATE.version
            assert decision.provenance.mode == "SHADOW"
            assert decision.outcome == result.shadow.verdict.outcome
            assert decision.event_id == CODEC.decode_decision(result.value).event_id
            assert decision.decision_id != CODEC.decode_decision(result.value).decision_id
            assert (SHADOW_HEADER, b"true") in result.shadow.headers
            assert ("ic.policy.version", CANDIDATE.version.encode()) in result.shadow.headers

    def test_changes_mode_encodes_only_decisions_that_differ(self) -> None:
        """The dress is rejected by both but by another rule; the phone only by the candidate."""
        produced = {
            r.listing_id
            for r in decide(shadow=CANDIDATE, shadow_output="changes")
            if r.shadow is not None and r.shadow.value is not None
        }
        assert produced == {"l-dress", "l-phone"}

    @pytest.mark.parametrize(
        ("live", "shadow"),
        [(LIVE, LIVE), (compiled(OVERLAPPING), REORDERED), (compiled(OVERLAPPING), REWORDED)],
        ids=["same-policy", "reordered-rules", "reworded-messages"],
    )
    def test_a_shadow_that_decides_the_same_produces_and_counts_nothing(
        self, live: CompiledPolicy, shadow: CompiledPolicy
    ) -> None:
        """Same outcome and same set of (code, rule_id) is no change (judgement.changed), even
        when the reasons come in another order or say it in other words."""
        decided = decide(live, shadow=shadow, shadow_output="changes")
        assert all(r.shadow is not None and r.shadow.value is None for r in decided)
        assert not tally(decided).disagreements

    def test_the_overlapping_rules_do_reorder_the_dress_reasons(self) -> None:
        """What the test above relies on: the dress is rejected by both rules, in file order."""
        dress = LISTINGS[0]
        live, reordered = evaluate(dress, compiled(OVERLAPPING)), evaluate(dress, REORDERED)
        assert [r.rule_id for r in live.reasons] == ["fashion", "cross"]
        assert [r.rule_id for r in reordered.reasons] == ["cross", "fashion"]


class TestShadowTally:
    def test_counts_shadow_outcomes_and_disagreements_by_the_rules_that_differ(self) -> None:
        """One disagreement per rule that makes the difference (judgement.deciding_rules): the
        dress's rule was renamed, so it counts under the old and the new id."""
        t = tally(decide(shadow=CANDIDATE))
        assert t.shadow_decisions == {
            ("rejected", "fashion"): 1,
            ("rejected", "electronics"): 1,
            ("approved", "fashion"): 1,
        }
        assert t.disagreements == {
            ("rejected", "rejected", "fashion"): 1,
            ("rejected", "rejected", "fashion_v2"): 1,
            ("approved", "rejected", "electronics"): 1,
        }
        # the live counters are untouched by the shadow
        assert t.decisions == tally(decide()).decisions

    def test_equal_verdicts_share_one_count_per_rule(self) -> None:
        """Decisions sharing a verdict pair are counted together: n listings, n per rule."""
        t = tally(decide(shadow=CANDIDATE) * 3)
        assert t.disagreements[("rejected", "rejected", "fashion")] == 3
        assert t.disagreements[("approved", "rejected", "electronics")] == 3


class TestReplaced:
    def test_a_new_decider_decides_with_the_new_policies_and_keeps_the_unchanged_cache(
        self,
    ) -> None:
        decider = Decider(CODEC, LIVE, shadow=CANDIDATE, shadow_output="all")
        decider.decide(RECORDS, 0)
        promoted = decider.replaced(CANDIDATE, None)
        [first, *_] = promoted.decide(RECORDS, 0)
        assert isinstance(first, Decided)
        assert CODEC.decode_decision(first.value).policy_version == CANDIDATE.version
        assert first.shadow is None
        assert decider.replaced(LIVE, CANDIDATE) is decider
