"""explain, summarize, warnings and reload change summaries for anything enforced: a single policy
reads exactly as consumer.policy.explain prints it; a set prints each layer's account, then the
combined outcome."""

from __future__ import annotations

from consumer.core.records import Listing
from consumer.policy.changes import describe_change
from consumer.policy.enforced import Enforced
from consumer.policy.evaluate import BY_UNLESS
from consumer.policy.explain import explain, reason_line, summarize
from consumer.policy.load import policy_warnings
from consumer.policy.sets import CompiledSet


def explain_enforced(
    listing: Listing, policy: Enforced, as_of_ms: int | None = None, language: str | None = None
) -> str:
    """`check --explain`: explain() of a single policy; for a set, every layer's account and
    the combined outcome. `language`: the reasons' language, where a rule has it."""
    if not isinstance(policy, CompiledSet):
        return explain(listing, policy.layers[0], as_of_ms, language)
    verdict = policy.verdict_of(policy.scan(listing, as_of_ms))
    lines = [
        f"policy set {policy.policy_id} version {policy.version}: {len(policy.layers)} layers, "
        "each evaluated on its own; the most severe outcome wins",
    ]
    for i, layer in enumerate(policy.layers):
        lines += ["", f"== {policy.where(i)}", explain(listing, layer, as_of_ms, language)]
    lines += ["", f"set outcome: {verdict.outcome}"]
    lines.extend(reason_line(r, language) for r in verdict.reasons)
    lines.extend(
        f"  exempted {e.rule_id} by {'its unless' if e.by == BY_UNLESS else 'allow rule ' + e.by}"
        for e in verdict.exemptions
    )
    lines.append(f"matched rules: {', '.join(verdict.matched_rules) or 'none'}")
    return "\n".join(lines)


def summarize_enforced(policy: Enforced) -> str:
    """`validate-policy`: summarize() of a single policy; for a set, its header and one summary
    per layer (the layer's own version is in it)."""
    if not isinstance(policy, CompiledSet):
        return summarize(policy.layers[0])
    lines = [
        f"policy set: {policy.policy_id}",
        f"version: {policy.version}",
        *([f"description: {policy.description.strip()}"] if policy.description else []),
        f"layers ({len(policy.layers)}):",
        *(
            f"  {policy.where(i)}: {layer.policy_id} {layer.version}"
            for i, layer in enumerate(policy.layers)
        ),
    ]
    for i, layer in enumerate(policy.layers):
        lines += ["", f"== {policy.where(i)}", summarize(layer)]
    return "\n".join(lines)


def enforced_warnings(policy: Enforced) -> tuple[str, ...]:
    """policy_warnings of each layer; a set's are prefixed with the layer they are about."""
    if not isinstance(policy, CompiledSet):
        return policy_warnings(policy.layers[0].model)
    return (
        tuple(
            f"{policy.where(i)}: {warning}"
            for i, layer in enumerate(policy.layers)
            for warning in policy_warnings(layer.model)
        )
        + policy.language_warnings()
    )


def enforced_languages(policy: Enforced) -> tuple[str, ...]:
    """Every language the policy (each layer of a set) writes messages in, each once: a single
    policy's default first, a set's in layer order."""
    return tuple(dict.fromkeys(tag for layer in policy.layers for tag in layer.model.languages))


def change_summary(old: Enforced, new: Enforced) -> str:
    """The reload log line's `changes`: describe_change of two policies; for sets, per layer
    (matched by path), and the layers added or removed."""
    if not isinstance(old, CompiledSet) and not isinstance(new, CompiledSet):
        return describe_change(old.layers[0].model, new.layers[0].model).summary()
    if not isinstance(old, CompiledSet) or not isinstance(new, CompiledSet):
        return (
            "a policy file replaced by a policy set"
            if isinstance(new, CompiledSet)
            else ("a policy set replaced by a policy file")
        )
    before = dict(zip(old.paths, old.layers, strict=True))
    parts = []
    added = [path for path in new.paths if path not in before]
    removed = [path for path in old.paths if path not in new.paths]
    if added:
        parts.append(f"layers added {', '.join(added)}")
    if removed:
        parts.append(f"layers removed {', '.join(removed)}")
    for i, (path, layer) in enumerate(zip(new.paths, new.layers, strict=True)):
        previous = before.get(path)
        if previous is not None and previous.version != layer.version:
            change = describe_change(previous.model, layer.model).summary()
            parts.append(f"{new.where(i)}: {change}")
    if not parts and old.paths != new.paths:
        parts.append("layers reordered")
    return "; ".join(parts) or "no layer changed (set version or layout only)"
