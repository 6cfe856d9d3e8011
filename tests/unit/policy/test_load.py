"""load_policy: YAML to PolicyModel, and one PolicyError naming the path of every problem."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml

from consumer.errors import PolicyError
from consumer.policy import load_policy
from consumer.policy.model import Cluster, Conditions, FxTable, Money, Rule
from tests.unit.listings import epoch_ms


def base_policy() -> dict[str, Any]:
    """A small valid policy as plain data; tests change one thing and dump it to YAML."""
    return {
        "policy": "test-policy",
        "version": "1",
        "timezone": "Asia/Jakarta",
        "scope": {"sites": ["ID"]},
        "clusters": {"fashion": {"category_paths": [["Women's Fashion"]], "category_ids": []}},
        "fx": {"base": "USD", "rates": {"USD": 1, "IDR": 0.0000625}},
        "rules": [
            {
                "id": "r1",
                "effect": "reject",
                "reason": "CLOSED",
                "message": "closed",
                "effective_from": date(2021, 8, 3),
                "when": {"cross_border": True, "cluster_in": ["fashion"]},
            }
        ],
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared objects out in full: policy files may not use anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(policy: dict[str, Any]) -> str:
    return yaml.dump(policy, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)


def changed(mutate: Callable[[dict[str, Any]], object]) -> str:
    policy = base_policy()
    mutate(policy)
    return dump(policy)


def rule0(policy: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = policy["rules"][0]
    return rule


def when0(policy: dict[str, Any]) -> dict[str, Any]:
    when: dict[str, Any] = rule0(policy)["when"]
    return when


class TestLoadValid:
    def test_base_policy_loads_into_the_model(self) -> None:
        """Every section of a valid file lands in the matching frozen field."""
        model = load_policy(dump(base_policy()))
        assert model.policy_id == "test-policy"
        assert model.version == "1"
        assert model.timezone == "Asia/Jakarta"
        assert model.scope_sites == ("ID",)
        assert model.clusters == (Cluster("fashion", (("Women's Fashion",),), ()),)
        assert model.fx == FxTable("USD", (("USD", Decimal(1)), ("IDR", Decimal("0.0000625"))))
        assert model.rules == (
            Rule(
                id="r1",
                effect="reject",
                when=Conditions(cross_border=True, cluster_in=("fashion",)),
                reason="CLOSED",
                message="closed",
                effective_from_ms=epoch_ms("2021-08-02T17:00:00Z"),
            ),
        )

    def test_optional_sections_take_their_defaults(self) -> None:
        """No timezone means UTC, no scope means every site, no clusters or fx; null means not given."""
        text = (
            "policy: p\nversion: v\ndescription: null\nrules:\n"
            "  - {id: a, effect: allow, effective_until: null, when: {site_in: [SG]}}\n"
        )
        model = load_policy(text)
        assert (model.timezone, model.scope_sites, model.clusters, model.fx) == (
            "UTC",
            None,
            (),
            None,
        )
        assert model.rules[0].effective_from_ms is None
        assert model.rules[0].effective_until_ms is None
        assert model.description is None

    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("2021-08-03", "2021-08-02T17:00:00Z"),
            ("'2021-08-03'", "2021-08-02T17:00:00Z"),
            ("2021-08-03T00:00:00Z", "2021-08-03T00:00:00Z"),
            ("2021-08-03T09:30:00+07:00", "2021-08-03T02:30:00Z"),
            ("'2021-08-03T09:30:00.250+07:00'", "2021-08-03T02:30:00.250Z"),
        ],
        ids=[
            "plain-date-in-policy-zone",
            "quoted-date",
            "utc-datetime",
            "offset-datetime",
            "quoted-datetime",
        ],
    )
    def test_effective_from_becomes_epoch_ms(self, written: str, expected: str) -> None:
        """A plain date is 00:00 in the policy's zone; a datetime keeps its own offset."""
        text = dump(base_policy()).replace(
            "effective_from: 2021-08-03", f"effective_from: {written}"
        )
        assert load_policy(text).rules[0].effective_from_ms == epoch_ms(expected)

    def test_plain_date_follows_the_policy_timezone(self) -> None:
        """The same date means a different instant under a different timezone."""
        text = changed(lambda p: p.update(timezone="UTC"))
        assert load_policy(text).rules[0].effective_from_ms == epoch_ms("2021-08-03T00:00:00Z")

    def test_every_condition_is_read(self) -> None:
        """Each `when` key fills its own field, with money amounts kept exact."""
        when = {
            "cross_border": False,
            "cluster_in": ["fashion"],
            "cluster_not_in": ["fashion"],
            "site_in": ["ID"],
            "seller_in": ["s1"],
            "seller_not_in": ["s2"],
            "seller_country_in": ["CN"],
            "ship_from_in": ["MY"],
            "brand_in": ["Acme"],
            "hs_code_prefix_in": ["4901"],
            "hs_code_prefix_not_in": ["61"],
            "price_below": {"amount": 99.99, "currency": "USD"},
            "price_at_least": {"amount": 10, "currency": "IDR"},
            "attribute_equals": {"condition": "new"},
        }
        model = load_policy(changed(lambda p: rule0(p).update(when=when)))
        assert model.rules[0].when == Conditions(
            cross_border=False,
            cluster_in=("fashion",),
            cluster_not_in=("fashion",),
            site_in=("ID",),
            seller_in=("s1",),
            seller_not_in=("s2",),
            seller_country_in=("CN",),
            ship_from_in=("MY",),
            brand_in=("Acme",),
            hs_code_prefix_in=("4901",),
            hs_code_prefix_not_in=("61",),
            price_below=Money(Decimal("99.99"), "USD"),
            price_at_least=Money(Decimal(10), "IDR"),
            attribute_equals=(("condition", "new"),),
        )


