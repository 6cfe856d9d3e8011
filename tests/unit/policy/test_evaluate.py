"""evaluate, compile_policy, explain and summarize on small hand-written policies."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from consumer.core.records import Exemption, Price, Verdict
from consumer.policy import (
    CompiledPolicy,
    compile_policy,
    evaluate,
    explain,
    load_policy,
    summarize,
)
from tests.unit.listings import epoch_ms, make_listing

# 1 IDR = 0.0000625 USD, so IDR 160,000.00 (amount_minor 16,000,000) is exactly USD 10.
HEADER = """\
policy: test-policy
version: "1"
timezone: Asia/Jakarta
clusters:
  fashion: {category_paths: [["Women's Fashion"], [Bags]], category_ids: [c-bag]}
  electronics: {category_paths: [[Electronics]]}
fx:
  base: USD
  rates: {IDR: 0.0000625, JPY: 0.01, KRW: 0.001, BHD: 2.5}
"""


def compiled(rules: list[dict[str, Any]], header: str = HEADER) -> CompiledPolicy:
    return compile_policy(load_policy(header + yaml.safe_dump({"rules": rules})))


def reject(rule_id: str, **when: Any) -> dict[str, Any]:
    return {"id": rule_id, "effect": "reject", "reason": f"R_{rule_id.upper()}", "when": when}


def allow(rule_id: str, **when: Any) -> dict[str, Any]:
    return {"id": rule_id, "effect": "allow", "when": when}


def usd(amount: float) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


class TestCrossBorder:
    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"channel": "CROSS_BORDER", "ship_from_country": "ID"}, True),
            ({"channel": "DOMESTIC", "ship_from_country": "CN"}, False),
            ({"channel": None, "ship_from_country": "CN"}, True),
            ({"channel": None, "ship_from_country": "ID"}, False),
        ],
        ids=[
            "channel-cross-border-wins",
            "channel-domestic-wins",
            "ships-from-abroad",
            "ships-from-site",
        ],
    )
    def test_channel_first_then_ship_from(self, overrides: dict[str, Any], expected: bool) -> None:
        """The channel decides when set; otherwise ship_from_country != site."""
        verdict = evaluate(make_listing(**overrides), compiled([reject("x", site_in=["SG"])]))
        assert verdict.cross_border is expected


# (id, when, listing overrides, whether the rule matches)
_CONDITIONS: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("cross-border-true-held", {"cross_border": True}, {}, True),
    ("cross-border-true-not", {"cross_border": True}, {"ship_from_country": "ID"}, False),
    ("cross-border-false-held", {"cross_border": False}, {"channel": "DOMESTIC"}, True),
    ("cross-border-false-not", {"cross_border": False}, {}, False),
    ("cluster-in-held", {"cluster_in": ["fashion"]}, {}, True),
    ("cluster-in-not", {"cluster_in": ["fashion"]}, {"category_path": ("Electronics",)}, False),
    ("cluster-in-no-cluster", {"cluster_in": ["fashion"]}, {"category_path": ("Toys",)}, False),
    (
        "cluster-in-by-id",
        {"cluster_in": ["fashion"]},
        {"category_id": "c-bag", "category_path": ("Toys",)},
        True,
    ),
    (
        "cluster-not-in-held",
        {"cluster_not_in": ["fashion"]},
        {"category_path": ("Electronics",)},
        True,
    ),
    ("cluster-not-in-not", {"cluster_not_in": ["fashion"]}, {}, False),
    (
        "cluster-not-in-no-cluster",
        {"cluster_not_in": ["fashion"]},
        {"category_path": ("Toys",)},
        True,
    ),
    ("site-in-held", {"site_in": ["ID", "MY"]}, {}, True),
    ("site-in-not", {"site_in": ["MY"]}, {}, False),
    ("seller-in-held", {"seller_in": ["seller-cn-1"]}, {}, True),
    ("seller-in-not", {"seller_in": ["seller-cn-2"]}, {}, False),
    ("seller-not-in-held", {"seller_not_in": ["seller-cn-2"]}, {}, True),
    ("seller-not-in-not", {"seller_not_in": ["seller-cn-1"]}, {}, False),
    ("seller-country-in-held", {"seller_country_in": ["CN"]}, {}, True),
    ("seller-country-in-not", {"seller_country_in": ["CN"]}, {"seller_country": "MY"}, False),
    ("ship-from-in-held", {"ship_from_in": ["CN"]}, {}, True),
    ("ship-from-in-not", {"ship_from_in": ["CN"]}, {"ship_from_country": "SG"}, False),
    ("brand-in-case-insensitive", {"brand_in": ["Acme Corp"]}, {"brand": "  ACME  corp"}, True),
    ("brand-in-not", {"brand_in": ["Acme Corp"]}, {"brand": "Acme"}, False),
    ("brand-in-no-brand", {"brand_in": ["Acme Corp"]}, {"brand": None}, False),
    ("hs-in-held", {"hs_code_prefix_in": ["61", "4901"]}, {"hs_code": "490199"}, True),
    ("hs-in-dotted-code", {"hs_code_prefix_in": ["4901"]}, {"hs_code": "4901.99"}, True),
    ("hs-in-not", {"hs_code_prefix_in": ["4901"]}, {"hs_code": "620442"}, False),
    ("hs-in-no-code", {"hs_code_prefix_in": ["4901"]}, {"hs_code": None}, False),
    ("hs-not-in-held", {"hs_code_prefix_not_in": ["4901"]}, {"hs_code": "620442"}, True),
    ("hs-not-in-not", {"hs_code_prefix_not_in": ["4901"]}, {"hs_code": "490199"}, False),
    ("hs-not-in-no-code", {"hs_code_prefix_not_in": ["4901"]}, {"hs_code": None}, True),
    ("price-below-held", {"price_below": usd(10)}, {"price": Price(15_999_999, "IDR")}, True),
    ("price-below-at-limit", {"price_below": usd(10)}, {"price": Price(16_000_000, "IDR")}, False),
    ("price-below-usd-cents", {"price_below": usd(10)}, {"price": Price(999, "USD")}, True),
    ("price-below-usd-at-limit", {"price_below": usd(10)}, {"price": Price(1000, "USD")}, False),
    ("price-below-jpy-exponent-0", {"price_below": usd(10)}, {"price": Price(999, "JPY")}, True),
    ("price-below-jpy-at-limit", {"price_below": usd(10)}, {"price": Price(1000, "JPY")}, False),
    ("price-below-krw-exponent-0", {"price_below": usd(10)}, {"price": Price(9_999, "KRW")}, True),
    ("price-below-bhd-exponent-3", {"price_below": usd(10)}, {"price": Price(3_999, "BHD")}, True),
    ("price-below-bhd-at-limit", {"price_below": usd(10)}, {"price": Price(4_000, "BHD")}, False),
    ("price-at-least-held", {"price_at_least": usd(10)}, {"price": Price(16_000_000, "IDR")}, True),
    ("price-at-least-not", {"price_at_least": usd(10)}, {"price": Price(15_999_999, "IDR")}, False),
    (
        "price-limit-in-other-currency",
        {"price_below": {"amount": 160000, "currency": "IDR"}},
        {"price": Price(999, "USD")},
        True,
    ),
    (
        "attribute-equals-held",
        {"attribute_equals": {"condition": "new", "color": "red"}},
        {"attributes": {"condition": "new", "color": "red", "size": "M"}},
        True,
    ),
    (
        "attribute-equals-one-differs",
        {"attribute_equals": {"condition": "new", "color": "red"}},
        {"attributes": {"condition": "new", "color": "blue"}},
        False,
    ),
    (
        "attribute-equals-missing",
        {"attribute_equals": {"condition": "new"}},
        {"attributes": {}},
        False,
    ),
    (
        "all-conditions-and",
        {"cross_border": True, "cluster_in": ["fashion"], "seller_country_in": ["MY"]},
        {},
        False,
    ),
]


class TestConditions:
    @pytest.mark.parametrize(
        ("when", "overrides", "matches"),
        [c[1:] for c in _CONDITIONS],
        ids=[c[0] for c in _CONDITIONS],
    )
    def test_condition(
        self, when: dict[str, Any], overrides: dict[str, Any], matches: bool
    ) -> None:
        """Each condition holds or not as documented; every condition of a rule must hold."""
        verdict = evaluate(make_listing(**overrides), compiled([reject("r", **when)]))
        assert verdict.outcome == ("REJECTED" if matches else "APPROVED")
        assert verdict.matched_rules == (("r",) if matches else ())


class TestWindow:
    @pytest.mark.parametrize(
        ("event_time", "in_window"),
        [
            ("2021-08-02T16:59:59.999Z", False),
            ("2021-08-02T17:00:00.000Z", True),
            ("2021-08-03T00:00:00.000+07:00", True),
            ("2021-08-31T16:59:59.999Z", True),
            ("2021-08-31T17:00:00.000Z", False),
        ],
        ids=[
            "1ms-before-from",
            "exactly-from",
            "from-in-jakarta-time",
            "1ms-before-until",
            "exactly-until",
        ],
    )
    def test_from_inclusive_until_exclusive_in_policy_timezone(
        self, event_time: str, in_window: bool
    ) -> None:
        """Plain dates mean 00:00 Asia/Jakarta, i.e. 17:00Z the day before; until is exclusive."""
        rule = reject("r", cross_border=True)
        rule.update(effective_from="2021-08-03", effective_until="2021-09-01")
        text = HEADER + yaml.safe_dump({"rules": [rule]}).replace("'", "")
        verdict = evaluate(
            make_listing(event_time_ms=epoch_ms(event_time)), compile_policy(load_policy(text))
        )
        assert verdict.outcome == ("REJECTED" if in_window else "APPROVED")

    def test_allow_rule_outside_its_window_does_not_override(self) -> None:
        """An expired allow rule neither approves nor appears in matched_rules."""
        exemption = allow("a", cross_border=True)
        exemption["effective_until"] = "2021-01-01T00:00:00Z"
        verdict = evaluate(make_listing(), compiled([exemption, reject("r", cross_border=True)]))
        assert (verdict.outcome, verdict.matched_rules) == ("REJECTED", ("r",))


class TestOutcome:
    def test_allow_rule_beats_reject_rule(self) -> None:
        """A matching allow rule approves; matched_rules keeps every match in file order, and
        the exemption it granted is recorded."""
        policy = compiled(
            [reject("r", cluster_in=["fashion"]), allow("a", seller_in=["seller-cn-1"])]
        )
        assert evaluate(make_listing(), policy) == Verdict(
            "APPROVED", (), ("r", "a"), "fashion", True, (Exemption("r", "a"),)
        )

    def test_allow_rule_that_does_not_match_changes_nothing(self) -> None:
        """Only a matching allow rule overrides."""
        policy = compiled([allow("a", seller_in=["other"]), reject("r", cluster_in=["fashion"])])
        verdict = evaluate(make_listing(), policy)
        assert (verdict.outcome, verdict.matched_rules) == ("REJECTED", ("r",))

    def test_one_reason_per_matching_reject_rule_in_file_order(self) -> None:
        """Several matching reject rules give several reasons, ordered as in the file."""
        policy = compiled(
            [
                reject("b", cross_border=True),
                reject("skip", site_in=["SG"]),
                reject("a", cluster_in=["fashion"]),
                reject("c", ship_from_in=["CN"]),
            ]
        )
        verdict = evaluate(make_listing(), policy)
        assert verdict.outcome == "REJECTED"
        assert [(r.code, r.rule_id) for r in verdict.reasons] == [
            ("R_B", "b"),
            ("R_A", "a"),
            ("R_C", "c"),
        ]
        assert verdict.matched_rules == ("b", "a", "c")

    def test_no_match_is_approved_without_reasons(self) -> None:
        """Nothing matching means APPROVED with empty reasons and matched_rules."""
        verdict = evaluate(
            make_listing(channel="DOMESTIC"), compiled([reject("r", cross_border=True)])
        )
        assert verdict == Verdict("APPROVED", (), (), "fashion", False)

    def test_reason_message_comes_from_the_rule(self) -> None:
        """The rule's message travels in the reason; a rule without one gets a default naming it."""
        with_message = reject("m", cross_border=True) | {"message": "Closed for imports"}
        verdict = evaluate(make_listing(), compiled([with_message, reject("d", cross_border=True)]))
        assert [r.message for r in verdict.reasons] == ["Closed for imports", "rejected by rule d"]


