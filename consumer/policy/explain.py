"""Readable accounts for people: one listing's evaluation (`check --explain`) and a policy summary.

`explain` runs the same compiled checks as `evaluate` and prints evaluate's own verdict, so the
account cannot drift from the decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from consumer.core.records import Listing, Reason
from consumer.policy.blocks import CompiledBlock
from consumer.policy.compile import (
    CompiledPolicy,
    CompiledRule,
    compile_policy,
    price_in_base,
)
from consumer.policy.evaluate import BY_UNLESS, evaluate, is_cross_border
from consumer.policy.model import Conditions, Money, PolicyModel, Rule

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Inline phrases an explanation prints before "... N more".
_PHRASES_SHOWN = 10


def explain(
    listing: Listing,
    compiled: CompiledPolicy,
    as_of_ms: int | None = None,
    language: str | None = None,
) -> str:
    """A multi-line account: scope, cross-border, cluster, every rule and condition, the outcome.

    With `as_of_ms`, rule windows are checked against it instead of the listing's event_time.
    With `language`, reasons read in that language where the policy writes it (Reason.message_in).
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
        at = listing.event_time_ms if as_of_ms is None else as_of_ms
        period = compiled.period_at(at)
        if period.fx_from_ms is not None:
            lines.append(f"fx table in force: from {_when(period.fx_from_ms, tz, 'minutes')}")
        elif compiled.model.fx_tables:
            lines.append("fx table in force: none yet (every currency but the base is unknown)")
        lines.append("rules:")
        for rule in period.rules:
            lines.extend(
                _rule_lines(
                    rule, listing, verdict.cross_border, verdict.cluster, compiled, as_of_ms
                )
            )
    lines.append(f"outcome: {verdict.outcome}")
    lines.extend(reason_line(r, language) for r in verdict.reasons)
    lines.extend(
        f"  exempted {e.rule_id} by {'its unless' if e.by == BY_UNLESS else 'allow rule ' + e.by}"
        for e in verdict.exemptions
    )
    fx = verdict.fx
    if fx is not None:
        table = (
            "fx.rates"
            if fx.table_from_ms is None
            else f"fx table from {_when(fx.table_from_ms, tz, 'minutes')}"
        )
        rate = "no rate" if fx.rate is None else f"1 {fx.currency} = {fx.rate} {fx.base}"
        lines.append(f"  fx used: {table}, {rate}")
    lines.append(f"matched rules: {', '.join(verdict.matched_rules) or 'none'}")
    return "\n".join(lines)


def reason_line(reason: Reason, language: str | None = None) -> str:
    """`  reason CODE (rule): message`, the message in `language` where the rule has it, and
    the phrase a text rule matched."""
    line = f"  reason {reason.code} ({reason.rule_id}): {reason.message_in(language)}"
    return line if reason.phrase is None else f"{line} [phrase {reason.phrase!r}]"


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
        *([f"languages: {_languages(model.languages)}"] if model.languages else []),
        f"scope: {sites}",
        f"clusters ({len(model.clusters)}):",
        *(
            f"  {c.name}: {len(c.category_paths)} paths, {len(c.category_ids)} ids"
            for c in model.clusters
        ),
    ]
    if model.fx is not None and model.fx_tables:
        lines.append(f"fx: base {model.fx.base}; {len(model.fx_tables)} dated tables:")
        for table in model.fx_tables:
            codes = ", ".join(code for code, _ in table.rates)
            lines.append(
                f"  from {_when(table.from_ms, compiled.tz, 'minutes')}: {codes or 'none'}"
            )
    elif model.fx is not None:
        codes = ", ".join(code for code, _ in model.fx.rates)
        lines.append(f"fx: base {model.fx.base}; rates for {codes or 'none'}")
    if model.lists:
        lines.append(f"lists ({len(model.lists)}):")
        for name, versions in model.lists:
            lines.append(f"  {name}:")
            for version in versions:
                until = (
                    "open"
                    if version.until_ms is None
                    else _when(version.until_ms, compiled.tz, "minutes")
                )
                source = "" if version.file is None else f" from {version.file}"
                lines.append(
                    f"    {_when(version.from_ms, compiled.tz, 'minutes')} .. {until}: "
                    f"{_entries(len(version.entries))}{source}"
                )
    if model.conditions:
        lines.append(f"conditions ({len(model.conditions)}):")
        lines.extend(f"  {name}: {_conditions(block)}" for name, block in model.conditions)
    lines.append(f"rules ({len(model.rules)}):")
    for rule in model.rules:
        effect = rule.effect if rule.reason is None else f"{rule.effect} {rule.reason}"
        lines.append(f"  {rule.id}: {effect}; {_window(rule, compiled.tz)}")
        lines.append(f"    when {_conditions(rule.when)}")
        if rule.unless is not None:
            lines.append(f"    unless {_conditions(rule.unless)}")
        if rule.effect == "allow":
            exempts = rule.exempts
            every = exempts is None or exempts == ("*",)
            lines.append(f"    exempts {'every rule' if every else ', '.join(exempts or ())}")
    return "\n".join(lines)