# (id, change to the base policy, the problem expected among the errors)
_CASES: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("unknown-top-key", lambda p: p.update(rulez=[]), "rulez: unknown key (did you mean 'rules'?)"),
    ("unknown-rule-key", lambda p: rule0(p).update(note="x"), "rules[0].note: unknown key"),
    (
        "unknown-when-key",
        lambda p: when0(p).update(clustr_in=["fashion"]),
        "rules[0].when.clustr_in: unknown key (did you mean 'cluster_in'?)",
    ),
    ("unknown-scope-key", lambda p: p["scope"].update(site=["ID"]), "scope.site: unknown key"),
    (
        "unknown-cluster-key",
        lambda p: p["clusters"]["fashion"].update(paths=[]),
        "clusters.fashion.paths: unknown key",
    ),
    ("unknown-fx-key", lambda p: p["fx"].update(date="2023-09-01"), "fx.date: unknown key"),
    (
        "unknown-price-key",
        lambda p: when0(p).update(price_below={"amount": 1, "currency": "USD", "fob": True}),
        "rules[0].when.price_below.fob: unknown key",
    ),
    ("missing-policy", lambda p: p.pop("policy"), "policy: missing required key"),
    ("missing-version", lambda p: p.pop("version"), "version: missing required key"),
    ("missing-rules", lambda p: p.pop("rules"), "rules: missing required key"),
    ("missing-rule-id", lambda p: rule0(p).pop("id"), "rules[0].id: missing required key"),
    ("missing-effect", lambda p: rule0(p).pop("effect"), "rules[0].effect: missing required key"),
    ("missing-when", lambda p: rule0(p).pop("when"), "rules[0].when: missing required key"),
    ("missing-sites", lambda p: p.update(scope={}), "scope.sites: missing required key"),
    ("missing-fx-base", lambda p: p["fx"].pop("base"), "fx.base: missing required key"),
    ("missing-fx-rates", lambda p: p["fx"].pop("rates"), "fx.rates: missing required key"),
    (
        "missing-amount",
        lambda p: when0(p).update(price_below={"currency": "USD"}),
        "rules[0].when.price_below.amount: missing required key",
    ),
    (
        "version-number",
        lambda p: p.update(version=2021.08),
        "version: expected a non-empty string, got a number (2021.08; quote it if it is text)",
    ),
    (
        "rules-mapping",
        lambda p: p.update(rules={}),
        "rules: expected a list of rules, got a mapping",
    ),
    ("rule-not-mapping", lambda p: p["rules"].append("r2"), "rules[1]: expected a mapping"),
    (
        "cross-border-text",
        lambda p: when0(p).update(cross_border="yes please"),
        "rules[0].when.cross_border: expected true or false",
    ),
    (
        "site-in-text",
        lambda p: when0(p).update(site_in="ID"),
        "rules[0].when.site_in: expected a non-empty list",
    ),
    (
        "site-in-empty",
        lambda p: when0(p).update(site_in=[]),
        "rules[0].when.site_in: expected a non-empty list, got an empty list",
    ),
    (
        "seller-in-number",
        lambda p: when0(p).update(seller_in=[42]),
        "rules[0].when.seller_in: expected non-empty strings, got a number",
    ),
    (
        "category-paths-text",
        lambda p: p["clusters"]["fashion"].update(category_paths="Women's Fashion"),
        "clusters.fashion.category_paths: expected a list of paths",
    ),
    (
        "category-path-text",
        lambda p: p["clusters"]["fashion"].update(category_paths=["Women's Fashion"]),
        "clusters.fashion.category_paths[0]: expected a non-empty list",
    ),
    (
        "empty-cluster",
        lambda p: p["clusters"].update(empty={"category_paths": [], "category_ids": []}),
        "clusters.empty: needs at least one of category_paths or category_ids",
    ),
    (
        "duplicate-rule-id",
        lambda p: p["rules"].append({**rule0(p)}),
        "rules[1].id: duplicate rule id 'r1' (first at rules[0])",
    ),
    (
        "unknown-cluster",
        lambda p: when0(p).update(cluster_in=["fashon"]),
        "rules[0].when.cluster_in: unknown cluster 'fashon' (did you mean 'fashion'?)",
    ),
    (
        "unknown-cluster-not-in",
        lambda p: when0(p).update(cluster_not_in=["culinary"]),
        "rules[0].when.cluster_not_in: unknown cluster 'culinary'",
    ),
    (
        "reject-without-reason",
        lambda p: rule0(p).pop("reason"),
        "rules[0].reason: a reject rule needs a reason code",
    ),
    (
        "reason-not-upper-snake",
        lambda p: rule0(p).update(reason="Closed-Category"),
        "rules[0].reason: 'Closed-Category' is not an UPPER_SNAKE code",
    ),
    (
        "bad-effect",
        lambda p: rule0(p).update(effect="deny"),
        "rules[0].effect: expected 'reject', 'review' or 'allow'",
    ),
    (
        "bad-rule-id",
        lambda p: rule0(p).update(id="has space"),
        "rules[0].id: 'has space' is not an id",
    ),
    (
        "empty-when",
        lambda p: rule0(p).update(when={}),
        "rules[0].when: needs at least one condition",
    ),
    (
        "when-list",
        lambda p: rule0(p).update(when=[]),
        "rules[0].when: expected a mapping, got a list",
    ),
    (
        "until-equals-from",
        lambda p: rule0(p).update(effective_until=date(2021, 8, 3)),
        "rules[0].effective_until: must be after effective_from (2021-08-03)",
    ),
    (
        "until-before-from",
        lambda p: rule0(p).update(effective_until=date(2021, 1, 1)),
        "rules[0].effective_until: must be after effective_from",
    ),
    (
        "naive-datetime",
        lambda p: rule0(p).update(effective_from="2021-08-03T10:00:00"),
        "rules[0].effective_from: datetime 2021-08-03T10:00:00 needs an offset",
    ),
    (
        "not-a-date",
        lambda p: rule0(p).update(effective_from="3 Aug 2021"),
        "rules[0].effective_from: '3 Aug 2021' is not a date (2021-08-03) or RFC 3339 datetime",
    ),
    (
        "date-number",
        lambda p: rule0(p).update(effective_until=2022),
        "rules[0].effective_until: expected a date",
    ),
    (
        "price-currency-without-rate",
        lambda p: when0(p).update(price_below={"amount": 100, "currency": "EUR"}),
        "rules[0].when.price_below.currency: no fx rate for 'EUR' in fx.rates",
    ),
    (
        "price-without-fx",
        lambda p: (p.pop("fx"), when0(p).update(price_at_least={"amount": 1, "currency": "USD"})),
        "rules[0].when.price_at_least: a price condition needs a top-level 'fx' table",
    ),
    (
        "price-amount-zero",
        lambda p: when0(p).update(price_below={"amount": 0, "currency": "USD"}),
        "rules[0].when.price_below.amount: must be a finite number greater than 0, got 0",
    ),
    (
        "price-amount-text",
        lambda p: when0(p).update(price_below={"amount": "100", "currency": "USD"}),
        "rules[0].when.price_below.amount: expected a number, got a string ('100')",
    ),
    (
        "unknown-country-scope",
        lambda p: p["scope"].update(sites=["ID", "XX"]),
        "scope.sites: unknown country code 'XX'",
    ),
    (
        "lowercase-country",
        lambda p: when0(p).update(site_in=["id"]),
        "rules[0].when.site_in: country codes are upper case: 'ID', not 'id'",
    ),
    (
        "alpha3-country",
        lambda p: when0(p).update(ship_from_in=["IDN"]),
        "rules[0].when.ship_from_in: unknown country code 'IDN'",
    ),
    (
        "kosovo-not-iso",
        lambda p: when0(p).update(seller_country_in=["XK"]),
        "rules[0].when.seller_country_in: unknown country code 'XK'",
    ),
    (
        "unknown-currency-base",
        lambda p: p["fx"].update(base="USX"),
        "fx.base: unknown currency code 'USX'",
    ),
    (
        "lowercase-currency",
        lambda p: p["fx"]["rates"].update(idr=1),
        "fx.rates.idr: currency codes are upper case: 'IDR', not 'idr'",
    ),
    (
        "price-bad-currency",
        lambda p: when0(p).update(price_below={"amount": 1, "currency": "RUPIAH"}),
        "rules[0].when.price_below.currency: unknown currency code 'RUPIAH'",
    ),
    (
        "base-rate-not-one",
        lambda p: p["fx"]["rates"].update(USD=2),
        "fx.rates.USD: the base currency's rate must be 1, got 2",
    ),
    (
        "negative-rate",
        lambda p: p["fx"]["rates"].update(IDR=-1),
        "fx.rates.IDR: must be a finite number greater than 0, got -1",
    ),
    (
        "rate-text",
        lambda p: p["fx"]["rates"].update(IDR="0.0001"),
        "fx.rates.IDR: expected a number",
    ),
    (
        "bad-timezone",
        lambda p: p.update(timezone="Asia/Jakarte"),
        "timezone: unknown time zone 'Asia/Jakarte'",
    ),
    (
        "timezone-path",
        lambda p: p.update(timezone="../etc/passwd"),
        "timezone: unknown time zone '../etc/passwd'",
    ),
    (
        "hs-prefix-not-digits",
        lambda p: when0(p).update(hs_code_prefix_in=["49.01"]),
        "rules[0].when.hs_code_prefix_in: HS code prefix '49.01' must be 2 to 10 digits",
    ),
    (
        "attribute-value-number",
        lambda p: when0(p).update(attribute_equals={"size": 42}),
        "rules[0].when.attribute_equals.size: expected a string value, got a number",
    ),
    (
        "attribute-equals-empty",
        lambda p: when0(p).update(attribute_equals={}),
        "rules[0].when.attribute_equals: needs at least one attribute",
    ),
    ("bad-policy-id", lambda p: p.update(policy="my policy!"), "policy: 'my policy!' is not an id"),
]