class TestUnknownCurrency:
    def test_reject_rule_fails_closed_with_unknown_currency(self) -> None:
        """Other conditions hold, the currency has no rate: the rule matches as UNKNOWN_CURRENCY."""
        policy = compiled([reject("min", cross_border=True, price_below=usd(100))])
        verdict = evaluate(make_listing(price=Price(500, "EUR")), policy)
        assert verdict.outcome == "REJECTED"
        assert verdict.matched_rules == ("min",)
        [reason] = verdict.reasons
        assert (reason.code, reason.rule_id) == ("UNKNOWN_CURRENCY", "min")
        assert "'EUR'" in reason.message

    def test_other_conditions_are_checked_first(self) -> None:
        """An unknown currency does not reject a listing the rule does not otherwise cover."""
        policy = compiled([reject("min", cross_border=True, price_below=usd(100))])
        verdict = evaluate(make_listing(price=Price(500, "EUR"), channel="DOMESTIC"), policy)
        assert verdict.outcome == "APPROVED"

    def test_allow_rule_with_unknown_currency_does_not_match(self) -> None:
        """An exemption that cannot be checked is not granted: the reject rule still applies."""
        policy = compiled(
            [allow("rich", price_at_least=usd(1000)), reject("closed", cluster_in=["fashion"])]
        )
        verdict = evaluate(make_listing(price=Price(10**9, "EUR")), policy)
        assert (verdict.outcome, verdict.matched_rules) == ("REJECTED", ("closed",))
        assert verdict.reasons[0].code == "R_CLOSED"

    def test_rules_without_price_conditions_ignore_the_currency(self) -> None:
        """Only rules with a price condition care whether the currency has a rate."""
        verdict = evaluate(
            make_listing(price=Price(1, "EUR")), compiled([reject("r", cross_border=True)])
        )
        assert verdict.reasons[0].code == "R_R"

    def test_base_currency_needs_no_listed_rate(self) -> None:
        """The fx base is worth 1 even when fx.rates does not list it."""
        policy = compiled([reject("min", price_below=usd(10))])
        assert "USD" not in HEADER.split("rates:")[1]
        assert evaluate(make_listing(price=Price(999, "USD")), policy).reasons[0].code == "R_MIN"


