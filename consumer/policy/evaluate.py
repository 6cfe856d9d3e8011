"""evaluate(listing, compiled) -> Verdict: pure, deterministic, and cheap per listing.

Choices the issue leaves open:
- `matched_rules` names every in-window rule whose conditions matched, allow and reject, in file
  order, whatever the outcome; when an allow rule wins, the reject rules it overrode are listed too,
  so the decision record shows what was waived.
- A listing whose currency has no fx rate: a reject rule whose other conditions hold matches with
  reason code UNKNOWN_CURRENCY (fail closed); an allow rule with a price condition does not match,
  because an exemption that cannot be checked must not be granted (also fail closed).
- `cluster_not_in` holds for a listing with no cluster.
"""

from __future__ import annotations

from typing import cast

from consumer.core.records import Listing, ListingRow, Reason, Verdict
from consumer.policy.compile import UNKNOWN_CURRENCY, CompiledPolicy, CompiledRule

#: What a verdict depends on, and nothing else (see scan): cluster, cross-border, indexes of the
#: matched rules in file order, and the listing's currency when it has no fx rate and a matched
#: reject rule needed one. Equal keys mean equal verdicts under one policy, so the hot path can
#: keep one verdict (and its encoded bytes) per key.
VerdictKey = tuple[str | None, bool, tuple[int, ...], str | None]


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
        return (cluster, cross_border, (), None)
    now = listing.event_time_ms if as_of_ms is None else as_of_ms
    matched: list[int] = []
    unknown = False
    # The rule checks are typed for Listing; a ListingRow has the same attributes.
    as_listing = cast(Listing, listing)
    for index, rule in enumerate(compiled.rules):
        if not rule.from_ms <= now < rule.until_ms:
            continue
        outcome = rule_matches(rule, as_listing, cross_border, cluster)
        if outcome is True:
            matched.append(index)
        elif outcome is None and not rule.allow:
            # fail closed: a reject rule whose price cannot be converted matches; an allow rule not
            matched.append(index)
            unknown = True
    return (cluster, cross_border, tuple(matched), listing.price.currency if unknown else None)


def verdict_of(key: VerdictKey, compiled: CompiledPolicy) -> Verdict:
    """The verdict a scan key stands for."""
    cluster, cross_border, matched, unknown_currency = key
    rules = compiled.rules
    reasons: list[Reason] = []
    allowed = False
    for index in matched:
        rule = rules[index]
        if rule.allow:
            allowed = True
            continue
        reason = rule.reason
        if reason is None or (unknown_currency is not None and rule.prices):
            # every price check shares one rate table: unknown for one is unknown for all
            reason = unknown_currency_reason(rule, unknown_currency or "")
        reasons.append(reason)
    matched_ids = tuple(rules[index].id for index in matched)
    if allowed or not reasons:
        return Verdict("APPROVED", (), matched_ids, cluster, cross_border)
    return Verdict("REJECTED", tuple(reasons), matched_ids, cluster, cross_border)


def rule_matches(
    rule: CompiledRule, listing: Listing, cross_border: bool, cluster: str | None
) -> bool | None:
    """True or False; None when every other condition holds but the price cannot be converted."""
    for check in rule.checks:
        if not check.test(listing, cross_border, cluster):
            return False
    if not rule.prices:
        return True
    price = listing.price
    for price_check in rule.prices:
        holds = price_check.holds(price.amount_minor, price.currency)
        if holds is None:
            return None  # all price checks share one rate table: unknown for one is unknown for all
        if not holds:
            return False
    return True


def unknown_currency_reason(rule: CompiledRule, currency: str) -> Reason:
    msg = (
        f"price currency {currency!r} has no fx rate in the policy, so rule {rule.id} fails closed"
    )
    return Reason(UNKNOWN_CURRENCY, rule.id, msg)