def _languages(tags: tuple[str, ...]) -> str:
    """`id (default), en`: the policy's message languages, default first."""
    return ", ".join(f"{tag} (default)" if i == 0 else tag for i, tag in enumerate(tags))


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
    facts = _Facts(listing, cross_border, cluster, compiled, at)
    held = _block_lines(rule.when, facts, "    ", lines)
    if held is False:
        result = "no match"
    elif held is None and rule.allow:
        result = "no match (an allow rule is not granted on an unknown currency)"
    elif held is None:
        result = "matched; reason becomes UNKNOWN_CURRENCY (fail closed)"
    else:
        result = "matched"
    if held is not False and rule.phrases is not None:
        found = rule.phrases.first(listing)
        if found >= 0:
            result += f" (phrase {rule.phrases.spellings[found]!r})"
    lines.append(f"    -> {result}")
    if rule.allow:
        exempts = rule.rule.exempts
        if exempts is None or exempts == ("*",):
            lines.append("    exempts: every reject and review rule of the file")
        else:
            lines.append(f"    exempts: {', '.join(exempts)}")
    elif rule.unless is not None and held is not False:
        lines.append("    unless:")
        unless = _block_lines(rule.unless, facts, "      ", lines)
        if unless is True:
            lines.append("    -> unless held: this rule is exempted")
        elif unless is None:
            lines.append("    -> unless unknown: not exempted (an unknown currency grants nothing)")
        else:
            lines.append("    -> unless did not hold: the rule applies")
    return lines


class _Facts:
    """What every condition line of one listing's account needs."""

    __slots__ = ("at_ms", "cluster", "compiled", "cross_border", "listing")

    def __init__(
        self,
        listing: Listing,
        cross_border: bool,
        cluster: str | None,
        compiled: CompiledPolicy,
        at_ms: int,
    ) -> None:
        self.at_ms = at_ms
        self.listing = listing
        self.cross_border = cross_border
        self.cluster = cluster
        self.compiled = compiled


