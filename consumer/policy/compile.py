"""PolicyModel to CompiledPolicy, once per load: sets, prefix index, price thresholds, version hash.

Everything a listing's evaluation needs is decided here, so `evaluate` only does set and dict
lookups, integer comparisons and calls to the small closures consumer.policy.blocks builds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from bisect import bisect_right
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from consumer.core.records import FxUsed, Listing, ListingRow, Reason, Verdict
from consumer.policy.blocks import BlockCompiler, Check, CompiledBlock, EntrySets, Match, PriceCheck
from consumer.policy.codes import minor_exponent
from consumer.policy.model import (
    NEWER_KEYS,
    Conditions,
    DatedRates,
    Effect,
    FxTable,
    ListVersion,
    Money,
    PolicyModel,
    Rule,
)
from consumer.policy.periods import RuleUses, boundaries, table_at, version_at
from consumer.policy.taxonomy import TaxonomyIndex
from consumer.policy.text import PhraseSet, TitleIndex, rule_phrases

if TYPE_CHECKING:
    from consumer.policy.evaluate import VerdictKey

#: Open window ends; event times are epoch milliseconds, far inside these.
WINDOW_MIN = -(2**63)
WINDOW_MAX = 2**63

#: Reason code used when a price condition cannot be checked because the currency has no rate.
UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"


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
    #: A reject or review rule whose `when` checks a price: a decision it gives names its fx.
    priced: bool = False
    #: The phrases of the text conditions of `when` (not under a `not`): a reason names the one
    #: found first in the title. None when `when` has no text condition.
    phrases: PhraseSet | None = None

    @property
    def checks(self) -> tuple[Check, ...]:
        """The leaf checks of `when` itself."""
        return self.when.checks

    @property
    def prices(self) -> tuple[PriceCheck, ...]:
        """The price conditions of `when` itself."""
        return self.when.prices


@dataclass(frozen=True, slots=True, eq=False)
class Period:
    """The rules as compiled for a span of time in which no list version or fx table changes.

    `fx_from_ms` is when the fx table in force began (None: the undated `fx.rates`, or no table
    yet); `rates` its rates (the base's included) as exact fractions.
    """

    from_ms: int
    rules: tuple[CompiledRule, ...]
    fx_from_ms: int | None
    rates: Mapping[str, Fraction]


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
    #: The periods in time order, the first from WINDOW_MIN; one unless the policy has dated lists
    #: or fx tables. `rules` is the first period's: ids, effects, reasons and exemptions are the
    #: same in every period, only the `when`/`unless` closures differ.
    periods: tuple[Period, ...] = ()
    #: Each period's from_ms, for bisect; empty when there is one period (no lookup per listing).
    period_starts: tuple[int, ...] = ()
    #: fx.base, and each fx table's rates as the policy writes them, by the table's from_ms
    #: (None: the undated fx.rates, or no table yet), for the decision's fx field.
    fx_base: str | None = None
    fx_shown: Mapping[int | None, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    #: Every phrase of every text condition and the automaton over them; None without any.
    text: TitleIndex | None = None

    def fx_used(self, table_from_ms: int | None, currency: str) -> FxUsed | None:
        """What a decision says about the fx table and rate its price rule used."""
        if self.fx_base is None:
            return None
        rate = self.fx_shown.get(table_from_ms, {}).get(currency)
        return FxUsed(table_from_ms, self.fx_base, currency, rate)

    def period_at(self, ms: int) -> Period:
        """The period in force at `ms` (epoch milliseconds)."""
        return (
            self.periods[bisect_right(self.period_starts, ms) - 1]
            if self.period_starts
            else self.periods[0]
        )

    def rules_at(self, ms: int) -> tuple[CompiledRule, ...]:
        """The rules with the list versions and fx table in force at `ms`."""
        if not self.period_starts:
            return self.rules
        return self.periods[bisect_right(self.period_starts, ms) - 1].rules

    # -- consumer.policy.enforced.Enforced: what a policy set (consumer.policy.sets) also offers --

    @property
    def layers(self) -> tuple[CompiledPolicy, ...]:
        """A single policy file is its own only layer."""
        return (self,)

    def scan(self, listing: Listing | ListingRow, as_of_ms: int | None = None) -> VerdictKey:
        """consumer.policy.evaluate.scan of this policy."""
        return _evaluate.scan(listing, self, as_of_ms)

    def verdict_of(self, key: Hashable) -> Verdict:
        """consumer.policy.evaluate.verdict_of of this policy; `key` is a scan key of it."""
        return _evaluate.verdict_of(cast("VerdictKey", key), self)


def compile_policy(model: PolicyModel) -> CompiledPolicy:
    """Precompute everything per-listing evaluation needs; call once per loaded policy."""
    scope = None if model.scope_sites is None else frozenset(model.scope_sites)
    text = TitleIndex()
    periods = _periods(model, text)
    text.build()
    dated = len(periods) > 1
    return CompiledPolicy(
        model=model,
        policy_id=model.policy_id,
        version=f"{model.version}+{content_hash(model)[:8]}",
        timezone=model.timezone,
        tz=ZoneInfo(model.timezone),
        scope_sites=scope,
        taxonomy=TaxonomyIndex.build(model.clusters),
        rules=periods[0].rules,
        rate_per_minor=_per_minor(periods[0].rates),
        periods=periods,
        period_starts=tuple(p.from_ms for p in periods) if dated else (),
        fx_base=None if model.fx is None else model.fx.base,
        fx_shown=_fx_shown(model),
        text=text if text.ids else None,
    )


def _fx_shown(model: PolicyModel) -> dict[int | None, dict[str, str]]:
    fx = model.fx
    if fx is None:
        return {}
    base = {fx.base: "1"}
    tables: dict[int | None, dict[str, str]] = {None: {**_shown(fx.rates), **base}}
    for table in model.fx_tables:
        tables[table.from_ms] = {**_shown(table.rates), **base}
    return tables


def _shown(rates: tuple[tuple[str, Decimal], ...]) -> dict[str, str]:
    return {code: format(rate.normalize(), "f") for code, rate in rates}


def _per_minor(rates: Mapping[str, Fraction]) -> dict[str, float]:
    return {code: float(rate / 10 ** minor_exponent(code)) for code, rate in rates.items()}


def _periods(model: PolicyModel, text: TitleIndex) -> tuple[Period, ...]:
    """One Period per span between list version and fx table boundaries (one if there are none).

    A rule is compiled again only for the list versions and fx table it uses: a rule that uses
    neither is one CompiledRule shared by every period, so the cost grows with the dated
    versions a rule uses, not with periods x rules.
    """
    tables = model.fx_tables
    starts = [WINDOW_MIN, *(b for b in boundaries(model) if b > WINDOW_MIN)]
    named = dict(model.conditions)
    uses = RuleUses(named)
    index = {rule.id: i for i, rule in enumerate(model.rules)}
    depends = [uses.rule(rule) for rule in model.rules]
    sets = EntrySets()
    done: dict[tuple[object, ...], CompiledRule] = {}
    out: list[Period] = []
    for start in starts:
        in_force = {name: version_at(versions, start) for name, versions in model.lists}
        table = table_at(tables, start) if tables else None
        rates = _rates(model.fx) if table is None else _dated_rates(model.fx, table)
        scales = _minor_units_per_base(rates)
        blocks = BlockCompiler(named, rates, scales, _entries(in_force), sets, text)
        rules: list[CompiledRule] = []
        for i, rule in enumerate(model.rules):
            lists, priced = depends[i]
            key = (i, tuple(id(in_force[name]) for name in lists), id(table) if priced else None)
            compiled = done.get(key)
            if compiled is None:
                compiled = done[key] = _compile_rule(rule, blocks, index)
            rules.append(compiled)
        fx_from = None if table is None else table.from_ms
        out.append(Period(start, tuple(rules), fx_from, rates))
    return tuple(out)


def _entries(in_force: Mapping[str, ListVersion | None]) -> dict[str, tuple[str, ...]]:
    """Each list's entries in force; a list with no version in force is empty (`_in` fails)."""
    return {name: () if v is None else v.entries for name, v in in_force.items()}


def _dated_rates(fx: FxTable | None, table: DatedRates) -> dict[str, Fraction]:
    rates = {code: Fraction(rate) for code, rate in table.rates}
    if fx is not None:
        rates[fx.base] = Fraction(1)
    return rates


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
    if model.default_language is not None:  # issue 16; absent, older files keep their hash
        content["default_language"] = model.default_language
    if model.conditions:  # only then: a file without the new keys keeps its version hash
        content["conditions"] = {name: _when_content(block) for name, block in model.conditions}
    if model.lists:  # the entries themselves, so editing a list file changes the version
        content["lists"] = {
            name: [
                {"from_ms": v.from_ms, "until_ms": v.until_ms, "entries": v.entries}
                for v in versions
            ]
            for name, versions in model.lists
        }
    if fx is not None and model.fx_tables:
        content["fx"] = {
            "base": fx.base,
            "tables": [{"from_ms": t.from_ms, "rates": dict(t.rates)} for t in model.fx_tables],
        }
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
    if rule.messages:  # a message map (issue 16): every translation, as a mapping
        content["messages"] = dict(rule.messages)
    return content


_LEAF_FIELDS = tuple(field.name for field in dataclasses.fields(Conditions))[:-5]


def _when_content(when: Conditions) -> dict[str, object]:
    content: dict[str, object] = {name: getattr(when, name) for name in _LEAF_FIELDS}
    for key in NEWER_KEYS:  # unset: left out, so files written before the key keep their hash
        if content[key] is None:
            del content[key]
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
    if when.lists is not None:
        content["lists"] = dict(when.lists)
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


def _compile_rule(rule: Rule, blocks: BlockCompiler, index: Mapping[str, int]) -> CompiledRule:
    allow = rule.effect == "allow"
    reason = None
    if not allow:
        default = "rejected" if rule.effect == "reject" else "sent to review"
        message = rule.message or f"{default} by rule {rule.id}"
        code = rule.reason or ("REJECTED" if rule.effect == "reject" else "REVIEW")
        reason = Reason(code, rule.id, message, rule.messages)  # load requires a reason
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
        priced=not allow and when.priced,
        phrases=rule_phrases(when.phrase_sets()),
    )


def price_in_base(
    compiled: CompiledPolicy, amount_minor: int, currency: str, at_ms: int | None = None
) -> Decimal | None:
    """The listing price in fx.base units for explanations, with the fx table in force at `at_ms`;
    None when the currency has no rate."""
    rates = compiled.periods[0].rates if at_ms is None else compiled.period_at(at_ms).rates
    if currency not in rates:
        return None
    exact = Fraction(amount_minor, 10 ** minor_exponent(currency)) * rates[currency]
    return Decimal(exact.numerator) / Decimal(exact.denominator)


# At the end: evaluate imports this module's names, and CompiledPolicy's scan/verdict_of call it.
import consumer.policy.evaluate as _evaluate  # noqa: E402
