"""Policy file to PolicyModel. Every problem is collected, so an operator fixes a file in one go."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consumer.errors import PolicyError
from consumer.policy.codes import country_problem
from consumer.policy.fx import FxReader
from consumer.policy.lists import MAX_DATED_VERSIONS, ListReader, ReadListFile
from consumer.policy.messages import MessageReader, in_order, missing_translations
from consumer.policy.model import (
    BLOCK_KEYS,
    CONDITION_KEYS,
    LIST_KEYS,
    MAX_BLOCK_DEPTH,
    Cluster,
    Conditions,
    FxTable,
    Money,
    PolicyModel,
    Rule,
)
from consumer.policy.problems import HINT_MAX_LEN, Problems, kind
from consumer.policy.references import ConditionReferences, Ref
from consumer.policy.text import phrase_problem
from consumer.policy.yamldoc import parse_document, parse_instant

_TOP_KEYS = {
    "policy",
    "version",
    "description",
    "timezone",
    "scope",
    "clusters",
    "fx",
    "lists",
    "conditions",
    "rules",
    "default_language",
}
_RULE_KEYS = {
    "id",
    "effect",
    "reason",
    "message",
    "effective_from",
    "effective_until",
    "when",
    "unless",
    "exempts",
}
_EFFECTS = ("reject", "review", "allow")
_BLOCK_KEYS = set(CONDITION_KEYS) | set(BLOCK_KEYS)
#: `exempts: ["*"]`: every reject and review rule of the file, said on purpose.
EVERY_RULE: Final = "*"
_REASON = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_HS_PREFIX = re.compile(r"[0-9]{2,10}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def load_policy(
    raw: bytes | str, source: str = "<policy>", read_file: ReadListFile | None = None
) -> PolicyModel:
    """Parse and validate a policy file (bytes are decoded as strict UTF-8) or its text.

    Raises PolicyError listing every `path: message` found (the first MAX_PROBLEMS, then a count
    of the rest). Limits on size, nesting and YAML features: see yamldoc. `read_file` reads the
    list files `lists:` names (paths as written, relative to the policy file); without it a
    policy that names one is refused.
    """
    document = parse_document(raw, source)
    reader = _Reader(document.duplicates, document.more_duplicates, read_file)
    model = reader.policy(document.data)
    if reader.total or model is None:
        raise PolicyError(reader.listed(), source)
    return model


def policy_warnings(model: PolicyModel) -> tuple[str, ...]:
    """`path: message` for a valid policy that probably does not do what its author meant."""
    if not model.rules:
        return ("rules: the policy has no rules, so it approves every listing",)
    exempting_all = tuple(
        f"rules[{i}]: allow rule {rule.id!r} has no 'exempts', so when it matches it exempts "
        "every reject and review rule of the file; name the rules it exempts "
        '(exempts: [rule-id, ...]), or write exempts: ["*"] if that is what you mean'
        for i, rule in enumerate(model.rules)
        if rule.effect == "allow" and rule.exempts is None
    )
    messages = ((i, rule.message, rule.messages) for i, rule in enumerate(model.rules))
    return exempting_all + missing_translations(model.languages, messages)


class _Reader(Problems):
    """Walks the parsed YAML once, appending `path: message` for each problem and building the model."""

    def __init__(
        self, problems: Iterable[str], more: int = 0, read_file: ReadListFile | None = None
    ) -> None:
        super().__init__(problems, more)
        self.lists = ListReader(self, self.instant, read_file)
        self.fxr = FxReader(self, self.instant)
        self.tz: tzinfo = UTC
        #: The `condition:` references of the block being read, and its deepest level.
        self.refs: list[Ref] = []
        self.deepest = 0
        self.nodes = 0  # blocks read, for the expansion bound
        self.named: dict[str, Conditions] = {}
        self.messages = MessageReader(self)

    def policy(self, data: object) -> PolicyModel | None:
        if not isinstance(data, dict):
            self.fail("(top level)", f"expected a mapping of policy keys, got {kind(data)}")
            return None
        self.keys("", data, _TOP_KEYS, required=("policy", "version", "rules"))
        policy_id = self.ident("policy", data["policy"]) if "policy" in data else None
        version = self.text("version", data["version"]) if "version" in data else None
        description = self.text("description", data.get("description"), optional=True)
        timezone = self.timezone(data.get("timezone"))
        sites = self.scope(data.get("scope"))
        clusters = self.clusters(data.get("clusters"))
        fx = self.fxr.section(data["fx"]) if data.get("fx") is not None else None
        default_language = self.messages.default_language(data.get("default_language"))
        if "lists" in data:
            self.lists.section(data["lists"])
        if self.lists.versions + len(self.fxr.tables) > MAX_DATED_VERSIONS:
            msg = f"more than {MAX_DATED_VERSIONS:,} list versions and fx tables in all"
            self.fail("lists" if self.lists.versions else "fx.tables", msg)
        names = [c.name for c in clusters if len(c.name) <= HINT_MAX_LEN]
        known = _Names({c.name for c in clusters}, names)
        conditions = ConditionReferences()
        if "conditions" in data:
            self.conditions(data["conditions"], known, fx, conditions)
        rules = self.rules(data["rules"], known, fx, conditions) if "rules" in data else None
        conditions.check(self)
        if policy_id is None or version is None or rules is None:
            return None
        languages = self.messages.languages()
        if len(languages) > 1:
            rules = tuple(
                replace(rule, messages=in_order(rule.messages, languages))
                if rule.messages
                else rule
                for rule in rules
            )
        return PolicyModel(
            policy_id,
            version,
            rules,
            description,
            timezone,
            sites,
            tuple(clusters),
            fx,
            tuple(self.named.items()),
            tuple(self.lists.lists.items()),
            self.fxr.tables,
            tuple(dict.fromkeys(self.lists.files)),
            default_language,
            languages,
        )

    # -- sections -------------------------------------------------------------------------------

    def timezone(self, value: object) -> str:
        if value is None or (name := self.text("timezone", value)) is None:
            return "UTC"
        try:
            self.tz = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {name!r} (use an IANA name such as 'Asia/Jakarta')"
            self.fail("timezone", msg)
        return name

    def scope(self, value: object) -> tuple[str, ...] | None:
        if value is None:
            return None
        data = self.mapping("scope", value)
        if data is None:
            return None
        self.keys("scope", data, {"sites"}, required=("sites",))
        if "sites" not in data:
            return None  # reported as missing; a null or empty list is reported by strings()
        return self.strings("scope.sites", data["sites"], country_problem)

    def clusters(self, value: object) -> list[Cluster]:
        data = {} if value is None else self.mapping("clusters", value)
        out: list[Cluster] = []
        for name, body in (data or {}).items():
            path = f"clusters.{name}"
            if self.ident(path, name) is None or (spec := self.mapping(path, body)) is None:
                continue
            self.keys(path, spec, {"category_paths", "category_ids"}, required=())
            paths: list[tuple[str, ...]] = []
            raw_paths = spec.get("category_paths") or []
            if not isinstance(raw_paths, list):
                msg = f"expected a list of paths, got {kind(raw_paths)}"
                self.fail(f"{path}.category_paths", msg)
                raw_paths = []
            for i, raw in enumerate(raw_paths):
                segments = self.strings(f"{path}.category_paths[{i}]", raw)
                if segments is not None:
                    paths.append(segments)
            raw_ids = spec.get("category_ids")
            ids = self.strings(f"{path}.category_ids", raw_ids) if raw_ids else None
            if not spec.get("category_paths") and not raw_ids:
                self.fail(path, "needs at least one of category_paths or category_ids")
            out.append(Cluster(name, tuple(paths), ids or ()))
        return out

    def conditions(
        self, value: object, clusters: _Names, fx: FxTable | None, into: ConditionReferences
    ) -> None:
        """The top-level `conditions:` map of named blocks; references are checked later."""
        data = self.mapping("conditions", value)
        for name, body in (data or {}).items():
            path = f"conditions.{name}"
            if self.ident(path, name) is None:
                continue
            self.refs, self.deepest, self.nodes = [], 0, 0
            block = self.when(path, body, clusters, fx)
            into.named[name] = (path, self.refs, self.deepest, self.nodes)
            if block is not None:
                self.named[name] = block

    def rules(
        self, value: object, clusters: _Names, fx: FxTable | None, conditions: ConditionReferences
    ) -> tuple[Rule, ...] | None:
        if not isinstance(value, list):
            self.fail("rules", f"expected a list of rules, got {kind(value)}")
            return None
        out: list[Rule] = []
        first_seen: dict[str, int] = {}
        effects: dict[str, object] = {}
        exempting: list[tuple[str, tuple[str, ...]]] = []
        self.nodes = 0
        for i, raw in enumerate(value):
            self.refs = []
            rule = self.rule(f"rules[{i}]", raw, clusters, fx)
            conditions.uses.extend(self.refs)
            if rule is not None:
                out.append(rule)
                if rule.exempts is not None and rule.exempts != (EVERY_RULE,):
                    exempting.append((f"rules[{i}].exempts", rule.exempts))
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(rule_id, str) and rule_id in first_seen:
                msg = f"duplicate rule id {rule_id!r} (first at rules[{first_seen[rule_id]}])"
                self.fail(f"rules[{i}].id", msg)
            elif isinstance(rule_id, str):
                first_seen[rule_id] = i
                effects[rule_id] = raw.get("effect")
        conditions.rule_nodes = self.nodes
        ids = [rule_id for rule_id in effects if len(rule_id) <= HINT_MAX_LEN]
        for path, exempted in exempting:
            for rule_id in exempted:
                if rule_id not in effects:
                    self.fail(path, f"unknown rule {rule_id!r}" + self.hint(rule_id, ids))
                elif effects[rule_id] == "allow":
                    msg = f"rule {rule_id!r} is an allow rule; only reject and review rules are exempted"
                    self.fail(path, msg)
        return tuple(out)

    def rule(self, path: str, raw: object, clusters: _Names, fx: FxTable | None) -> Rule | None:
        data = self.mapping(path, raw)
        if data is None:
            return None
        self.keys(path, data, _RULE_KEYS, required=("id", "effect", "when"))
        rule_id = self.ident(f"{path}.id", data["id"]) if "id" in data else None
        effect = data.get("effect")
        if effect not in _EFFECTS and "effect" in data:
            msg = f"expected 'reject', 'review' or 'allow', got {kind(effect)}"
            self.fail(f"{path}.effect", msg)
        reason = self.text(f"{path}.reason", data.get("reason"), optional=True)
        if reason is not None and not _REASON.fullmatch(reason):
            msg = f"{reason!r} is not an UPPER_SNAKE code (e.g. IMPORT_CLOSED_CATEGORY)"
            self.fail(f"{path}.reason", msg)
        if effect in ("reject", "review") and data.get("reason") is None:
            self.fail(f"{path}.reason", f"a {effect} rule needs a reason code")
        unless = None
        if "unless" in data and effect == "allow":
            msg = "an allow rule has no unless; name the rules it exempts with exempts"
            self.fail(f"{path}.unless", msg)
        elif "unless" in data:
            unless = self.when(f"{path}.unless", data["unless"], clusters, fx)
        exempts = None
        if "exempts" in data and effect in ("reject", "review"):
            msg = f"only allow rules exempt other rules; a {effect} rule can carry unless instead"
            self.fail(f"{path}.exempts", msg)
        elif "exempts" in data:
            exempts = self.exempts(f"{path}.exempts", data["exempts"])
        message, messages = self.messages.message(f"{path}.message", data.get("message"))
        start = self.instant(f"{path}.effective_from", data.get("effective_from"))
        end = self.instant(f"{path}.effective_until", data.get("effective_until"))
        if start is not None and end is not None and end <= start:
            msg = f"must be after effective_from ({data['effective_from']})"
            self.fail(f"{path}.effective_until", msg)
        when = self.when(f"{path}.when", data["when"], clusters, fx) if "when" in data else None
        if rule_id is None or effect not in _EFFECTS or when is None:
            return None
        if ("unless" in data and unless is None) or ("exempts" in data and exempts is None):
            return None
        return Rule(rule_id, effect, when, reason, message, start, end, unless, exempts, messages)

    def exempts(self, path: str, value: object) -> tuple[str, ...] | None:
        ids = self.strings(path, value)
        if ids is not None and EVERY_RULE in ids and len(ids) > 1:
            self.fail(path, f"{EVERY_RULE!r} already means every rule; list it alone")
            return None
        return ids

    def instant(self, path: str, value: object) -> int | None:
        """Epoch ms: a plain date is 00:00 in the policy's zone; a datetime must carry its offset."""
        if value is None:
            return None
        if isinstance(value, str):
            text = value
            try:
                value = parse_instant(text)
            except ValueError as exc:
                shown = repr(text) if len(text) <= 60 else repr(text[:57]) + "..."
                reason = "" if str(exc).startswith("Invalid isoformat") else f" ({exc})"
                msg = f"{shown} is not a date (2021-08-03) or RFC 3339 datetime{reason}"
                self.fail(path, msg)
                return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                msg = f"datetime {value.isoformat()} needs an offset (Z or +07:00), or use a plain date"
                self.fail(path, msg)
                return None
            return (value - _EPOCH) // _MS
        if isinstance(value, date):
            return (datetime.combine(value, time(), tzinfo=self.tz) - _EPOCH) // _MS
        self.fail(path, f"expected a date or RFC 3339 datetime, got {kind(value)}")
        return None

    def when(
        self, path: str, value: object, clusters: _Names, fx: FxTable | None, level: int = 1
    ) -> Conditions | None:
        """A condition block: leaf keys and all/any/not/condition, every one of which must hold.

        Deeper than MAX_BLOCK_DEPTH is reported here and not read further, so a hostile file
        costs no recursion beyond that (yamldoc already bounds YAML nesting).
        """
        if level > MAX_BLOCK_DEPTH:
            self.fail(path, f"condition blocks nest deeper than {MAX_BLOCK_DEPTH} levels")
            return None
        self.deepest = max(self.deepest, level)
        self.nodes += 1
        data = self.mapping(path, value)
        if data is None:
            return None
        if not data:
            self.fail(path, "needs at least one condition")
            return None
        self.keys(path, data, _BLOCK_KEYS, required=())
        found: dict[str, object] = {}
        lists: list[tuple[str, str]] = []
        before = self.total
        for key, raw in data.items():
            if key in LIST_KEYS and isinstance(raw, dict):
                name = self.lists.reference(
                    f"{path}.{key}", key, raw, self.entry_check(key, clusters)
                )
                if name is not None:
                    lists.append((key, name))
            elif key in CONDITION_KEYS:
                found[key] = self.condition(f"{path}.{key}", key, raw, clusters, fx)
            elif key in ("all", "any"):
                found[BLOCK_KEYS[key]] = self.blocks(f"{path}.{key}", raw, clusters, fx, level)
            elif key == "not":
                found["not_"] = self.when(f"{path}.not", raw, clusters, fx, level + 1)
            elif key == "condition":
                name = self.ident(f"{path}.condition", raw)
                if name is not None:
                    self.refs.append(Ref(name, f"{path}.condition", level))
                found["condition"] = name
        if self.total != before:
            return None
        if lists:
            found["lists"] = tuple(lists)
        return Conditions(**cast(dict[str, Any], found))

    def blocks(
        self, path: str, value: object, clusters: _Names, fx: FxTable | None, level: int
    ) -> tuple[Conditions, ...] | None:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else kind(value)
            self.fail(path, f"expected a non-empty list of condition blocks, got {got}")
            return None
        out = [
            self.when(f"{path}[{i}]", item, clusters, fx, level + 1) for i, item in enumerate(value)
        ]
        return tuple(block for block in out if block is not None)

    def condition(
        self, path: str, key: str, raw: object, clusters: _Names, fx: FxTable | None
    ) -> object:
        if key == "cross_border":
            if not isinstance(raw, bool):
                self.fail(path, f"expected true or false, got {kind(raw)}")
            return raw
        if key in ("cluster_in", "cluster_not_in"):
            return self.strings(path, raw, lambda name: self.known(name, clusters))
        if key in ("site_in", "seller_country_in", "ship_from_in"):
            return self.strings(path, raw, country_problem)
        if key in ("hs_code_prefix_in", "hs_code_prefix_not_in"):
            return self.strings(path, raw, _hs_prefix)
        if key in ("price_below", "price_at_least"):
            return self.money(path, raw, fx)
        if key == "title_contains_any":
            return self.phrases(path, raw)
        if key == "attribute_equals":
            pairs = self.mapping(path, raw)
            if pairs is not None and not pairs:
                self.fail(path, "needs at least one attribute")
            for name, expected in (pairs or {}).items():
                if not isinstance(name, str) or not isinstance(expected, str):
                    self.fail(f"{path}.{name}", f"expected a string value, got {kind(expected)}")
            return tuple((str(k), str(v)) for k, v in (pairs or {}).items())
        return self.strings(path, raw)  # seller_in, seller_not_in, brand_in

    def entry_check(self, key: str, clusters: _Names) -> Callable[[str], str | None] | None:
        """How an entry of a list used by `key` is checked, as an inline entry would be."""
        if key in ("cluster_in", "cluster_not_in"):
            return lambda name: self.known(name, clusters)
        if key in ("site_in", "seller_country_in", "ship_from_in"):
            return country_problem
        if key in ("hs_code_prefix_in", "hs_code_prefix_not_in"):
            return _hs_prefix
        if key == "title_contains_any":
            return phrase_problem
        return None

    def phrases(self, path: str, raw: object) -> tuple[str, ...] | None:
        """`title_contains_any`: each phrase must keep a letter or digit after normalisation;
        a problem names the phrase's index."""
        if not isinstance(raw, list) or not raw:
            got = "an empty list" if raw == [] else kind(raw)
            self.fail(path, f"expected a non-empty list of phrases or {{list: NAME}}, got {got}")
            return None
        before = self.total
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                self.fail(f"{path}[{i}]", f"expected a phrase (a string), got {kind(item)}")
            elif (problem := phrase_problem(item)) is not None:
                self.fail(f"{path}[{i}]", problem)
        return tuple(raw) if self.total == before else None

    def known(self, name: str, clusters: _Names) -> str | None:
        if name in clusters.known:
            return None
        return f"unknown cluster {name!r}" + self.hint(name, clusters.hints)

    def money(self, path: str, raw: object, fx: FxTable | None) -> Money | None:
        data = self.mapping(path, raw)
        if data is None:
            return None
        self.keys(path, data, {"amount", "currency"}, required=("amount", "currency"))
        amount = self.fxr.positive(f"{path}.amount", data["amount"]) if "amount" in data else None
        currency = (
            self.fxr.currency(f"{path}.currency", data["currency"]) if "currency" in data else None
        )
        if fx is None and not self.fxr.declared:
            self.fail(path, "a price condition needs a top-level 'fx' table with base and rates")
        elif fx is not None and currency is not None and currency not in self.fxr.rates:
            where = "every table of fx.tables" if self.fxr.tables else "fx.rates"
            self.fail(f"{path}.currency", f"no fx rate for {currency!r} in {where}")
        if amount is None or currency is None:
            return None
        return Money(amount, currency)


