"""What is in force when: a list's version and the fx table at an instant, the instants where
either changes, and which lists and prices each rule depends on (so compile rebuilds only those)."""

from __future__ import annotations

from collections.abc import Mapping

from consumer.policy.model import Conditions, DatedRates, ListVersion, PolicyModel, Rule


def boundaries(model: PolicyModel) -> list[int]:
    """Every instant at which a list version or an fx table begins or ends, in order."""
    bounds = {t.from_ms for t in model.fx_tables}
    for _, versions in model.lists:
        for version in versions:
            bounds.add(version.from_ms)
            if version.until_ms is not None:
                bounds.add(version.until_ms)
    return sorted(bounds)


def version_at(versions: tuple[ListVersion, ...], ms: int) -> ListVersion | None:
    for version in versions:
        if version.from_ms <= ms and (version.until_ms is None or ms < version.until_ms):
            return version
    return None


def table_at(tables: tuple[DatedRates, ...], ms: int) -> DatedRates | None:
    """The latest table already begun at `ms`; None before the first."""
    found = None
    for table in tables:
        if table.from_ms <= ms and (found is None or table.from_ms > found.from_ms):
            found = table
    return found


class RuleUses:
    """Which lists a rule's `when` and `unless` use, and whether they check a price, through
    named conditions too (each name looked at once)."""

    def __init__(self, named: Mapping[str, Conditions]) -> None:
        self.named = named
        self.seen: dict[str, tuple[frozenset[str], bool]] = {}

    def rule(self, rule: Rule) -> tuple[tuple[str, ...], bool]:
        lists, priced = self.block(rule.when)
        if rule.unless is not None:
            more, also = self.block(rule.unless)
            lists, priced = lists | more, priced or also
        return tuple(sorted(lists)), priced

    def block(self, block: Conditions) -> tuple[frozenset[str], bool]:
        lists = {name for _, name in block.lists or ()}
        priced = block.price_below is not None or block.price_at_least is not None
        parts = [*(block.all_of or ()), *(block.any_of or ())]
        if block.not_ is not None:
            parts.append(block.not_)
        for part in parts:
            more, also = self.block(part)
            lists |= more
            priced = priced or also
        if block.condition is not None:
            found = self.seen.get(block.condition)
            if found is None:
                found = self.seen[block.condition] = self.block(self.named[block.condition])
            lists |= found[0]
            priced = priced or found[1]
        return frozenset(lists), priced