class TestScope:
    def test_out_of_scope_site_is_approved_without_rules(self) -> None:
        """No rule runs for another site, but cluster and cross-border are still reported."""
        header = HEADER + "scope: {sites: [ID]}\n"
        verdict = evaluate(
            make_listing(site="SG"), compiled([reject("r", cross_border=True)], header)
        )
        assert verdict == Verdict("APPROVED", (), (), "fashion", True)

    def test_no_scope_means_every_site(self) -> None:
        """Without a scope section every site's listings are evaluated."""
        verdict = evaluate(make_listing(site="SG"), compiled([reject("r", cross_border=True)]))
        assert verdict.outcome == "REJECTED"


BASE_RULES = "rules:\n  - {id: r, effect: reject, reason: R, effective_from: 2021-08-03, when: {cross_border: true}}\n"
BASE_TEXT = HEADER + BASE_RULES


class TestCompiledPolicy:
    def test_exposes_identity_and_scope(self) -> None:
        """The worker, CLI and metrics read these names."""
        policy = compile_policy(load_policy(BASE_TEXT + "scope: {sites: [ID, MY]}\n"))
        assert policy.policy_id == "test-policy"
        assert re.fullmatch(r"1\+[0-9a-f]{8}", policy.version)
        assert policy.timezone == "Asia/Jakarta"
        assert policy.scope_sites == frozenset({"ID", "MY"})
        assert [rule.id for rule in policy.rules] == ["r"]
        assert policy.rate_per_minor["IDR"] == pytest.approx(0.000000625)
        assert policy.rate_per_minor["JPY"] == pytest.approx(0.01)

    @pytest.mark.parametrize(
        "variant",
        [
            "# a comment\n" + BASE_TEXT + "\n\n# trailing comment\n",
            BASE_TEXT.replace("{IDR: 0.0000625, JPY: 0.01", "{JPY: 0.01, IDR: 6.25e-05"),
            BASE_TEXT.replace(
                "effective_from: 2021-08-03", "effective_from: 2021-08-03T00:00:00+07:00"
            ),
            BASE_TEXT.replace('version: "1"', "version: '1'"),
            BASE_RULES + HEADER,
        ],
        ids=[
            "comments-and-blank-lines",
            "key-order-and-number-spelling",
            "same-instant-spelled-differently",
            "quote-style",
            "section-order",
        ],
    )
    def test_version_hash_ignores_layout(self, variant: str) -> None:
        """The hash covers what the policy says, not how the YAML is laid out."""
        base = compile_policy(load_policy(BASE_TEXT)).version
        assert compile_policy(load_policy(variant)).version == base

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("reason: R,", "reason: S,"),
            ("cross_border: true", "cross_border: false"),
            ("JPY: 0.01", "JPY: 0.02"),
            ("[Bags]", "[Bags], [Shoes]"),
            ('[["Women\'s Fashion"], [Bags]]', '[[Bags], ["Women\'s Fashion"]]'),
            ("timezone: Asia/Jakarta", "timezone: Asia/Makassar"),
            ("effective_from: 2021-08-03", "effective_from: 2021-08-04"),
        ],
        ids=[
            "reason",
            "condition",
            "rate",
            "category-path",
            "category-path-order",
            "timezone",
            "window",
        ],
    )
    def test_version_hash_changes_with_content(self, old: str, new: str) -> None:
        """Any change to what the policy says gives a new version, so decisions can be traced."""
        assert old in BASE_TEXT
        changed = compile_policy(load_policy(BASE_TEXT.replace(old, new))).version
        assert changed != compile_policy(load_policy(BASE_TEXT)).version
        assert changed.startswith("1+")


