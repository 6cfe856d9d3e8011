"""PolicyModel to CompiledPolicy, once per load: sets, prefix index, price thresholds, version hash.

Everything a listing's evaluation needs is decided here, so `evaluate` only does set and dict
lookups, integer comparisons and calls to the small closures built below.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from consumer.core.records import Listing, Reason
from consumer.policy.codes import minor_exponent
from consumer.policy.model import Conditions, Effect, FxTable, Money, PolicyModel, Rule
from consumer.policy.taxonomy import TaxonomyIndex, normalise_segment

#: Open window ends; event times are epoch milliseconds, far inside these.
WINDOW_MIN = -(2**63)
WINDOW_MAX = 2**63

#: Reason code used when a price condition cannot be checked because the currency has no rate.
UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"

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


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    effect: Effect
    allow: bool
    from_ms: int
    until_ms: int
    when: CompiledBlock
    #: when.match, one attribute lookup nearer for the per-listing loop.
    match: Match
    unless: CompiledBlock | None
    #: Allow rules: indexes (in CompiledPolicy.rules) of the rules a match exempts; None = all.
    exempts: frozenset[int] | None
    #: The reason a match produces (reject and review rules), built once.
    reason: Reason | None
    rule: Rule

    @property
    def checks(self) -> tuple[Check, ...]:
        """The leaf checks of `when` itself."""
        return self.when.checks

    @property
    def prices(self) -> tuple[PriceCheck, ...]:
        """The price conditions of `when` itself."""
        return self.when.prices


@dataclass(frozen=True, slots=True, eq=False)
class CompiledPolicy:
    """What `evaluate` runs on. `scope_sites` None means every site is in scope.

    Compared by identity: two compilations hold different closures, and `version` is the value
    to compare when asking whether two policies say the same thing.
    """

    model: PolicyModel
    policy_id: str
    version: str
    timezone: str
    tz: ZoneInfo
    scope_sites: frozenset[str] | None
    taxonomy: TaxonomyIndex
    rules: tuple[CompiledRule, ...]
    #: Base-currency value of one minor unit per currency (rate / 10**exponent), for explanations.
    rate_per_minor: Mapping[str, float]


def compile_policy(model: PolicyModel) -> CompiledPolicy:
    """Precompute everything per-listing evaluation needs; call once per loaded policy."""
    scope = None if model.scope_sites is None else frozenset(model.scope_sites)
    fx_rates = _rates(model.fx)
    scales = _minor_units_per_base(fx_rates)
    return CompiledPolicy(
        model=model,
        policy_id=model.policy_id,
        version=f"{model.version}+{content_hash(model)[:8]}",
        timezone=model.timezone,
        tz=ZoneInfo(model.timezone),
        scope_sites=scope,
        taxonomy=TaxonomyIndex.build(model.clusters),
        rules=_compile_rules(model, fx_rates, scales),
        rate_per_minor={
            code: float(rate / 10 ** minor_exponent(code)) for code, rate in fx_rates.items()
        },
    )


def content_hash(model: PolicyModel) -> str:
    """sha256 of the model as canonical JSON: comments, layout, key order and equal spellings of a
    date or number do not change it; any change to what the policy says does.

    YAML mappings whose order means nothing (fx.rates, attribute_equals) are hashed as mappings;
    lists and the clusters mapping keep their order, because order decides cluster ties and the
    order of reasons.
    """
    canonical = json.dumps(
        _content(model),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: format(value.normalize(), "f"),  # only Decimal reaches here
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _content(model: PolicyModel) -> dict[str, object]:
    """What `dataclasses.asdict(model)` gives, with the unordered pairs as mappings, built directly.

    asdict deep-copies every value, which took seconds for a 50,000-rule policy; the unit tests
    check this against asdict, so the hash of a given policy never changes.
    """
    fx = model.fx
    content: dict[str, object] = {
        "policy_id": model.policy_id,
        "version": model.version,
        "rules": [_rule_content(rule) for rule in model.rules],
        "description": model.description,
        "timezone": model.timezone,
        "scope_sites": model.scope_sites,
        "clusters": [
            {"name": c.name, "category_paths": c.category_paths, "category_ids": c.category_ids}
            for c in model.clusters
        ],
        "fx": None if fx is None else {"base": fx.base, "rates": dict(fx.rates)},
    }
    if model.conditions:  # only then: a file without the new keys keeps its version hash
        content["conditions"] = {name: _when_content(block) for name, block in model.conditions}
    return content


def _rule_content(rule: Rule) -> dict[str, object]:
    content: dict[str, object] = {
        "id": rule.id,
        "effect": rule.effect,
        "when": _when_content(rule.when),
        "reason": rule.reason,
        "message": rule.message,
        "effective_from_ms": rule.effective_from_ms,
        "effective_until_ms": rule.effective_until_ms,
    }
    # Keys added by issue 15 appear only when set, so every older file keeps its version hash.
    if rule.unless is not None:
        content["unless"] = _when_content(rule.unless)
    if rule.exempts is not None and rule.exempts != ("*",):  # ["*"] says what no key says
        content["exempts"] = list(rule.exempts)
    return content


_LEAF_FIELDS = tuple(field.name for field in dataclasses.fields(Conditions))[:-4]


def _when_content(when: Conditions) -> dict[str, object]:
    content: dict[str, object] = {name: getattr(when, name) for name in _LEAF_FIELDS}
    for key in ("price_below", "price_at_least"):
        money = content[key]
        if isinstance(money, Money):
            content[key] = {"amount": money.amount, "currency": money.currency}
    if when.attribute_equals is not None:
        content["attribute_equals"] = dict(when.attribute_equals)
    if when.all_of is not None:
        content["all"] = [_when_content(item) for item in when.all_of]
    if when.any_of is not None:
        content["any"] = [_when_content(item) for item in when.any_of]
    if when.not_ is not None:
        content["not"] = _when_content(when.not_)
    if when.condition is not None:
        content["condition"] = when.condition
    return content


def _rates(fx: FxTable | None) -> dict[str, Fraction]:
    if fx is None:
        return {}
    rates = {code: Fraction(rate) for code, rate in fx.rates}
    rates[fx.base] = Fraction(1)
    return rates


def _minor_units_per_base(rates: Mapping[str, Fraction]) -> dict[str, tuple[int, int]]:
    """Minor units of each currency worth one base unit, as (numerator, denominator), once per
    compile: a threshold is then two integer products and a division, not Fraction arithmetic
    (seconds for 50,000 price rules)."""
    out: dict[str, tuple[int, int]] = {}
    for code, rate in rates.items():
        scale = Fraction(10 ** minor_exponent(code)) / rate
        out[code] = (scale.numerator, scale.denominator)
    return out


def _compile_rules(
    model: PolicyModel, rates: Mapping[str, Fraction], scales: Mapping[str, tuple[int, int]]
) -> tuple[CompiledRule, ...]:
    blocks = _BlockCompiler(dict(model.conditions), rates, scales)
    index = {rule.id: i for i, rule in enumerate(model.rules)}
    return tuple(_compile_rule(rule, blocks, index) for rule in model.rules)


def _compile_rule(rule: Rule, blocks: _BlockCompiler, index: Mapping[str, int]) -> CompiledRule:
    allow = rule.effect == "allow"
    reason = None
    if not allow:
        default = "rejected" if rule.effect == "reject" else "sent to review"
        message = rule.message or f"{default} by rule {rule.id}"
        code = rule.reason or ("REJECTED" if rule.effect == "reject" else "REVIEW")
        reason = Reason(code, rule.id, message)  # load requires a reason
    when = blocks.block(rule.when)
    exempts = None
    if allow and rule.exempts is not None and rule.exempts != ("*",):
        exempts = frozenset(index[rule_id] for rule_id in rule.exempts)  # load checked the ids
    return CompiledRule(
        id=rule.id,
        effect=rule.effect,
        allow=allow,
        from_ms=WINDOW_MIN if rule.effective_from_ms is None else rule.effective_from_ms,
        until_ms=WINDOW_MAX if rule.effective_until_ms is None else rule.effective_until_ms,
        when=when,
        match=when.match,
        unless=None if rule.unless is None else blocks.block(rule.unless),
        exempts=exempts,
        reason=reason,
        rule=rule,
    )


class _BlockCompiler:
    """Condition blocks to CompiledBlocks; each named condition is compiled once and shared.

    load has rejected cycles, unknown names and nesting deeper than MAX_BLOCK_DEPTH, so the
    recursion here is at most that deep.
    """

    def __init__(
        self,
        named: Mapping[str, Conditions],
        rates: Mapping[str, Fraction],
        scales: Mapping[str, tuple[int, int]],
    ) -> None:
        self.named = named
        self.rates = rates
        self.scales = scales
        self.done: dict[str, CompiledBlock] = {}

    def block(self, block: Conditions) -> CompiledBlock:
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
        checks = _checks(block)
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
    limit_in_base = Fraction(money.amount) * rates[money.currency]
    num, den = limit_in_base.numerator, limit_in_base.denominator
    thresholds = {code: -(-num * s_num // (den * s_den)) for code, (s_num, s_den) in scales.items()}
    return PriceCheck(key, below, thresholds)


def normalise_hs_code(hs_code: str) -> str:
    """HS codes are compared as digits only, so "4901.99" and "4901 99" match prefix "4901"."""
    return hs_code.replace(".", "").replace(" ", "")


def _checks(when: Conditions) -> tuple[Check, ...]:
    """One closure per set condition, in CONDITION_KEYS order; price conditions are handled apart."""
    checks: list[Check] = []

    def add(key: str, test: Test) -> None:
        checks.append(Check(key, test))

    if when.cross_border is not None:
        wanted = when.cross_border
        add("cross_border", lambda listing, cross_border, cluster: cross_border is wanted)
    if when.cluster_in is not None:
        clusters_in = frozenset(when.cluster_in)
        add("cluster_in", lambda listing, cross_border, cluster: cluster in clusters_in)
    if when.cluster_not_in is not None:
        clusters_out = frozenset(when.cluster_not_in)
        add("cluster_not_in", lambda listing, cross_border, cluster: cluster not in clusters_out)
    if when.site_in is not None:
        sites = frozenset(when.site_in)
        add("site_in", lambda listing, cross_border, cluster: listing.site in sites)
    if when.seller_in is not None:
        sellers_in = frozenset(when.seller_in)
        add("seller_in", lambda listing, cross_border, cluster: listing.seller_id in sellers_in)
    if when.seller_not_in is not None:
        sellers_out = frozenset(when.seller_not_in)
        add(
            "seller_not_in",
            lambda listing, cross_border, cluster: listing.seller_id not in sellers_out,
        )
    if when.seller_country_in is not None:
        seller_countries = frozenset(when.seller_country_in)
        add(
            "seller_country_in",
            lambda listing, cross_border, cluster: listing.seller_country in seller_countries,
        )
    if when.ship_from_in is not None:
        ship_from = frozenset(when.ship_from_in)
        add(
            "ship_from_in",
            lambda listing, cross_border, cluster: listing.ship_from_country in ship_from,
        )
    if when.brand_in is not None:
        brands = frozenset(normalise_segment(brand) for brand in when.brand_in)
        add("brand_in", lambda listing, cross_border, cluster: _brand_in(listing.brand, brands))
    if when.hs_code_prefix_in is not None:
        hs_in = tuple(when.hs_code_prefix_in)
        add(
            "hs_code_prefix_in",
            lambda listing, cross_border, cluster: (
                listing.hs_code is not None and normalise_hs_code(listing.hs_code).startswith(hs_in)
            ),
        )
    if when.hs_code_prefix_not_in is not None:
        hs_out = tuple(when.hs_code_prefix_not_in)
        add(
            "hs_code_prefix_not_in",
            lambda listing, cross_border, cluster: (
                listing.hs_code is None or not normalise_hs_code(listing.hs_code).startswith(hs_out)
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
    return tuple(checks)


def _brand_in(brand: str | None, brands: frozenset[str]) -> bool:
    return brand is not None and normalise_segment(brand) in brands


def price_in_base(compiled: CompiledPolicy, amount_minor: int, currency: str) -> Decimal | None:
    """The listing price in fx.base units for explanations; None when the currency has no rate."""
    rates = _rates(compiled.model.fx)
    if currency not in rates:
        return None
    exact = Fraction(amount_minor, 10 ** minor_exponent(currency)) * rates[currency]
    return Decimal(exact.numerator) / Decimal(exact.denominator)
