"""PolicyModel to CompiledPolicy, once per load: sets, prefix index, price thresholds, version hash.

Everything a listing's evaluation needs is decided here, so `evaluate` only does set and dict
lookups, integer comparisons and calls to the small closures consumer.policy.blocks builds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from consumer.core.records import Listing, ListingRow, Reason, Verdict
from consumer.policy.blocks import BlockCompiler, Check, CompiledBlock, Match, PriceCheck
from consumer.policy.codes import minor_exponent
from consumer.policy.model import Conditions, Effect, FxTable, Money, PolicyModel, Rule
from consumer.policy.taxonomy import TaxonomyIndex

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
    blocks = BlockCompiler(dict(model.conditions), rates, scales)
    index = {rule.id: i for i, rule in enumerate(model.rules)}
    return tuple(_compile_rule(rule, blocks, index) for rule in model.rules)


def _compile_rule(rule: Rule, blocks: BlockCompiler, index: Mapping[str, int]) -> CompiledRule:
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


def price_in_base(compiled: CompiledPolicy, amount_minor: int, currency: str) -> Decimal | None:
    """The listing price in fx.base units for explanations; None when the currency has no rate."""
    rates = _rates(compiled.model.fx)
    if currency not in rates:
        return None
    exact = Fraction(amount_minor, 10 ** minor_exponent(currency)) * rates[currency]
    return Decimal(exact.numerator) / Decimal(exact.denominator)


# At the end: evaluate imports this module's names, and CompiledPolicy's scan/verdict_of call it.
import consumer.policy.evaluate as _evaluate  # noqa: E402
