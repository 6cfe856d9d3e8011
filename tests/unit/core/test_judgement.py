"""The one meaning of "changed", of "the rules that make the difference", and the verdict cache."""

from __future__ import annotations

import pytest

from consumer.core.judgement import (
    NO_RULE,
    VERDICT_CACHE_ENTRIES,
    VerdictCache,
    changed,
    deciding_rules,
    judgement,
)
from consumer.core.records import Reason, Verdict

CLOSED = "IMPORT_CLOSED_CATEGORY"
CHEAP = "CROSS_BORDER_BELOW_MIN_PRICE"


def approved(*matched: str) -> Verdict:
    return Verdict("APPROVED", (), matched, "fashion", True)


def rejected(*reasons: tuple[str, str] | tuple[str, str, str], matched: str = "") -> Verdict:
    """Rejected for `reasons` ((code, rule_id[, message])); matched: those rules, else `matched`."""
    made = tuple(Reason(r[0], r[1], r[2] if len(r) == 3 else f"{r[1]} says no") for r in reasons)
    rules = tuple(matched.split()) if matched else tuple(r.rule_id for r in made)
    return Verdict("REJECTED", made, rules, "fashion", True)


#: (live, candidate, changed, deciding rules)
CASES = [
    (approved(), approved(), False, (NO_RULE,)),
    (rejected((CLOSED, "fashion")), rejected((CLOSED, "fashion")), False, (NO_RULE,)),
    (
        rejected((CLOSED, "fashion"), (CHEAP, "min-price")),
        rejected((CHEAP, "min-price"), (CLOSED, "fashion")),
        False,
        (NO_RULE,),
    ),
    (
        rejected((CLOSED, "fashion", "closed")),
        rejected((CLOSED, "fashion", "closed to protect local sellers")),
        False,
        (NO_RULE,),
    ),
    (approved(), approved("exempt-books"), False, ("exempt-books",)),
    (approved("fashion", "exempt-books"), approved("exempt-books"), False, ("fashion",)),
    (approved(), rejected((CLOSED, "electronics")), True, ("electronics",)),
    (rejected((CLOSED, "crafts")), approved(), True, ("crafts",)),
    (rejected((CLOSED, "fashion")), approved("fashion", "exempt-brands"), True, ("exempt-brands",)),
    (
        rejected((CLOSED, "fashion")),
        rejected((CLOSED, "fashion_v2")),
        True,
        ("fashion", "fashion_v2"),
    ),
    (
        rejected((CLOSED, "fashion")),
        rejected((CLOSED, "fashion"), (CHEAP, "min-price")),
        True,
        ("min-price",),
    ),
    (rejected((CLOSED, "fashion")), rejected(("UNKNOWN_CURRENCY", "fashion")), True, ("fashion",)),
]
IDS = [
    "same-approval",
    "same-rejection",
    "reordered-rules",
    "reworded-message",
    "another-allow-rule-matched-alone",
    "a-reject-rule-overridden-in-one-only",
    "approved-to-rejected",
    "rejected-to-approved",
    "an-allow-rule-wins",
    "renamed-rule",
    "one-more-reason",
    "other-reason-code-same-rule",
]


class TestChanged:
    @pytest.mark.parametrize(("live", "candidate", "expected", "_rules"), CASES, ids=IDS)
    def test_a_decision_changes_when_the_outcome_or_the_set_of_reasons_differs(
        self, live: Verdict, candidate: Verdict, expected: bool, _rules: tuple[str, ...]
    ) -> None:
        """Reasons compare as a set of (code, rule_id): order, messages and matched_rules alone
        are no change."""
        assert changed(live, candidate) is expected
        assert changed(candidate, live) is expected

    @pytest.mark.parametrize(("live", "candidate", "expected", "_rules"), CASES, ids=IDS)
    def test_comparing_judgements_is_changed(
        self, live: Verdict, candidate: Verdict, expected: bool, _rules: tuple[str, ...]
    ) -> None:
        """The hot path compares precomputed judgements; they say what `changed` says."""
        assert (judgement(live) != judgement(candidate)) is expected


class TestDecidingRules:
    @pytest.mark.parametrize(("live", "candidate", "_changed", "rules"), CASES, ids=IDS)
    def test_the_rules_matched_by_one_policy_only_else_those_whose_reason_differs(
        self, live: Verdict, candidate: Verdict, _changed: bool, rules: tuple[str, ...]
    ) -> None:
        """Sorted, the same both ways round, `none` when no rule can be named; a changed
        listing counts once under each of them."""
        assert deciding_rules(live, candidate) == rules
        assert deciding_rules(candidate, live) == rules


class TestVerdictCache:
    def test_put_keeps_and_returns_the_value(self) -> None:
        """A memo read as a dict, written with put."""
        cache: VerdictCache[str, int] = VerdictCache()
        assert cache.put("k", 1, cost=10) == 1
        assert cache.get("k") == 1
        assert cache.size_bytes == 10

    @pytest.mark.parametrize(
        ("max_bytes", "cost", "puts", "kept"),
        [
            (None, 0, VERDICT_CACHE_ENTRIES, VERDICT_CACHE_ENTRIES),
            (None, 0, VERDICT_CACHE_ENTRIES + 1, 1),
            (100, 30, 3, 3),
            (100, 30, 4, 1),
        ],
        ids=["full-of-entries", "past-the-entries", "within-bytes", "past-the-bytes"],
    )
    def test_starts_again_when_a_bound_would_be_passed(
        self, max_bytes: int | None, cost: int, puts: int, kept: int
    ) -> None:
        """At VERDICT_CACHE_ENTRIES entries, or past `max_bytes`, the next put clears it first."""
        cache: VerdictCache[int, int] = VerdictCache(max_bytes)
        for n in range(puts):
            cache.put(n, n, cost)
        assert len(cache) == kept
        assert cache.size_bytes == kept * cost
        assert cache[puts - 1] == puts - 1
