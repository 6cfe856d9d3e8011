"""Policy YAML text to PolicyModel. Every problem is collected, so an operator fixes a file in one go."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from consumer.errors import PolicyError
from consumer.policy.codes import country_problem, currency_problem
from consumer.policy.model import (
    CONDITION_KEYS,
    Cluster,
    Conditions,
    FxTable,
    Money,
    PolicyModel,
    Rule,
)

_TOP_KEYS = {"policy", "version", "description", "timezone", "scope", "clusters", "fx", "rules"}
_RULE_KEYS = {"id", "effect", "reason", "message", "effective_from", "effective_until", "when"}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REASON = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_HS_PREFIX = re.compile(r"[0-9]{2,10}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def load_policy(text: str, source: str = "<policy>") -> PolicyModel:
    """Parse and validate policy YAML; raises PolicyError listing every `path: message` found."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        raise PolicyError([f"{where}: YAML syntax error: {exc.problem}"], source) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([f"yaml: {exc}"], source) from exc
    finally:
        loader.dispose()
    reader = _Reader(loader.duplicates)
    model = reader.policy(data)
    if reader.problems or model is None:
        raise PolicyError(reader.problems, source)
    return model


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys, which plain YAML silently overwrites."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):
                if key in seen:
                    line = key_node.start_mark.line + 1
                    self.duplicates.append(f"line {line}: duplicate key {key!r}")
                seen.add(key)
        return super().construct_mapping(node, deep)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'}; YAML reads yes/no/on/off as booleans, quote it)"
    if isinstance(value, int | float):
        return f"a number ({value}; quote it if it is text)"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Reader:
    """Walks the parsed YAML once, appending `path: message` for each problem and building the model."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        self.tz: tzinfo = UTC
        self.fx_declared = False  # a broken fx section is reported once, not at every price

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def policy(self, data: object) -> PolicyModel | None:
        if not isinstance(data, dict):
            self.fail("(top level)", f"expected a mapping of policy keys, got {_kind(data)}")
            return None
        self.keys("", data, _TOP_KEYS, required=("policy", "version", "rules"))
        policy_id = self.ident("policy", data["policy"]) if "policy" in data else None
        version = self.text("version", data["version"]) if "version" in data else None
        description = self.text("description", data.get("description"), optional=True)
        timezone = self.timezone(data.get("timezone"))
        sites = self.scope(data.get("scope"))
        clusters = self.clusters(data.get("clusters"))
        fx = self.fx(data.get("fx"))
        rules = self.rules(data.get("rules"), {c.name for c in clusters}, fx)
        if policy_id is None or version is None or rules is None:
            return None
        return PolicyModel(
            policy_id, version, rules, description, timezone, sites, tuple(clusters), fx
        )

    # -- generic shapes -------------------------------------------------------------------------

    def keys(
        self, path: str, data: dict[Any, Any], allowed: set[str], required: Iterable[str]
    ) -> None:
        prefix = f"{path}." if path else ""
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                more = f" (did you mean '{hint[0]}'?)" if hint else ""
                expected = ", ".join(sorted(allowed))
                self.fail(f"{prefix}{key}", f"unknown key{more}; expected one of: {expected}")
        for key in required:
            if key not in data:
                self.fail(f"{prefix}{key}", "missing required key")

    def text(self, path: str, value: object, optional: bool = False) -> str | None:
        """A non-empty string; with `optional`, null means not given."""
        if optional and value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {_kind(value)}")
            return None
        return value

    def ident(self, path: str, value: object) -> str | None:
        text = self.text(path, value)
        if text is not None and not _ID.fullmatch(text):
            self.fail(path, f"{text!r} is not an id: use letters, digits, '.', '_' and '-'")
            return None
        return text

    def strings(
        self, path: str, value: object, check: Callable[[str], str | None] | None = None
    ) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else _kind(value)
            self.fail(path, f"expected a non-empty list, got {got}")
            return None
        out: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                self.fail(path, f"expected non-empty strings, got {_kind(item)}")
            elif check is not None and (problem := check(item)) is not None:
                self.fail(path, problem)
            else:
                out.append(item)
        return tuple(out) if len(out) == len(value) else None

    def mapping(self, path: str, value: object) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_kind(value)}")
            return None
        return value

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
                msg = f"expected a list of paths, got {_kind(raw_paths)}"
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

    def fx(self, value: object) -> FxTable | None:
        if value is None:
            return None
        self.fx_declared = True
        data = self.mapping("fx", value)
        if data is None:
            return None
        self.keys("fx", data, {"base", "rates"}, required=("base", "rates"))
        base = self.currency("fx.base", data["base"]) if "base" in data else None
        rates: list[tuple[str, Decimal]] = []
        table = self.mapping("fx.rates", data["rates"]) if "rates" in data else None
        for code, raw in (table or {}).items():
            path = f"fx.rates.{code}"
            rate = self.positive(path, raw)
            if self.currency(path, code) is None or rate is None:
                continue
            if code == base and rate != 1:
                self.fail(path, f"the base currency's rate must be 1, got {raw}")
            rates.append((code, rate))
        return FxTable(base, tuple(rates)) if base is not None else None

    def currency(self, path: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.fail(path, f"expected an ISO 4217 currency code, got {_kind(value)}")
            return None
        if (problem := currency_problem(value)) is not None:
            self.fail(path, problem)
            return None
        return value

    def positive(self, path: str, value: object) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"expected a number, got {_kind(value)}")
            return None
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite() or number <= 0:
            self.fail(path, f"must be a finite number greater than 0, got {value}")
            return None
        return number

    def rules(
        self, value: object, clusters: set[str], fx: FxTable | None
    ) -> tuple[Rule, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail("rules", f"expected a list of rules, got {_kind(value)}")
            return None
        out: list[Rule] = []
        first_seen: dict[str, int] = {}
        for i, raw in enumerate(value):
            rule = self.rule(f"rules[{i}]", raw, clusters, fx)
            if rule is not None:
                out.append(rule)
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(rule_id, str) and rule_id in first_seen:
                msg = f"duplicate rule id {rule_id!r} (first at rules[{first_seen[rule_id]}])"
                self.fail(f"rules[{i}].id", msg)
            elif isinstance(rule_id, str):
                first_seen[rule_id] = i
        return tuple(out)

    def rule(self, path: str, raw: object, clusters: set[str], fx: FxTable | None) -> Rule | None:
        data = self.mapping(path, raw)
        if data is None:
            return None
        self.keys(path, data, _RULE_KEYS, required=("id", "effect", "when"))
        rule_id = self.ident(f"{path}.id", data["id"]) if "id" in data else None
        effect = data.get("effect")
        if effect not in ("reject", "allow") and "effect" in data:
            self.fail(f"{path}.effect", f"expected 'reject' or 'allow', got {_kind(effect)}")
        reason = self.text(f"{path}.reason", data.get("reason"), optional=True)
        if reason is not None and not _REASON.fullmatch(reason):
            msg = f"{reason!r} is not an UPPER_SNAKE code (e.g. IMPORT_CLOSED_CATEGORY)"
            self.fail(f"{path}.reason", msg)
        if effect == "reject" and data.get("reason") is None:
            self.fail(f"{path}.reason", "a reject rule needs a reason code")
        message = self.text(f"{path}.message", data.get("message"), optional=True)
        start = self.instant(f"{path}.effective_from", data.get("effective_from"))
        end = self.instant(f"{path}.effective_until", data.get("effective_until"))
        if start is not None and end is not None and end <= start:
            msg = f"must be after effective_from ({data['effective_from']})"
            self.fail(f"{path}.effective_until", msg)
        when = self.when(f"{path}.when", data["when"], clusters, fx) if "when" in data else None
        if rule_id is None or effect not in ("reject", "allow") or when is None:
            return None
        return Rule(rule_id, effect, when, reason, message, start, end)

    def instant(self, path: str, value: object) -> int | None:
        """Epoch ms: a plain date is 00:00 in the policy's zone; a datetime must carry its offset."""
        if value is None:
            return None
        if isinstance(value, str):
            parse = date.fromisoformat if len(value) == 10 else datetime.fromisoformat
            try:
                value = parse(value)
            except ValueError:
                self.fail(path, f"{value!r} is not a date (2021-08-03) or RFC 3339 datetime")
                return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                msg = f"datetime {value.isoformat()} needs an offset (Z or +07:00), or use a plain date"
                self.fail(path, msg)
                return None
            return (value - _EPOCH) // _MS
        if isinstance(value, date):
            return (datetime.combine(value, time(), tzinfo=self.tz) - _EPOCH) // _MS
        self.fail(path, f"expected a date or RFC 3339 datetime, got {_kind(value)}")
        return None

    def when(
        self, path: str, value: object, clusters: set[str], fx: FxTable | None
    ) -> Conditions | None:
        data = self.mapping(path, value)
        if data is None:
            return None
        if not data:
            self.fail(path, "needs at least one condition")
            return None
        self.keys(path, data, set(CONDITION_KEYS), required=())
        found: dict[str, object] = {}
        before = len(self.problems)
        for key, raw in data.items():
            if key in CONDITION_KEYS:
                found[key] = self.condition(f"{path}.{key}", key, raw, clusters, fx)
        if len(self.problems) != before:
            return None
        return Conditions(**cast(dict[str, Any], found))

    def condition(
        self, path: str, key: str, raw: object, clusters: set[str], fx: FxTable | None
    ) -> object:
        if key == "cross_border":
            if not isinstance(raw, bool):
                self.fail(path, f"expected true or false, got {_kind(raw)}")
            return raw
        if key in ("cluster_in", "cluster_not_in"):
            return self.strings(path, raw, lambda name: _known(name, clusters))
        if key in ("site_in", "seller_country_in", "ship_from_in"):
            return self.strings(path, raw, country_problem)
        if key in ("hs_code_prefix_in", "hs_code_prefix_not_in"):
            return self.strings(path, raw, _hs_prefix)
        if key in ("price_below", "price_at_least"):
            return self.money(path, raw, fx)
        if key == "attribute_equals":
            pairs = self.mapping(path, raw)
            if pairs is not None and not pairs:
                self.fail(path, "needs at least one attribute")
            for name, expected in (pairs or {}).items():
                if not isinstance(name, str) or not isinstance(expected, str):
                    self.fail(f"{path}.{name}", f"expected a string value, got {_kind(expected)}")
            return tuple((str(k), str(v)) for k, v in (pairs or {}).items())
        return self.strings(path, raw)  # seller_in, seller_not_in, brand_in

    def money(self, path: str, raw: object, fx: FxTable | None) -> Money | None:
        data = self.mapping(path, raw)
        if data is None:
            return None
        self.keys(path, data, {"amount", "currency"}, required=("amount", "currency"))
        amount = self.positive(f"{path}.amount", data["amount"]) if "amount" in data else None
        currency = (
            self.currency(f"{path}.currency", data["currency"]) if "currency" in data else None
        )
        if fx is None and not self.fx_declared:
            self.fail(path, "a price condition needs a top-level 'fx' table with base and rates")
        elif fx is not None and currency is not None and fx.rate(currency) is None:
            self.fail(f"{path}.currency", f"no fx rate for {currency!r} in fx.rates")
        if amount is None or currency is None:
            return None
        return Money(amount, currency)


def _hs_prefix(prefix: str) -> str | None:
    if _HS_PREFIX.fullmatch(prefix):
        return None
    return f"HS code prefix {prefix!r} must be 2 to 10 digits"


def _known(name: str, clusters: set[str]) -> str | None:
    if name in clusters:
        return None
    hint = difflib.get_close_matches(name, sorted(clusters), n=1)
    return f"unknown cluster {name!r}" + (f" (did you mean '{hint[0]}'?)" if hint else "")