class TestExplain:
    def test_explains_every_step_of_a_rejection(self) -> None:
        """Scope, cross-border and why, cluster and prefix, each condition with values, outcome."""
        policy = compiled(
            [
                reject("closed", cross_border=True, cluster_in=["fashion"]),
                allow("book", hs_code_prefix_in=["4901"]),
            ],
            HEADER + "scope: {sites: [ID]}\n",
        )
        text = explain(make_listing(hs_code="620442"), policy)
        for line in [
            "listing lst-1 (event evt-1) at 2021-08-03T10:06:40.000+07:00 [Asia/Jakarta]",
            "scope: site ID is in scope (ID)",
            "cross-border: yes (no channel; ship_from CN != site ID)",
            "cluster: fashion (path Women's Fashion > Dresses starts with Women's Fashion)",
            "  closed (reject R_CLOSED): in effect (from always until open)",
            "    cross_border true: held (listing: true)",
            "    cluster_in [fashion]: held (listing: fashion)",
            "    hs_code_prefix_in [4901]: did not hold (listing: 620442)",
            "outcome: REJECTED",
            "  reason R_CLOSED (closed): rejected by rule closed",
            "matched rules: closed",
        ]:
            assert line in text.splitlines()

    def test_explains_windows_prices_and_unknown_currency(self) -> None:
        """Out-of-window rules are skipped; price lines show the converted value or the missing rate."""
        late = reject("late", cross_border=True) | {"effective_from": "2030-01-01T00:00:00Z"}
        policy = compiled(
            [late, reject("min", price_below=usd(10)), allow("rich", price_at_least=usd(1))]
        )
        idr = explain(make_listing(), policy).splitlines()
        assert (
            "  late (reject R_LATE): not in effect at this time (from 2030-01-01T07:00+07:00 until open); skipped"
            in idr
        )
        assert "    price_below 10 USD: held (listing: 15000000 minor IDR = 9.375000 USD)" in idr
        eur = explain(make_listing(price=Price(100, "EUR")), policy).splitlines()
        assert "    -> matched; reason becomes UNKNOWN_CURRENCY (fail closed)" in eur
        assert "    -> no match (an allow rule is not granted on an unknown currency)" in eur

    def test_out_of_scope_listing_lists_no_rules(self) -> None:
        """The account says why no rule ran."""
        policy = compiled([reject("r", cross_border=True)], HEADER + "scope: {sites: [ID]}\n")
        text = explain(make_listing(site="SG", category_id="c-bag", category_path=()), policy)
        assert "scope: site SG is out of scope (ID); approved without evaluating rules" in text
        assert "cluster: fashion (category_id c-bag is listed)" in text
        assert "rules:" not in text.splitlines()
        assert text.endswith("outcome: APPROVED\nmatched rules: none")


class TestSummarize:
    def test_summary_lists_identity_clusters_and_rules(self) -> None:
        """validate-policy prints id, version, timezone, scope, clusters with counts, rules with windows."""
        text = BASE_TEXT + "description: A test.\nscope: {sites: [ID]}\n"
        policy = compile_policy(load_policy(text))
        summary = summarize(policy)
        for line in [
            "policy: test-policy",
            f"version: {policy.version}",
            "description: A test.",
            "timezone: Asia/Jakarta",
            "scope: ID",
            "clusters (2):",
            "  fashion: 2 paths, 1 ids",
            "  electronics: 1 paths, 0 ids",
            "fx: base USD; rates for IDR, JPY, KRW, BHD",
            "rules (1):",
            "  r: reject R; from 2021-08-03T00:00+07:00 until open",
            "    when cross_border true",
        ]:
            assert line in summary.splitlines()
        assert summarize(policy.model) == summary
