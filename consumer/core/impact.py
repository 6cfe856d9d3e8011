"""What a candidate policy changes: the comparison of two verdicts on one listing, and its tally.

Pure: `diff` and `replay --dry-run` feed it listings and render what it counts. What "changed" and
"the rules that make the difference" mean is consumer.core.judgement's one definition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Final

from consumer.core.judgement import VerdictCache, changed, deciding_rules
from consumer.core.records import Listing, ListingRow, Verdict
from consumer.policy.enforced import Enforced

#: Every change between the three outcomes that can happen, the three from before REVIEW first.
#: APPROVED->APPROVED is never a change: an approval has no reasons to differ in.
TRANSITIONS: Final = (
    "APPROVED->REJECTED",
    "REJECTED->APPROVED",
    "REJECTED->REJECTED",
    "APPROVED->REVIEW",
    "REVIEW->APPROVED",
    "REJECTED->REVIEW",
    "REVIEW->REJECTED",
    "REVIEW->REVIEW",
)


def side(verdict: Verdict) -> dict[str, Any]:
    """One side of a change as the JSON forms print it: outcome and reasons."""
    return {
        "outcome": verdict.outcome,
        "reasons": [r.as_record() for r in verdict.reasons],
    }


@dataclass(frozen=True, slots=True)
class Change:
    """One listing whose decision the candidate changes."""

    listing: Listing | ListingRow
    old: Verdict
    new: Verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "listing_id": self.listing.listing_id,
            "event_id": self.listing.event_id,
            "from": side(self.old),
            "to": side(self.new),
        }


class Judge:
    """Both policies' verdicts on a listing, memoised per pair of verdict keys (a few hundred)."""

    __slots__ = ("_memo", "as_of_ms", "candidate", "live")

    def __init__(self, live: Enforced, candidate: Enforced, as_of_ms: int | None = None) -> None:
        self.live = live
        self.candidate = candidate
        self.as_of_ms = as_of_ms
        self._memo: VerdictCache[tuple[Hashable, Hashable], tuple[Verdict, Verdict, bool]]
        self._memo = VerdictCache()

    def judge(self, listing: Listing | ListingRow) -> tuple[Verdict, Verdict, bool]:
        """(live verdict, candidate verdict, whether the decision changes)."""
        keys = (
            self.live.scan(listing, self.as_of_ms),
            self.candidate.scan(listing, self.as_of_ms),
        )
        found = self._memo.get(keys)
        if found is None:
            old = self.live.verdict_of(keys[0])
            new = self.candidate.verdict_of(keys[1])
            found = self._memo.put(keys, (old, new, changed(old, new)))
        return found


@dataclass(slots=True)
class ImpactReport:
    """The counts `diff` reports; equal to comparing two `check` runs line by line."""

    listings: int = 0
    invalid: int = 0
    changed: int = 0
    transitions: Counter[str] = field(default_factory=Counter)
    by_cluster: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    examples: list[Change] = field(default_factory=list)
    max_examples: int = 5

    def add(self, listing: Listing | ListingRow, old: Verdict, new: Verdict, differs: bool) -> None:
        self.listings += 1
        if not differs:
            return
        self.changed += 1
        self.transitions[f"{old.outcome}->{new.outcome}"] += 1
        self.by_cluster[new.cluster or "none"] += 1
        self.by_rule.update(deciding_rules(old, new))
        if len(self.examples) < self.max_examples:
            self.examples.append(Change(listing, old, new))

    def to_json(self) -> dict[str, Any]:
        return {
            "listings": self.listings,
            "invalid": self.invalid,
            "changed": self.changed,
            "transitions": {t: self.transitions[t] for t in TRANSITIONS},
            "by_cluster": dict(sorted(self.by_cluster.items())),
            "by_rule": dict(sorted(self.by_rule.items())),
            "examples": [c.to_json() for c in self.examples],
        }
