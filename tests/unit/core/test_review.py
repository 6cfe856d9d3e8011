"""REVIEW and exemptions through the hot path: decide_batch's spliced bytes, and the tally."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.codec import AvroCodec
from consumer.core.pipeline import Decided, Decider, tally
from consumer.core.records import Exemption, Listing, Price, RawRecord, SourceRef, make_decision
from consumer.policy import evaluate
from tests.unit.listings import make_listing
from tests.unit.policy.test_evaluate import allow, reject, usd
from tests.unit.policy.test_language import compiled, review
from tests.unit.policy.test_properties import LANGUAGE
from tests.unit.policy.test_properties import listings as any_listings

CODEC = AvroCodec()
NOW_MS = 1_700_000_000_000
#: Fashion imports go to review, unless sold by a known seller; cheap imports are rejected,
#: unless an allow rule for books exempts that rule alone.
POLICY = compiled(
    [
        review("fashion_review", cross_border=True, cluster_in=["fashion"])
        | {"unless": {"seller_in": ["trusted"]}},
        reject("cheap", cross_border=True, price_below=usd(5)),
        allow("books", hs_code_prefix_in=["4901"]) | {"exempts": ["cheap"]},
    ]
)
# (id, listing overrides, outcome, exemptions)
_CASES: list[tuple[str, dict[str, Any], str, tuple[Exemption, ...]]] = [
    ("review", {}, "REVIEW", ()),
    (
        "review-exempted-by-unless",
        {"seller_id": "trusted"},
        "APPROVED",
        (Exemption("fashion_review", "unless"),),
    ),
    ("reject-over-review", {"price": Price(100, "USD")}, "REJECTED", ()),
    (
        "exempted-reject-leaves-review",
        {"price": Price(100, "USD"), "hs_code": "490199"},
        "REVIEW",
        (Exemption("cheap", "books"),),
    ),
    ("approved", {"channel": "DOMESTIC"}, "APPROVED", ()),
]
LISTINGS = [
    make_listing(event_id=f"e-{name}", listing_id=f"l-{name}", **overrides)
    for name, overrides, _, _ in _CASES
]


def _record(offset: int, listing: Listing) -> RawRecord:
    return RawRecord("listing-created", 3, offset, None, None, CODEC.encode_listing(listing), ())


class TestReviewOnTheHotPath:
    @pytest.mark.parametrize(
        ("listing", "outcome", "exemptions"),
        [(x, c[2], c[3]) for x, c in zip(LISTINGS, _CASES, strict=True)],
        ids=[c[0] for c in _CASES],
    )
    def test_spliced_bytes_are_the_typed_decision(
        self, listing: Listing, outcome: str, exemptions: tuple[Exemption, ...]
    ) -> None:
        """decide_batch writes exactly what fastavro writes for make_decision(evaluate(...)),
        with the outcome and the exemptions applied."""
        record = _record(7, listing)
        (result,) = Decider(CODEC, POLICY).decide([record], NOW_MS)
        assert isinstance(result, Decided)
        verdict = evaluate(listing, POLICY)
        assert (verdict.outcome, verdict.exemptions) == (outcome, exemptions)
        expected = make_decision(
            listing,
            verdict,
            policy=POLICY.policy_id,
            policy_version=POLICY.version,
            decided_at_ms=NOW_MS,
            source=SourceRef("listing-created", 3, 7),
        )
        assert result.value == CODEC.encode_decision(expected)
        assert CODEC.decode_decision(result.value) == expected

    def test_tally_counts_review(self) -> None:
        """The decisions metric's outcome label is outcome.lower(): review is counted as review,
        and a review decision's reasons are review reasons, not rejections."""
        records = [_record(n, x) for n, x in enumerate(LISTINGS)]
        counted = tally(Decider(CODEC, POLICY).decide(records, NOW_MS))
        assert counted.decisions == {
            ("review", "fashion"): 2,
            ("approved", "fashion"): 2,
            ("rejected", "fashion"): 1,
        }
        assert counted.reviews[("V_FASHION_REVIEW", "fashion_review")] == 2
        assert ("V_FASHION_REVIEW", "fashion_review") not in counted.rejections

    def test_shadow_review_counts_as_a_disagreement(self) -> None:
        """A shadow policy that sends to review what the live policy rejects is a change."""
        live = compiled([reject("fashion", cross_border=True, cluster_in=["fashion"])])
        shadow = compiled([review("fashion", cross_border=True, cluster_in=["fashion"])])
        results = Decider(CODEC, live, shadow=shadow).decide([_record(0, LISTINGS[0])], NOW_MS)
        counted = tally(results)
        assert counted.shadow_decisions == {("review", "fashion"): 1}
        assert counted.disagreements == {("rejected", "review", "fashion"): 1}

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(any_listings, min_size=1, max_size=8))
    def test_language_policy_hot_path_is_the_typed_chain(self, listings: list[Listing]) -> None:
        """For a policy using every new key, each spliced value is fastavro's encoding of
        make_decision(evaluate(...)); verdict parts are cached per key, so this also checks
        that the verdict is a function of the scan key alone."""
        records = [_record(n, x) for n, x in enumerate(listings)]
        decider = Decider(CODEC, LANGUAGE)
        for _ in range(2):  # the second round is served from the verdict cache
            results = decider.decide(records, NOW_MS)
            for listing, record, result in zip(listings, records, results, strict=True):
                if not isinstance(result, Decided):
                    continue  # a value outside the schema is dead-lettered alike by both
                expected = make_decision(
                    listing,
                    evaluate(listing, LANGUAGE),
                    policy=LANGUAGE.policy_id,
                    policy_version=LANGUAGE.version,
                    decided_at_ms=NOW_MS,
                    source=SourceRef("listing-created", 3, record.offset),
                )
                assert result.value == CODEC.encode_decision(expected)