def _block_lines(block: CompiledBlock, facts: _Facts, indent: str, lines: list[str]) -> bool | None:
    """Append one line per condition of `block` (groups nested two spaces deeper); return
    whether the block holds, as evaluate decides it (its compiled `match`)."""
    listing, cross_border, cluster = facts.listing, facts.cross_border, facts.cluster
    compiled = facts.compiled
    when = block.block
    listed = dict(when.lists or ())
    for check in block.checks:
        held = check.test(listing, cross_border, cluster)
        expected = getattr(when, check.key)
        shown = _show(expected)
        if check.key in listed:
            shown = f"{{list: {listed[check.key]}}} ({_entries(len(expected))} in force)"
        elif check.phrases is not None and len(expected) > _PHRASES_SHOWN:
            more = len(expected) - _PHRASES_SHOWN
            shown = _show(expected[:_PHRASES_SHOWN])[:-1] + f", ... {more:,} more]"
        value = _listing_value(check.key, listing, cross_border, cluster)
        if check.phrases is not None:
            found = check.phrases.first(listing)
            value = repr(listing.title)
            if found >= 0:
                value += f"; phrase {check.phrases.spellings[found]!r} found"
        lines.append(
            f"{indent}{check.key} {shown}: {'held' if held else 'did not hold'} (listing: {value})"
        )
    price = listing.price
    for price_check in block.prices:
        held_or_unknown = price_check.holds(price.amount_minor, price.currency)
        money: Money = getattr(when, price_check.key)
        base = price_in_base(compiled, price.amount_minor, price.currency, facts.at_ms)
        shown = f"{price.amount_minor} minor {price.currency}"
        if base is not None and compiled.model.fx is not None:
            shown += f" = {base:.6f} {compiled.model.fx.base}"
        if held_or_unknown is None:
            status = "unknown: no fx rate for the listing's currency"
        else:
            status = "held" if held_or_unknown else "did not hold"
        lines.append(
            f"{indent}{price_check.key} {money.amount} {money.currency}: {status} (listing: {shown})"
        )
    deeper = indent + "  "
    for i, item in enumerate(block.all_of):
        lines.append(f"{indent}all[{i}]: {_held(item.match(listing, cross_border, cluster))}")
        _block_lines(item, facts, deeper, lines)
    if block.block.any_of is not None:
        any_held = _held(_any_of(block, facts))
        lines.append(f"{indent}any: {any_held} (one item must hold)")
        for i, item in enumerate(block.any_of):
            lines.append(f"{deeper}any[{i}]: {_held(item.match(listing, cross_border, cluster))}")
            _block_lines(item, facts, deeper + "  ", lines)
    if block.not_ is not None:
        inner = block.not_.match(listing, cross_border, cluster)
        outer = None if inner is None else not inner
        lines.append(f"{indent}not: {_held(outer)} (the block below {_held(inner)})")
        _block_lines(block.not_, facts, deeper, lines)
    if block.named is not None:
        named = block.named.match(listing, cross_border, cluster)
        lines.append(f"{indent}condition {when.condition}: {_held(named)}")
        _block_lines(block.named, facts, deeper, lines)
    return block.match(listing, cross_border, cluster)


def _any_of(block: CompiledBlock, facts: _Facts) -> bool | None:
    results = [
        item.match(facts.listing, facts.cross_border, facts.cluster) for item in block.any_of
    ]
    if True in results:
        return True
    return None if None in results else False


def _held(value: bool | None) -> str:
    if value is None:
        return "unknown (no fx rate for the listing's currency)"
    return "held" if value else "did not hold"


def _listing_value(key: str, listing: Listing, cross_border: bool, cluster: str | None) -> str:
    if key == "cross_border":
        return _show(cross_border)
    if key.startswith("cluster"):
        return cluster or "none"
    if key == "attribute_equals":
        return _show(dict(listing.attributes))
    if key == "title_contains_any":
        return repr(listing.title)
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


def _entries(count: int) -> str:
    return "1 entry" if count == 1 else f"{count:,} entries"


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
        if isinstance(value, Money):
            shown = f"{value.amount} {value.currency}"
        elif key == "title_contains_any" and len(value) > _PHRASES_SHOWN:
            more = len(value) - _PHRASES_SHOWN
            shown = _show(value[:_PHRASES_SHOWN])[:-1] + f", ... {more:,} more]"
        else:
            shown = _show(value)
        parts.append(f"{key} {shown}")
    parts.extend(f"{key} {{list: {name}}}" for key, name in when.lists or ())
    if when.all_of is not None:
        parts.append("all (" + " | ".join(_conditions(item) for item in when.all_of) + ")")
    if when.any_of is not None:
        parts.append("any (" + " | ".join(_conditions(item) for item in when.any_of) + ")")
    if when.not_ is not None:
        parts.append(f"not ({_conditions(when.not_)})")
    if when.condition is not None:
        parts.append(f"condition {when.condition}")
    return "; ".join(parts)
