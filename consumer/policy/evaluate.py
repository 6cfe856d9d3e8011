"""evaluate(listing, compiled) -> Verdict: pure, deterministic, and cheap per listing.

Choices the issue leaves open:
- `matched_rules` names every in-window rule whose `when` matched, allow, review and reject, in
  file order, whatever the outcome and whatever was exempted, so the decision record shows what
  was waived; `exemptions` says which matched rules did not apply and why.
- The outcome is the most severe non-exempted matched rule's: REJECTED over REVIEW over APPROVED;
  the reasons are those of the rules that give that outcome, in file order.
- A listing whose currency has no fx rate: a reject or review rule whose `when` can only be
  decided by the price matches with reason code UNKNOWN_CURRENCY (fail closed); an allow rule or
  an `unless` that depends on the price does not hold, because an exemption that cannot be
  checked must not be granted (also fail closed). Blocks combine unknowns as three-valued logic:
  `any` is true when one item is true, `not` of unknown is unknown.
- `cluster_not_in` holds for a listing with no cluster.
- Dated lists and fx tables: the list version and fx table in force at the time rule windows are
  checked against (event_time or as_of) are used. A currency without a rate in the table in
  force (or a listing before the first table begins) is unknown, as above: fail closed.
- The decision's `fx` names the fx table (its effective_from) and the rate of the listing's
  currency when a rule among its reasons has a price condition in its `when`; rate None (with
  reason UNKNOWN_CURRENCY) when the table in force has none. Otherwise `fx` is None.
- A `{list: NAME}` with no version in force is an empty list: `_in` fails, `_not_in` holds.
- The UNKNOWN_CURRENCY reason's text is generated, not written by the policy: in Indonesian and
  English when the policy's languages include them (`message` in the default language when it is
  one of the two, else English); a policy without default_language gets the English text alone.
- A reject or review rule with a text condition in its `when` names in its reason the phrase
  (as the policy writes it) of those conditions found first in the title, the longer of two
  starting at the same word; None when none was found (the rule held by another branch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final, cast

from consumer.core.records import Exemption, Listing, ListingRow, Outcome, Reason, Verdict
from consumer.policy.compile import UNKNOWN_CURRENCY, CompiledPolicy, CompiledRule
from consumer.policy.messages import unknown_currency_messages

#: What a verdict depends on, and nothing else (see scan): cluster, cross-border, the matched
#: rules in file order as `index << 2 | flags` (UNKNOWN_PRICE, UNLESS_HELD), and, when a matched
#: reject or review rule checks a price, (the fx table in force's from_ms or None, the listing's
#: currency), and, for each matched reject or review rule with a text condition, in order, the
#: phrase its reason names (None: none; () for a policy without text conditions). Equal
#: keys mean equal verdicts under one policy, so the hot path can keep one verdict (and its
#: encoded bytes) per key.
VerdictKey = tuple[
    str | None, bool, tuple[int, ...], tuple[int | None, str] | None, tuple[str | None, ...]
]

#: Flag of a matched rule in a VerdictKey: its `when` held only because a price was unknown.
UNKNOWN_PRICE: Final = 1
#: Flag of a matched rule in a VerdictKey: its `unless` held, so it is exempted.
UNLESS_HELD: Final = 2
#: What Exemption.by says when a rule's own `unless` exempted it.
BY_UNLESS: Final = "unless"


def is_cross_border(listing: Listing | ListingRow) -> bool:
    """The channel when the producer set it, otherwise shipping from abroad."""
    if listing.channel is not None:
        return listing.channel == "CROSS_BORDER"
    return listing.ship_from_country != listing.site


def evaluate(
    listing: Listing | ListingRow, compiled: CompiledPolicy, as_of_ms: int | None = None
) -> Verdict:
    """Decide one listing; out-of-scope sites are APPROVED without evaluating any rule.

    Rule windows are checked against the listing's event_time, or against `as_of_ms` when given:
    "is this existing listing allowed as of T" (a backtest or a re-enforcement).
    """
    return verdict_of(scan(listing, compiled, as_of_ms), compiled)


def scan(
    listing: Listing | ListingRow, compiled: CompiledPolicy, as_of_ms: int | None = None
) -> VerdictKey:
    """Evaluate the rules and say what the verdict depends on, without building it.

    The key does not hold the time: two listings with equal keys have equal verdicts whatever
    time their windows were checked against.
    """
    cross_border = is_cross_border(listing)
    cluster = compiled.taxonomy.cluster_of(listing.category_id, listing.category_path)
    scope = compiled.scope_sites
    if scope is not None and listing.site not in scope:
        return (cluster, cross_border, (), None, ())
    now = listing.event_time_ms if as_of_ms is None else as_of_ms
    matched: list[int] = []
    # The rule checks are typed for Listing; a ListingRow has the same attributes.
    as_listing = cast(Listing, listing)
    # Dated lists and fx tables: the rules compiled for the period `now` is in. Which period it
    # was shows in the key as the rules that matched, so the key still says all a verdict needs.
    if compiled.period_starts:
        period = compiled.period_at(now)
        rules, fx_from = period.rules, period.fx_from_ms
    else:
        rules, fx_from = compiled.rules, None
    priced = False
    phrases: list[str | None] | None = None
    for index, rule in enumerate(rules):
        if not rule.from_ms <= now < rule.until_ms:
            continue
        held = rule.match(as_listing, cross_border, cluster)
        if held is True:
            flags = 0
        elif held is None and not rule.allow:
            # fail closed: a reject or review rule whose price cannot be converted matches
            flags = UNKNOWN_PRICE
        else:
            continue
        unless = rule.unless
        if unless is not None and unless.match(as_listing, cross_border, cluster) is True:
            flags |= UNLESS_HELD  # an unknown price never grants an exemption
        if rule.priced:
            priced = True  # the decision may name the fx table and rate (see verdict_of)
        if rule.phrases is not None and not rule.allow:
            # the phrase is part of the key: equal rules with other phrases are other verdicts
            if phrases is None:
                phrases = []
            found = rule.phrases.first(as_listing)  # as this period's rule spells it
            phrases.append(None if found < 0 else rule.phrases.spellings[found])
        matched.append(index << 2 | flags)
    fx = (fx_from, listing.price.currency) if priced else None
    return (cluster, cross_border, tuple(matched), fx, () if phrases is None else tuple(phrases))


def verdict_of(key: VerdictKey, compiled: CompiledPolicy) -> Verdict:
    """The verdict a scan key stands for."""
    cluster, cross_border, matched, fx_key, phrases = key
    next_phrase = iter(phrases)
    unknown_currency = None if fx_key is None else fx_key[1]
    rules = compiled.rules
    allows = [rules[entry >> 2] for entry in matched if rules[entry >> 2].allow]
    rejects: list[Reason] = []
    reviews: list[Reason] = []
    priced = {"reject": False, "review": False}
    exemptions: list[Exemption] = []
    for entry in matched:
        index = entry >> 2
        rule = rules[index]
        if rule.allow:
            continue
        phrase = None if rule.phrases is None else next(next_phrase)
        by = [BY_UNLESS] if entry & UNLESS_HELD else []
        by += [a.id for a in allows if a.exempts is None or index in a.exempts]
        if by:
            exemptions.extend(Exemption(rule.id, name) for name in by)
            continue
        reason = rule.reason
        if reason is None or entry & UNKNOWN_PRICE:
            reason = unknown_currency_reason(rule, unknown_currency or "", compiled.model.languages)
        if phrase is not None:
            reason = dataclasses.replace(reason, phrase=phrase)
        (rejects if rule.effect == "reject" else reviews).append(reason)
        priced[rule.effect] = priced[rule.effect] or rule.priced
    matched_ids = tuple(rules[entry >> 2].id for entry in matched)
    exempted = tuple(exemptions)
    outcome: Outcome = "REJECTED" if rejects else "REVIEW" if reviews else "APPROVED"
    fx = None
    if fx_key is not None and priced.get("reject" if rejects else "review" if reviews else ""):
        fx = compiled.fx_used(fx_key[0], fx_key[1])
    reasons = tuple(rejects or reviews)
    return Verdict(outcome, reasons, matched_ids, cluster, cross_border, exempted, fx)


def rule_matches(
    rule: CompiledRule, listing: Listing, cross_border: bool, cluster: str | None
) -> bool | None:
    """Whether the rule's `when` holds; None when it depends on a price without an fx rate."""
    return rule.match(listing, cross_border, cluster)


def unknown_currency_reason(
    rule: CompiledRule, currency: str, languages: Sequence[str] = ()
) -> Reason:
    """The reason of a rule that failed closed on a currency without a rate: a text the policy
    does not write, generated in those of its languages this project writes (id, en)."""
    message, messages = unknown_currency_messages(languages, currency, rule.id)
    return Reason(UNKNOWN_CURRENCY, rule.id, message, messages)
