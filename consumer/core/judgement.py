"""Did a decision change, which rules make the difference, and the one bounded verdict cache.

The one definition used by shadow metrics, the shadow topic's changes-only filter, `diff` and
`replay --changed-only`. A decision *changes* when the outcome differs, or the reasons differ as
a set of (code, rule_id): downstream systems act on the outcome and the reasons, so a reworded
message, the same rules in another order, or `matched_rules` differing alone is no change.
"""

from __future__ import annotations

from typing import Final, TypeVar

from consumer.core.records import Verdict

#: Distinct verdicts a cache keeps. A policy gives a few hundred at most (clusters x cross-border
#: x matched rules); listings with unknown currencies add one per currency, and text rules one per
#: phrase they name (the key holds the phrase, so a cached verdict never names another listing's
#: phrase): with thousands of phrases the bound can be reached, and the cache starts again.
VERDICT_CACHE_ENTRIES: Final = 4096
#: The rule label when no rule can be named (never expected for a changed decision).
NO_RULE: Final = "none"

#: What a decision says, as compared: its outcome and its reasons as a set of (code, rule_id).
Judgement = tuple[str, frozenset[tuple[str, str]]]


def judgement(verdict: Verdict) -> Judgement:
    """The comparable form of a verdict; compute once per distinct verdict, compare per event."""
    return (verdict.outcome, frozenset((r.code, r.rule_id) for r in verdict.reasons))


def changed(old: Verdict, new: Verdict) -> bool:
    """True when a downstream system would act differently: outcome or reasons differ."""
    return judgement(old) != judgement(new)


def deciding_rules(old: Verdict, new: Verdict) -> tuple[str, ...]:
    """The rules that make the difference, sorted: matched under one policy only, else those whose
    reason differs; (NO_RULE,) when none can be named. Meaningful only when `changed`."""
    rules = set(old.matched_rules) ^ set(new.matched_rules)
    if not rules:
        rules = {rule for _code, rule in judgement(old)[1] ^ judgement(new)[1]}
    return tuple(sorted(rules)) or (NO_RULE,)


K = TypeVar("K")
V = TypeVar("V")


class VerdictCache(dict[K, V]):
    """A pure function's memo, bounded by VERDICT_CACHE_ENTRIES and optionally by an estimate of
    the bytes it holds: when `put` would pass either bound it starts again (clearing changes no
    answer). Read it as a dict (`get`); write it only with `put`."""

    __slots__ = ("max_bytes", "size_bytes")

    def __init__(self, max_bytes: int | None = None) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        #: Estimated memory held, the sum of the costs `put` was given since the last start.
        self.size_bytes = 0

    def put(self, key: K, value: V, cost: int = 0) -> V:
        """Keep `value` for `key` and return it; `cost` is its estimated size in bytes."""
        full = len(self) >= VERDICT_CACHE_ENTRIES
        if full or (self.max_bytes is not None and self.size_bytes + cost > self.max_bytes):
            self.clear()
            self.size_bytes = 0
        self[key] = value
        self.size_bytes += cost
        return value