def _hs_prefix(prefix: str) -> str | None:
    if _HS_PREFIX.fullmatch(prefix):
        return None
    return f"HS code prefix {prefix!r} must be 2 to 10 digits"


class _Names:
    """The cluster names: a set to check against, and the short ones as a list for hints."""

    __slots__ = ("hints", "known")

    def __init__(self, known: set[str], hints: list[str]) -> None:
        self.known = known
        self.hints = hints


def parse_as_of(text: str, tz: tzinfo, now_ms: int) -> int:
    """An --as-of value as epoch ms: `now`, a plain date (00:00 in `tz`, the policy's zone) or
    an RFC 3339 datetime with its offset; ValueError with a one-line message otherwise."""
    if text.strip().lower() == "now":
        return now_ms
    shown = repr(text) if len(text) <= 60 else repr(text[:57]) + "..."
    try:
        value = parse_instant(text.strip())
    except ValueError:
        msg = f"{shown} is not now, a date (2021-08-03) or an RFC 3339 datetime"
        raise ValueError(msg) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            msg = f"{shown} needs an offset (Z or +07:00), or use a plain date"
            raise ValueError(msg)
        return (value - _EPOCH) // _MS
    return (datetime.combine(value, time(), tzinfo=tz) - _EPOCH) // _MS
