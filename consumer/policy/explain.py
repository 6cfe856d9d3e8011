"""Readable accounts for people: one listing's evaluation (`check --explain`) and a policy summary.

`explain` runs the same compiled checks as `evaluate` and prints evaluate's own verdict, so the
account cannot drift from the decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from consumer.core.records import Listing
from consumer.policy.compile import CompiledPolicy, CompiledRule, compile_policy, price_in_base
from consumer.policy.evaluate import evaluate, is_cross_border
from consumer.policy.model import Conditions, Money, PolicyModel, Rule

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def explain(listing: Listing, compiled: CompiledPolicy, as_of_ms: int | None = None) -> str:
    """A multi-line account: scope, cross-border, cluster, every rule and condition, the outcome.

    With `as_of_ms`, rule windows are checked against it instead of the listing's event_time.
    """
    verdict = evaluate(listing, compiled, as_of_ms)
    tz = compiled.tz
    lines = [
        f"listing {listing.listing_id} (event {listing.event_id}) at "
        f"{_when(listing.event_time_ms, tz)} [{compiled.timezone}]",
        *([] if as_of_ms is None else [f"rule windows checked as of {_when(as_of_ms, tz)}"]),
        f"policy {compiled.policy_id} version {compiled.version}",
        _scope_line(listing, compiled),
        _cross_border_line(listing),
        _cluster_line(listing, compiled),
    ]
    in_scope = compiled.scope_sites is None or listing.site in compiled.scope_sites
    if in_scope:
        lines.append("rules:")
        for rule in compiled.rules:
            lines.extend(
                _rule_lines(
                    rule, listing, verdict.cross_border, verdict.cluster, compiled, as_of_ms
                )
            )
    lines.append(f"outcome: {verdict.outcome}")
    lines.extend(f"  reason {r.code} ({r.rule_id}): {r.message}" for r in verdict.reasons)
    lines.append(f"matched rules: {', '.join(verdict.matched_rules) or 'none'}")
    return "\n".join(lines)


def summarize(policy: PolicyModel | CompiledPolicy) -> str:
    """The one-screen summary `validate-policy` prints for a valid file."""
    compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy)
    model = compiled.model
    sites = "all sites" if model.scope_sites is None else ", ".join(model.scope_sites)
    lines = [
        f"policy: {model.policy_id}",
        f"version: {compiled.version}",
        *([f"description: {model.description.strip()}"] if model.description else []),
        f"timezone: {model.timezone}",
        f"scope: {sites}",
        f"clusters ({len(model.clusters)}):",
        *(
            f"  {c.name}: {len(c.category_paths)} paths, {len(c.category_ids)} ids"
            for c in model.clusters
        ),
    ]
    if model.fx is not None:
        codes = ", ".join(code for code, _ in model.fx.rates)
        lines.append(f"fx: base {model.fx.base}; rates for {codes or 'none'}")
    lines.append(f"rules ({len(model.rules)}):")
    for rule in model.rules:
        effect = rule.effect if rule.reason is None else f"{rule.effect} {rule.reason}"
        lines.append(f"  {rule.id}: {effect}; {_window(rule, compiled.tz)}")
        lines.append(f"    when {_conditions(rule.when)}")
    return "\n".join(lines)


def _when(ms: int, tz: ZoneInfo, timespec: str = "milliseconds") -> str:
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).astimezone(tz).isoformat(timespec=timespec)
    except OverflowError:  # a timestamp-millis outside years 1..9999 is still a valid event
        return f"{ms} ms since the epoch"


def _window(rule: Rule, tz: ZoneInfo) -> str:
    start = (
        "always" if rule.effective_from_ms is None else _when(rule.effective_from_ms, tz, "minutes")
    )
    end = (
        "open" if rule.effective_until_ms is None else _when(rule.effective_until_ms, tz, "minutes")
    )
    return f"from {start} until {end}"


def _scope_line(listing: Listing, compiled: CompiledPolicy) -> str:
    if compiled.scope_sites is None:
        return f"scope: site {listing.site} is in scope (the policy covers every site)"
    sites = ", ".join(sorted(compiled.scope_sites))
    if listing.site in compiled.scope_sites:
        return f"scope: site {listing.site} is in scope ({sites})"
    return (
        f"scope: site {listing.site} is out of scope ({sites}); approved without evaluating rules"
    )


def _cross_border_line(listing: Listing) -> str:
    answer = "yes" if is_cross_border(listing) else "no"
    if listing.channel is not None:
        return f"cross-border: {answer} (channel {listing.channel})"
    sign = "!=" if answer == "yes" else "=="
    return f"cross-border: {answer} (no channel; ship_from {listing.ship_from_country} {sign} site {listing.site})"


def _cluster_line(listing: Listing, compiled: CompiledPolicy) -> str:
    path = " > ".join(listing.category_path) or "(empty)"
    match = compiled.taxonomy.lookup(listing.category_id, listing.category_path)
    if match is None:
        return f"cluster: none (category {listing.category_id}, path {path})"
    if match.by_id:
        return f"cluster: {match.cluster} (category_id {listing.category_id} is listed)"
    prefix = " > ".join(match.prefix or ())
    return f"cluster: {match.cluster} (path {path} starts with {prefix})"


def _rule_lines(
    rule: CompiledRule,
    listing: Listing,
    cross_border: bool,
    cluster: str | None,
    compiled: CompiledPolicy,
    as_of_ms: int | None,
) -> list[str]:
    code = rule.rule.reason
    head = f"  {rule.id} ({rule.effect}{'' if code is None else ' ' + code})"
    window = _window(rule.rule, compiled.tz)
    at = listing.event_time_ms if as_of_ms is None else as_of_ms
    if not rule.from_ms <= at < rule.until_ms:
        return [f"{head}: not in effect at this time ({window}); skipped"]
    lines = [f"{head}: in effect ({window})"]
    when = rule.rule.when
    all_hold = True
    for check in rule.checks:
        held = check.test(listing, cross_border, cluster)
        all_hold = all_hold and held
        expected = getattr(when, check.key)
        lines.append(
            f"    {check.key} {_show(expected)}: {'held' if held else 'did not hold'}"
            f" (listing: {_listing_value(check.key, listing, cross_border, cluster)})"
        )
    unknown = False
    price = listing.price
    for price_check in rule.prices:
        held_or_unknown = price_check.holds(price.amount_minor, price.currency)
        money: Money = getattr(when, price_check.key)
        base = price_in_base(compiled, price.amount_minor, price.currency)
        shown = f"{price.amount_minor} minor {price.currency}"
        if base is not None and compiled.model.fx is not None:
            shown += f" = {base:.6f} {compiled.model.fx.base}"
        if held_or_unknown is None:
            unknown = True
            status = "unknown: no fx rate for the listing's currency"
        else:
            all_hold = all_hold and held_or_unknown
            status = "held" if held_or_unknown else "did not hold"
        lines.append(
            f"    {price_check.key} {money.amount} {money.currency}: {status} (listing: {shown})"
        )
    if not all_hold:
        result = "no match"
    elif unknown and rule.allow:
        result = "no match (an allow rule is not granted on an unknown currency)"
    elif unknown:
        result = "matched; reason becomes UNKNOWN_CURRENCY (fail closed)"
    else:
        result = "matched"
    lines.append(f"    -> {result}")
    return lines


def _listing_value(key: str, listing: Listing, cross_border: bool, cluster: str | None) -> str:
    if key == "cross_border":
        return _show(cross_border)
    if key.startswith("cluster"):
        return cluster or "none"
    if key == "attribute_equals":
        return _show(dict(listing.attributes))
    attribute = {
        "site_in": "site",
        "seller_in": "seller_id",
        "seller_not_in": "seller_id",
        "seller_country_in": "seller_country",
        "ship_from_in": "ship_from_country",
        "brand_in": "brand",
        "hs_code_prefix_in": "hs_code",
        "hs_code_prefix_not_in": "hs_code",
    }[key]
    value = getattr(listing, attribute)
    return "none" if value is None else str(value)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return ", ".join(f"{k}={v}" for k, v in value)
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    return str(value)


def _conditions(when: Conditions) -> str:
    parts = []
    for key in when.present():
        value = getattr(when, key)
        shown = f"{value.amount} {value.currency}" if isinstance(value, Money) else _show(value)
        parts.append(f"{key} {shown}")
    return "; ".join(parts)
