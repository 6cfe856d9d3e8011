"""Condition blocks to closures, once per compile: the leaf checks over precomputed sets, price
thresholds in integers, and all/any/not/condition as three-valued combinators.

A block's `match(listing, cross_border, cluster)` is what evaluate calls per rule; a `when` of
leaf keys only compiles to the same loop as before blocks existed (or to its one check).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar, cast

from consumer.core.records import Listing
from consumer.policy.model import Conditions, Money
from consumer.policy.taxonomy import normalise_segment
from consumer.policy.text import PhraseSet, TitleIndex

T = TypeVar("T")
#: test(listing, cross_border, cluster) -> whether the condition holds.
Test = Callable[[Listing, bool, str | None], bool]
#: match(listing, cross_border, cluster) -> whether a block holds; None when it depends on a price
#: in a currency without an fx rate (three-valued, so each caller decides how to fail closed).
Match = Callable[[Listing, bool, str | None], bool | None]


@dataclass(frozen=True, slots=True)
class Check:
    """One non-price `when` condition, as a closure over its precomputed set or tuple."""

    key: str
    test: Test
    #: `title_contains_any`: its phrases, for the reason's phrase and explain.
    phrases: PhraseSet | None = None


@dataclass(frozen=True, slots=True)
class PriceCheck:
    """A price condition as integer thresholds in each known currency's minor units.

    amount_minor < threshold is exactly "price below the limit" (the threshold is rounded up from
    the exact rational value), so there is no float rounding at the boundary and no multiply per
    listing. A currency missing from `thresholds` has no fx rate.
    """

    key: str
    below: bool
    thresholds: Mapping[str, int]

    def holds(self, amount_minor: int, currency: str) -> bool | None:
        """None when the currency has no rate, so the caller can fail closed."""
        threshold = self.thresholds.get(currency)
        if threshold is None:
            return None
        return amount_minor < threshold if self.below else amount_minor >= threshold


@dataclass(frozen=True, slots=True)
class CompiledBlock:
    """A condition block as one `match` closure, and its parts as explain walks them.

    `checks` and `prices` are the block's own leaf keys; `all_of`, `any_of`, `not_` and `named`
    (the block a `condition:` key names, compiled once per policy and shared) are its groups.
    """

    block: Conditions
    checks: tuple[Check, ...]
    prices: tuple[PriceCheck, ...]
    all_of: tuple[CompiledBlock, ...]
    any_of: tuple[CompiledBlock, ...]
    not_: CompiledBlock | None
    named: CompiledBlock | None
    match: Match
    #: Whether a price condition appears anywhere inside, named blocks included.
    priced: bool

    def phrase_sets(self) -> tuple[PhraseSet, ...]:
        """The `title_contains_any` phrases inside, named blocks included, except under a `not`
        (a phrase found there is why a block fails, not why it holds); in block order."""
        own = tuple(check.phrases for check in self.checks if check.phrases is not None)
        parts = (*self.all_of, *self.any_of, *((self.named,) if self.named else ()))
        return own + tuple(found for part in parts for found in part.phrase_sets())


class EntrySets:
    """Sets and prefix tests built from entry tuples, kept by the tuple's identity: a list
    version's entries are one tuple shared by every period that uses it, so a 100,000-entry set
    is built once per compile, not once per period."""

    def __init__(self) -> None:
        self.built: dict[tuple[int, object], tuple[tuple[str, ...], object]] = {}

    def get(self, entries: tuple[str, ...], build: Callable[[tuple[str, ...]], T]) -> T:
        key = (id(entries), build)
        found = self.built.get(key)
        if found is not None and found[0] is entries:  # the tuple is held, so its id is its own
            return cast(T, found[1])
        value = build(entries)
        self.built[key] = (entries, value)
        return value


class BlockCompiler:
    """Condition blocks to CompiledBlocks; each named condition is compiled once and shared.

    load has rejected cycles, unknown names and nesting deeper than MAX_BLOCK_DEPTH, so the
    recursion here is at most that deep.
    """

    def __init__(
        self,
        named: Mapping[str, Conditions],
        rates: Mapping[str, Fraction],
        scales: Mapping[str, tuple[int, int]],
        lists: Mapping[str, tuple[str, ...]] | None = None,
        sets: EntrySets | None = None,
        text: TitleIndex | None = None,
    ) -> None:
        self.named = named
        self.rates = rates
        self.scales = scales
        #: Each named list's entries in force for the period being compiled.
        self.lists = lists or {}
        self.sets = sets or EntrySets()
        #: The policy's phrases: every text condition of every period adds its own.
        self.text = text if text is not None else TitleIndex()
        self.done: dict[str, CompiledBlock] = {}

    def block(self, block: Conditions) -> CompiledBlock:
        if block.lists is not None:
            # `{list: NAME}` leaves become the entries in force; `lists` stays, for explain
            filled = {key: self.lists[name] for key, name in block.lists}
            block = dataclasses.replace(block, **filled)  # type: ignore[arg-type]
        prices = tuple(
            _price_check(
                key, money, below=key == "price_below", rates=self.rates, scales=self.scales
            )
            for key, money in (
                ("price_below", block.price_below),
                ("price_at_least", block.price_at_least),
            )
            if money is not None
        )
        checks = _checks(block, self.sets, self.text)
        all_of = tuple(self.block(item) for item in block.all_of or ())
        any_of = tuple(self.block(item) for item in block.any_of or ())
        not_ = None if block.not_ is None else self.block(block.not_)
        named = None if block.condition is None else self.reference(block.condition)
        groups: list[Match] = [item.match for item in all_of]
        if block.any_of is not None:
            groups.append(_any(tuple(item.match for item in any_of)))
        if not_ is not None:
            groups.append(_not(not_.match))
        if named is not None:
            groups.append(named.match)
        if checks or prices or not groups:
            groups.insert(0, _leaves(checks, prices))
        match = groups[0] if len(groups) == 1 else _all(tuple(groups))
        parts = (*all_of, *any_of, *((not_,) if not_ else ()), *((named,) if named else ()))
        priced = bool(prices) or any(part.priced for part in parts)
        return CompiledBlock(block, checks, prices, all_of, any_of, not_, named, match, priced)

    def reference(self, name: str) -> CompiledBlock:
        found = self.done.get(name)
        if found is None:
            found = self.done[name] = self.block(self.named[name])
        return found


def _leaves(checks: tuple[Check, ...], prices: tuple[PriceCheck, ...]) -> Match:
    """The leaf keys of one block: the non-price checks, then the prices (as before issue 15)."""
    tests = tuple(check.test for check in checks)
    if not prices:
        if len(tests) == 1:
            return tests[0]

        def match(listing: Listing, cross_border: bool, cluster: str | None) -> bool | None:
            for test in tests:  # noqa: SIM110 - a loop is faster than all() over a generator
                if not test(listing, cross_border, cluster):
                    return False
            return True

        return match

    def priced(listing: Listing, cross_border: bool, cluster: str | None) -> bool | None:
        for test in tests:
            if not test(listing, cross_border, cluster):
                return False
        price = listing.price
        for price_check in prices:
            holds = price_check.holds(price.amount_minor, price.currency)
            if holds is None:
                return None  # all price checks share one rate table: unknown for one is for all
            if not holds:
                return False
        return True

    return priced


def _all(parts: tuple[Match, ...]) -> Match:
    """Kleene AND: False if any part is False, else None if any is unknown, else True."""

    def match(listing: Listing, cross_border: bool, cluster: str | None) -> bool | None:
        result: bool | None = True
        for part in parts:
            held = part(listing, cross_border, cluster)
            if held is False:
                return False
            if held is None:
                result = None
        return result

    return match


def _any(parts: tuple[Match, ...]) -> Match:
    """Kleene OR: True if any part is True, else None if any is unknown, else False."""

    def match(listing: Listing, cross_border: bool, cluster: str | None) -> bool | None:
        result: bool | None = False
        for part in parts:
            held = part(listing, cross_border, cluster)
            if held is True:
                return True
            if held is None:
                result = None
        return result

    return match


def _not(part: Match) -> Match:
    """Kleene NOT: an unknown stays unknown."""

    def match(listing: Listing, cross_border: bool, cluster: str | None) -> bool | None:
        held = part(listing, cross_border, cluster)
        return None if held is None else not held

    return match


def _price_check(
    key: str,
    money: Money,
    *,
    below: bool,
    rates: Mapping[str, Fraction],
    scales: Mapping[str, tuple[int, int]],
) -> PriceCheck:
    """Each threshold is ceil(limit in base x minor units per base unit), exactly, in integers."""
    if money.currency not in rates:
        return PriceCheck(key, below, {})  # no fx table in force yet: every price is unknown
    limit_in_base = Fraction(money.amount) * rates[money.currency]
    num, den = limit_in_base.numerator, limit_in_base.denominator
    thresholds = {code: -(-num * s_num // (den * s_den)) for code, (s_num, s_den) in scales.items()}
    return PriceCheck(key, below, thresholds)


def normalise_hs_code(hs_code: str) -> str:
    """HS codes are compared as digits only, so "4901.99" and "4901 99" match prefix "4901"."""
    return hs_code.replace(".", "").replace(" ", "")


def _checks(when: Conditions, sets: EntrySets, text: TitleIndex) -> tuple[Check, ...]:
    """One closure per set condition, in CONDITION_KEYS order; price conditions are handled apart."""
    checks: list[Check] = []

    def add(key: str, test: Test) -> None:
        checks.append(Check(key, test))

    if when.cross_border is not None:
        wanted = when.cross_border
        add("cross_border", lambda listing, cross_border, cluster: cross_border is wanted)
    if when.cluster_in is not None:
        clusters_in = sets.get(when.cluster_in, frozenset)
        add("cluster_in", lambda listing, cross_border, cluster: cluster in clusters_in)
    if when.cluster_not_in is not None:
        clusters_out = sets.get(when.cluster_not_in, frozenset)
        add("cluster_not_in", lambda listing, cross_border, cluster: cluster not in clusters_out)
    if when.site_in is not None:
        sites = sets.get(when.site_in, frozenset)
        add("site_in", lambda listing, cross_border, cluster: listing.site in sites)
    if when.seller_in is not None:
        sellers_in = sets.get(when.seller_in, frozenset)
        add("seller_in", lambda listing, cross_border, cluster: listing.seller_id in sellers_in)
    if when.seller_not_in is not None:
        sellers_out = sets.get(when.seller_not_in, frozenset)
        add(
            "seller_not_in",
            lambda listing, cross_border, cluster: listing.seller_id not in sellers_out,
        )
    if when.seller_country_in is not None:
        seller_countries = sets.get(when.seller_country_in, frozenset)
        add(
            "seller_country_in",
            lambda listing, cross_border, cluster: listing.seller_country in seller_countries,
        )
    if when.ship_from_in is not None:
        ship_from = sets.get(when.ship_from_in, frozenset)
        add(
            "ship_from_in",
            lambda listing, cross_border, cluster: listing.ship_from_country in ship_from,
        )
    if when.brand_in is not None:
        brands = sets.get(when.brand_in, _brands)
        add("brand_in", lambda listing, cross_border, cluster: _brand_in(listing.brand, brands))
    if when.hs_code_prefix_in is not None:
        starts_in = sets.get(when.hs_code_prefix_in, _prefix_test)
        add(
            "hs_code_prefix_in",
            lambda listing, cross_border, cluster: (
                listing.hs_code is not None and starts_in(normalise_hs_code(listing.hs_code))
            ),
        )
    if when.hs_code_prefix_not_in is not None:
        starts_out = sets.get(when.hs_code_prefix_not_in, _prefix_test)
        add(
            "hs_code_prefix_not_in",
            lambda listing, cross_border, cluster: (
                listing.hs_code is None or not starts_out(normalise_hs_code(listing.hs_code))
            ),
        )
    if when.attribute_equals is not None:
        pairs = when.attribute_equals
        add(
            "attribute_equals",
            lambda listing, cross_border, cluster: all(
                listing.attributes.get(name) == value for name, value in pairs
            ),
        )
    if when.title_contains_any is not None:
        # last: the cheap checks before it usually decide, and then the title is not scanned
        phrases = sets.get(when.title_contains_any, text.phrase_set)
        ids, hits = phrases.ids, text.hits

        def title(listing: Listing, cross_border: bool, cluster: str | None) -> bool:
            return not ids.isdisjoint(hits(listing))

        checks.append(Check("title_contains_any", title, phrases))
    return tuple(checks)


#: Up to this many prefixes, str.startswith(tuple) is fastest; past it (a list of thousands of HS
#: codes) one set lookup per distinct prefix length (at most 9: 2 to 10 digits) is.
_PREFIX_SCAN_MAX = 32


def _prefix_test(prefixes: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a normalised HS code starts with one of `prefixes`."""
    if len(prefixes) <= _PREFIX_SCAN_MAX:
        scanned = tuple(prefixes)
        return lambda code: code.startswith(scanned)
    known = frozenset(prefixes)
    lengths = tuple(sorted({len(prefix) for prefix in known}))

    def starts(code: str) -> bool:
        for length in lengths:  # noqa: SIM110 - a loop is faster than any() over a generator
            if code[:length] in known:
                return True
        return False

    return starts


def _brands(brands: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalise_segment(brand) for brand in brands)


def _brand_in(brand: str | None, brands: frozenset[str]) -> bool:
    return brand is not None and normalise_segment(brand) in brands
