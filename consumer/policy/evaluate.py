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

from consumer.events import Listing, Reason, Verdict
from consumer.policy.compile import UNKNOWN_CURRENCY, CompiledPolicy, CompiledRule


def is_cross_border(listing: Listing) -> bool:
    """The channel when the producer set it, otherwise shipping from abroad."""
    if listing.channel is not None:
        return listing.channel == "CROSS_BORDER"
    return listing.ship_from_country != listing.site


def evaluate(listing: Listing, compiled: CompiledPolicy) -> Verdict:
    """Decide one listing; out-of-scope sites are APPROVED without evaluating any rule."""
    cross_border = is_cross_border(listing)
    cluster = compiled.taxonomy.cluster_of(listing.category_id, listing.category_path)
    scope = compiled.scope_sites
    if scope is not None and listing.site not in scope:
        return Verdict("APPROVED", (), (), cluster, cross_border)
    now = listing.event_time_ms
    matched: list[str] = []
    reasons: list[Reason] = []
    allowed = False
    for rule in compiled.rules:
        if not rule.from_ms <= now < rule.until_ms:
            continue
        outcome = rule_matches(rule, listing, cross_border, cluster)
        if outcome is False:
            continue
        if rule.allow:
            if outcome is True:
                allowed = True
                matched.append(rule.id)
            continue
        matched.append(rule.id)
        reason = rule.reason
        if outcome is None or reason is None:
            reason = unknown_currency_reason(rule, listing.price.currency)
        reasons.append(reason)
    if allowed or not reasons:
        return Verdict("APPROVED", (), tuple(matched), cluster, cross_border)
    return Verdict("REJECTED", tuple(reasons), tuple(matched), cluster, cross_border)


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
