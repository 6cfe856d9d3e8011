"""What changed between two policies, in a few words for the reload log line (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from consumer.policy.model import Cluster, PolicyModel, Rule

#: Ids named in the summary per kind; the rest are counted.
NAMED_IDS = 5


@dataclass(frozen=True, slots=True)
class PolicyChange:
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[str, ...] = ()
    clusters_added: tuple[str, ...] = ()
    clusters_removed: tuple[str, ...] = ()
    clusters_changed: tuple[str, ...] = ()
    #: Other top-level parts that differ: policy_id, timezone, scope_sites, fx, description,
    #: fx_tables, conditions, default_language, and each named list as lists.NAME.
    other: tuple[str, ...] = ()

    def summary(self) -> str:
        """E.g. "rules added r-crafts; rules changed r-fashion; clusters added crafts"."""
        parts = []
        for f in fields(self):
            ids: tuple[str, ...] = getattr(self, f.name)
            if ids:
                parts.append(f"{f.name.replace('_', ' ')} {_named(ids)}")
        return "; ".join(parts) or "no rule or cluster changed (version or layout only)"


def describe_change(old: PolicyModel, new: PolicyModel) -> PolicyChange:
    rules = _compare(old.rules, new.rules)
    clusters = _compare(old.clusters, new.clusters)
    other = tuple(
        name
        for name in (
            "policy_id",
            "timezone",
            "scope_sites",
            "fx",
            "description",
            "fx_tables",
            "conditions",
            "default_language",
        )
        if getattr(old, name) != getattr(new, name)
    )
    before, after = dict(old.lists), dict(new.lists)
    lists = tuple(
        f"lists.{name}"
        for name in (*after, *(name for name in before if name not in after))
        if before.get(name) != after.get(name)
    )
    return PolicyChange(*rules, *clusters, other + lists)


def _compare(
    old: Sequence[Rule] | Sequence[Cluster], new: Sequence[Rule] | Sequence[Cluster]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(added, removed, changed) names, in the new (or old, for removed) file order."""
    before = {_name(item): item for item in old}
    after = {_name(item): item for item in new}
    added = tuple(name for name in after if name not in before)
    removed = tuple(name for name in before if name not in after)
    changed = tuple(name for name, item in after.items() if name in before and before[name] != item)
    return added, removed, changed


def _name(item: Rule | Cluster) -> str:
    return item.id if isinstance(item, Rule) else item.name


def _named(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:NAMED_IDS])
    more = len(ids) - NAMED_IDS
    return f"{shown} and {more} more" if more > 0 else shown
