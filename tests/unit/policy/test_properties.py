"""Property tests: evaluation is a deterministic total function of (listing, compiled policy)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.core.records import Listing, Price
from consumer.policy import (
    BUNDLED_POLICIES,
    CompiledPolicy,
    bundled_policy_text,
    compile_policy,
    evaluate,
    explain,
    load_policy,
)

# Uses every condition, both price kinds, an allow rule and a bounded window.
KITCHEN_SINK = """\
policy: kitchen-sink
version: "0"
timezone: Asia/Jakarta
scope: {sites: [ID, MY]}
clusters:
  fashion: {category_paths: [["Women's Fashion"], [Fashion, Bags]], category_ids: [c-1]}
  food: {category_paths: [[Food]], category_ids: [c-1, c-2]}
fx: {base: USD, rates: {IDR: 0.0000625, JPY: 0.0067, BHD: 2.65, KRW: 0.00075}}
rules:
  - {id: exempt, effect: allow, when: {hs_code_prefix_in: ["4901"], price_at_least: {amount: 1, currency: USD}}}
  - id: closed
    effect: reject
    reason: CLOSED
    effective_from: 2021-08-03
    effective_until: 2030-01-01T00:00:00Z
    when: {cross_border: true, cluster_in: [fashion, food]}
  - {id: sellers, effect: reject, reason: SELLER, when: {seller_in: [s1], seller_not_in: [s2], seller_country_in: [CN], ship_from_in: [CN, MY]}}
  - {id: brand, effect: reject, reason: BRAND, when: {brand_in: [Acme], site_in: [ID], cluster_not_in: [food]}}
  - {id: cheap, effect: reject, reason: CHEAP, when: {price_below: {amount: 100, currency: USD}, hs_code_prefix_not_in: ["61"]}}
  - {id: used, effect: reject, reason: USED, when: {attribute_equals: {condition: used}, cross_border: false}}
"""

# Uses every key issue 15 added: named conditions using each other, all/any/not, unless on a
# priced block, exempts with ids and "*", a legacy allow, and review rules.
LANGUAGE_SINK = """\
policy: language-sink
version: "0"
timezone: Asia/Jakarta
scope: {sites: [ID, MY]}
clusters:
  fashion: {category_paths: [["Women's Fashion"], [Fashion, Bags]], category_ids: [c-1]}
  food: {category_paths: [[Food]], category_ids: [c-1, c-2]}
fx: {base: USD, rates: {IDR: 0.0000625, JPY: 0.0067, BHD: 2.65, KRW: 0.00075}}
conditions:
  imported: {cross_border: true}
  closed_import: {condition: imported, any: [{cluster_in: [fashion]}, {cluster_in: [food]}]}
  cheap: {price_below: {amount: 100, currency: USD}}
  book: {hs_code_prefix_in: ["4901"]}
rules:
  - id: closed
    effect: reject
    reason: CLOSED
    effective_from: 2021-08-03
    when: {condition: closed_import}
    unless: {all: [{condition: book}, {not: {condition: cheap}}]}
  - {id: cheap, effect: reject, reason: CHEAP, when: {condition: cheap, not: {brand_in: [Acme]}}}
  - {id: doubt, effect: review, reason: DOUBT, when: {any: [{hs_code_prefix_in: ["61"]}, {seller_in: [s1]}]}}
  - id: odd
    effect: review
    reason: ODD
    when: {not: {any: [{condition: imported}, {attribute_equals: {condition: new}}]}}
    unless: {price_at_least: {amount: 1000, currency: USD}}
  - {id: books, effect: allow, exempts: [cheap, doubt], when: {condition: book, site_in: [ID]}}
  - {id: trusted, effect: allow, exempts: ["*"], when: {seller_in: [s2], seller_country_in: [MY]}}
  - {id: legacy, effect: allow, when: {brand_in: [Legacy]}}