class TestValidationMessages:
    @pytest.mark.parametrize(
        ("mutate", "problem"), [c[1:] for c in _CASES], ids=[c[0] for c in _CASES]
    )
    def test_problem_names_its_path(
        self, mutate: Callable[[dict[str, Any]], object], problem: str
    ) -> None:
        """Each kind of mistake is reported as `path: message`."""
        with pytest.raises(PolicyError, match=re.escape(problem)):
            load_policy(changed(mutate), "policy.yaml")

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("- just\n- a list\n", "(top level): expected a mapping of policy keys, got a list"),
            ("", "(top level): expected a mapping of policy keys, got nothing"),
            (
                "just text",
                "(top level): expected a mapping of policy keys, got a string ('just text')",
            ),
            (
                "policy: p\nversion: 1\n  rules: []\n",
                "line 3, column 8: YAML syntax error: mapping values are not allowed",
            ),
            ("policy: [p\nversion: 1\n", "line 2, column 8: YAML syntax error"),
            ("policy: p\nversion: v\npolicy: q\nrules: []\n", "line 3: duplicate key 'policy'"),
            (
                "policy: p\nversion: v\nscope: {sites: [NO]}\nrules: []\n",
                "scope.sites: expected non-empty strings, got a boolean (false; YAML reads yes/no/on/off as booleans, quote it)",
            ),
        ],
        ids=[
            "list",
            "empty",
            "scalar",
            "bad-indent",
            "unclosed-flow",
            "duplicate-key",
            "norway-problem",
        ],
    )
    def test_file_level_problem(self, text: str, problem: str) -> None:
        """Problems with the document itself, including YAML syntax errors with their line."""
        with pytest.raises(PolicyError, match=re.escape(problem)):
            load_policy(text)

    def test_every_problem_is_collected(self) -> None:
        """One error carries all problems, in document order, and names the source."""

        def three_mistakes(p: dict[str, Any]) -> None:
            p["timezone"] = "Mars/Olympus"
            when0(p)["cluster_in"] = ["fashon"]
            rule0(p).pop("reason")

        with pytest.raises(PolicyError, match=r"^policy\.yaml: invalid policy: ") as caught:
            load_policy(changed(three_mistakes), "policy.yaml")
        assert caught.value.source == "policy.yaml"
        assert caught.value.code == "bad_policy"
        assert caught.value.problems == (
            "timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as 'Asia/Jakarta')",
            "rules[0].reason: a reject rule needs a reason code",
            "rules[0].when.cluster_in: unknown cluster 'fashon' (did you mean 'fashion'?)",
        )

    def test_allow_rule_needs_no_reason(self) -> None:
        """Only reject rules carry a reason; an allow rule without one is valid."""
        model = load_policy(
            changed(lambda p: (rule0(p).pop("reason"), rule0(p).update(effect="allow")))
        )
        assert model.rules[0].reason is None
