"""The policy as frozen data, exactly as the file says it; nothing here is precomputed for speed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Effect = Literal["reject", "review", "allow"]

#: How deep condition blocks may nest, counting `when` as 1 and each `all`/`any`/`not` item and
#: each `condition:` reference as one more level: a compliance rule needs three or four.
MAX_BLOCK_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in major units (100 USD is Money(Decimal(100), "USD")); Decimal keeps it exact."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class FxTable:
    """Value of one major unit of each currency in `base` units; the base itself is always 1."""

    base: str
    rates: tuple[tuple[str, Decimal], ...]

    def rate(self, currency: str) -> Decimal | None:
        if currency == self.base:
            return Decimal(1)
        for code, value in self.rates:
            if code == currency:
                return value
        return None


@dataclass(frozen=True, slots=True)
class DatedRates:
    """One table of `fx.tables`: in force from `from_ms` (epoch ms) until the next one begins."""

    from_ms: int
    rates: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class ListVersion:
    """One version of a named list, in force in [from_ms, until_ms) (None: open).

    `file` is the path as written (relative to the policy file) when the entries came from one.
    """

    from_ms: int
    until_ms: int | None
    entries: tuple[str, ...]
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """A named part of the category taxonomy: path prefixes (root first) and/or category ids."""

    name: str
    category_paths: tuple[tuple[str, ...], ...] = ()
    category_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conditions:
    """A condition block (a rule's `when` or `unless`, a named condition, an item of `all`/`any`):
    every field that is not None must hold (AND).

    The leaf keys come first; `all_of`, `any_of`, `not_` and `condition` are the YAML keys
    `all`, `any`, `not` and `condition` (the name of a block under the top-level `conditions:`).
    """

    cross_border: bool | None = None
    cluster_in: tuple[str, ...] | None = None
    cluster_not_in: tuple[str, ...] | None = None
    site_in: tuple[str, ...] | None = None
    seller_in: tuple[str, ...] | None = None
    seller_not_in: tuple[str, ...] | None = None
    seller_country_in: tuple[str, ...] | None = None
    ship_from_in: tuple[str, ...] | None = None
    brand_in: tuple[str, ...] | None = None
    hs_code_prefix_in: tuple[str, ...] | None = None
    hs_code_prefix_not_in: tuple[str, ...] | None = None
    price_below: Money | None = None
    price_at_least: Money | None = None
    attribute_equals: tuple[tuple[str, str], ...] | None = None
    #: Phrases as the policy writes them; holds when one occurs in the title as whole words
    #: (consumer.policy.text: both normalised alike).
    title_contains_any: tuple[str, ...] | None = None
    all_of: tuple[Conditions, ...] | None = None
    any_of: tuple[Conditions, ...] | None = None
    not_: Conditions | None = None
    condition: str | None = None
    #: `{list: NAME}` values, as (leaf key, list name) pairs: load leaves those leaf fields None
    #: and compile fills them, per period, with the entries of the list's version in force.
    lists: tuple[tuple[str, str], ...] | None = None

    def present(self) -> tuple[str, ...]:
        """Names of the leaf conditions that are set, in declaration order."""
        return tuple(name for name in CONDITION_KEYS if getattr(self, name) is not None)


#: The leaf keys of a block, in the order they are checked and printed.
CONDITION_KEYS: tuple[str, ...] = tuple(Conditions.__dataclass_fields__)[:-5]
#: The leaf keys that may take `{list: NAME}` instead of an inline list.
LIST_KEYS: tuple[str, ...] = tuple(
    key for key in CONDITION_KEYS if key.endswith(("_in", "_not_in", "_any"))
)
#: The leaf keys added after a policy's version hash was fixed: left out of the hash when unset.
NEWER_KEYS: tuple[str, ...] = ("title_contains_any",)
#: The grouping keys of a block as YAML spells them, and the Conditions field each fills.
BLOCK_KEYS: dict[str, str] = {
    "all": "all_of",
    "any": "any_of",
    "not": "not_",
    "condition": "condition",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule. The window is epoch milliseconds: from inclusive, until exclusive, None = open."""

    id: str
    effect: Effect
    when: Conditions
    reason: str | None = None
    message: str | None = None
    effective_from_ms: int | None = None
    effective_until_ms: int | None = None
    #: Reject and review rules: the rule does not apply to a listing for which this block holds.
    unless: Conditions | None = None
    #: Allow rules: the ids of the rules a match exempts; None (no `exempts` key) or ("*",)
    #: means every reject and review rule of the file, the meaning an allow rule always had.
    exempts: tuple[str, ...] | None = None
    #: A `message:` map: (language tag, text) in PolicyModel.languages order, the default
    #: language's text (also `message`) first; empty for a plain-string message.
    messages: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyModel:
    """A validated policy file. `scope_sites` None means every site is in scope."""

    policy_id: str
    version: str
    rules: tuple[Rule, ...]
    description: str | None = None
    timezone: str = "UTC"
    scope_sites: tuple[str, ...] | None = None
    clusters: tuple[Cluster, ...] = ()
    fx: FxTable | None = None
    #: Named condition blocks (`conditions:`), in file order.
    conditions: tuple[tuple[str, Conditions], ...] = ()
    #: Named dated lists (`lists:`), in file order; each list's versions in file order.
    lists: tuple[tuple[str, tuple[ListVersion, ...]], ...] = ()
    #: `fx.tables`, in file order; then `fx.rates` is empty and each table's rates apply.
    fx_tables: tuple[DatedRates, ...] = ()
    #: The list files read (as written in the policy), for the hot-reload watcher.
    source_files: tuple[str, ...] = ()
    #: `default_language`: the language of plain-string messages and of Reason.message; None
    #: when the file names none (then every message is a plain string in no stated language).
    default_language: str | None = None
    #: The default language, then every other tag a message map uses, sorted; empty without
    #: a default_language. Derived from the rules, so it is not part of the version hash.
    languages: tuple[str, ...] = ()

    def cluster(self, name: str) -> Cluster | None:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        return None