"""

TEXTS = {name: bundled_policy_text(name) for name in BUNDLED_POLICIES} | {
    "kitchen-sink": KITCHEN_SINK
}
POLICIES: dict[str, CompiledPolicy] = {
    name: compile_policy(load_policy(text)) for name, text in TEXTS.items()
}

codes = st.sampled_from(["ID", "MY", "SG", "CN", "US"]) | st.text(max_size=3)
segments = st.sampled_from(
    ["Women's Fashion", "Food", "Fashion", "Bags", "BATIK", "Kerajinan"]
) | st.text(max_size=12)
listings = st.builds(
    Listing,
    event_id=st.text(max_size=8),
    event_time_ms=st.integers(-(2**63), 2**63 - 1),
    listing_id=st.text(max_size=8),
    seller_id=st.sampled_from(["s1", "s2"]) | st.text(max_size=4),
    site=codes,
    seller_country=codes,
    ship_from_country=codes,
    category_id=st.sampled_from(["c-1", "c-2"]) | st.text(max_size=4),
    category_path=st.lists(segments, max_size=4).map(tuple),
    title=st.text(max_size=8),
    price=st.builds(
        Price,
        amount_minor=st.integers(-(2**63), 2**63 - 1),
        currency=st.sampled_from(["IDR", "USD", "JPY", "BHD", "KRW", "CNY", "EUR"])
        | st.text(max_size=3),
    ),
    channel=st.sampled_from([None, "DOMESTIC", "CROSS_BORDER"]),
    brand=st.none() | st.sampled_from(["acme", " ACME "]) | st.text(max_size=6),
    hs_code=st.none() | st.sampled_from(["4901.99", "610910", "61"]) | st.text(max_size=8),
    attributes=st.dictionaries(
        st.sampled_from(["condition", "color"]) | st.text(max_size=4),
        st.text(max_size=4),
        max_size=3,
    ),
)
policy_names = st.sampled_from(sorted(POLICIES))


LANGUAGE = compile_policy(load_policy(LANGUAGE_SINK))
_SEVERITY = {"APPROVED": 0, "REVIEW": 1, "REJECTED": 2}


class TestLanguageProperties:
    @settings(max_examples=400, deadline=None)
    @given(listing=listings)
    def test_outcome_is_the_most_severe_unexempted_rule(self, listing: Listing) -> None:
        """Never raises; the outcome is the most severe effect among matched rules that were not
        exempted, the reasons are exactly those rules', and every exempted rule matched."""
        verdict = evaluate(listing, LANGUAGE)
        effects = {rule.id: rule.effect for rule in LANGUAGE.rules}
        exempted = {e.rule_id for e in verdict.exemptions}
        assert exempted <= set(verdict.matched_rules)
        applying = [r for r in verdict.matched_rules if effects[r] != "allow" and r not in exempted]
        worst = max((2 if effects[r] == "reject" else 1 for r in applying), default=0)
        assert _SEVERITY[verdict.outcome] == worst
        giving = "reject" if worst == 2 else "review"
        assert [r.rule_id for r in verdict.reasons] == [r for r in applying if effects[r] == giving]

    @settings(max_examples=200, deadline=None)
    @given(listing=listings)
    def test_deterministic_and_explained(self, listing: Listing) -> None:
        """Same verdict again and under a fresh compile; explain renders and agrees."""
        first = evaluate(listing, LANGUAGE)
        assert evaluate(listing, compile_policy(load_policy(LANGUAGE_SINK))) == first
        lines = explain(listing, LANGUAGE).splitlines()
        assert f"outcome: {first.outcome}" in lines
        assert sum(line.startswith("  exempted ") for line in lines) == len(first.exemptions)


class TestEvaluationProperties:
    @settings(max_examples=300, deadline=None)
    @given(listing=listings, name=policy_names)
    def test_evaluation_is_deterministic(self, listing: Listing, name: str) -> None:
        """The same listing gives the same verdict, again and under a freshly compiled copy."""
        first = evaluate(listing, POLICIES[name])
        assert evaluate(listing, POLICIES[name]) == first
        assert evaluate(listing, compile_policy(load_policy(TEXTS[name]))) == first

    @settings(max_examples=300, deadline=None)
    @given(listing=listings, name=policy_names)
    def test_verdict_is_consistent(self, listing: Listing, name: str) -> None:
        """Never raises; APPROVED exactly when there are no reasons, each from a matched rule."""
        verdict = evaluate(listing, POLICIES[name])
        assert (verdict.outcome != "APPROVED") == bool(verdict.reasons)
        assert {r.rule_id for r in verdict.reasons} <= set(verdict.matched_rules)
        ids = [rule.id for rule in POLICIES[name].rules]
        assert list(verdict.matched_rules) == [i for i in ids if i in verdict.matched_rules]

    @settings(max_examples=150, deadline=None)
    @given(listing=listings, name=policy_names)
    def test_explain_never_raises_and_agrees(self, listing: Listing, name: str) -> None:
        """The account always renders and states evaluate's outcome."""
        text = explain(listing, POLICIES[name])
        assert f"outcome: {evaluate(listing, POLICIES[name]).outcome}" in text.splitlines()
