"""The policies shipped as package data: they load, and say what the issue requires."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from consumer.core.records import Price
from consumer.errors import PolicyError
from consumer.policy import (
    BUNDLED_POLICIES,
    CompiledPolicy,
    bundled_policy_text,
    compile_policy,
    evaluate,
    load_policy,
)
from consumer.policy.model import Conditions, Money
from tests.unit.listings import epoch_ms, make_listing

ROOT = Path(__file__).resolve().parents[3]


def bundled(name: str) -> CompiledPolicy:
    return compile_policy(load_policy(bundled_policy_text(name), f"<bundled {name}>"))


class TestBundledPolicyText:
    @pytest.mark.parametrize("name", BUNDLED_POLICIES, ids=BUNDLED_POLICIES)
    def test_each_bundled_policy_is_valid(self, name: str) -> None:
        """Every shipped file loads and compiles, and its id is its name."""
        assert bundled(name).policy_id == name

    def test_default_is_the_akar_policy(self) -> None:
        """With no name, the default policy used when no --policy is given."""
        assert bundled_policy_text() == bundled_policy_text("id-akar-import-closure")
        assert BUNDLED_POLICIES[0] == "id-akar-import-closure"

    def test_unknown_name_is_a_policy_error(self) -> None:
        """A misspelt name fails with the list of names that exist."""
        with pytest.raises(PolicyError, match=r"unknown bundled policy 'akar'; bundled: id-akar"):
            bundled_policy_text("akar")

    def test_policies_are_declared_as_package_data(self) -> None:
        """The wheel carries the YAML files, not just the source tree."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        assert "data/policies/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["consumer"]


AKAR_FROM = epoch_ms("2021-08-02T17:00:00Z")  # 2021-08-03 00:00 Asia/Jakarta

# (cluster, path) pairs the issue lists; every one must fall in its cluster.
_REQUIRED_PREFIXES = [
    ("fashion_textile", (p,))
    for p in [
        "Women's Fashion",
        "Men's Fashion",
        "Muslim Fashion",
        "Kids' Fashion",
        "Fashion Accessories",
        "Textiles",
        "Batik",
        "Shoes",
        "Bags",
        "Fashion Wanita",
        "Fashion Pria",
        "Fashion Muslim",
        "Fashion Anak",
        "Aksesoris Fashion",
        "Tekstil",
        "Sepatu",
        "Tas",
    ]
] + [
    ("culinary", ("Food & Beverages",)),
    ("culinary", ("Makanan & Minuman",)),
    ("culinary", ("Groceries", "Food")),
    ("culinary", ("Groceries", "Beverages")),
    ("culinary", ("Kuliner",)),
    ("crafts", ("Handicrafts",)),
    ("crafts", ("Kerajinan",)),
    ("crafts", ("Kerajinan Tangan",)),
    ("crafts", ("Home & Living", "Handicrafts")),
    ("crafts", ("Rumah & Gaya Hidup", "Kerajinan")),
]


class TestAkarPolicy:
    def test_shape_matches_the_issue(self) -> None:
        """Jakarta time, site ID, three cross-border reject rules from 2021-08-03."""
        policy = bundled("id-akar-import-closure")
        model = policy.model
        assert (model.timezone, model.scope_sites, model.fx) == ("Asia/Jakarta", ("ID",), None)
        assert [c.name for c in model.clusters] == ["fashion_textile", "culinary", "crafts"]
        for rule, cluster in zip(
            model.rules, ["fashion_textile", "culinary", "crafts"], strict=True
        ):
            assert rule.id == f"akar-{cluster.replace('_', '-')}"
            assert (rule.effect, rule.reason) == ("reject", "IMPORT_CLOSED_CATEGORY")
            assert (rule.effective_from_ms, rule.effective_until_ms) == (AKAR_FROM, None)
            assert rule.when == Conditions(cross_border=True, cluster_in=(cluster,))
            assert rule.message

    @pytest.mark.parametrize(
        ("cluster", "path"),
        _REQUIRED_PREFIXES,
        ids=[" > ".join(p) for _, p in _REQUIRED_PREFIXES],
    )
    def test_required_category_prefix_is_in_its_cluster(
        self, cluster: str, path: tuple[str, ...]
    ) -> None:
        """Each prefix the issue names, and any path below it, falls in the right cluster."""
        taxonomy = bundled("id-akar-import-closure").taxonomy
        assert taxonomy.cluster_of("c-x", path) == cluster
        assert taxonomy.cluster_of("c-x", (*path, "Anything Below")) == cluster

    @pytest.mark.parametrize(
        ("overrides", "outcome", "reason_rule"),
        [
            ({}, "REJECTED", "akar-fashion-textile"),
            ({"event_time_ms": AKAR_FROM - 1}, "APPROVED", None),
            ({"event_time_ms": AKAR_FROM}, "REJECTED", "akar-fashion-textile"),
            ({"channel": "DOMESTIC"}, "APPROVED", None),
            ({"ship_from_country": "ID"}, "APPROVED", None),
            ({"site": "MY"}, "APPROVED", None),
            ({"category_path": ("Makanan & Minuman", "Kopi")}, "REJECTED", "akar-culinary"),
            (
                {"category_path": ("Rumah & Gaya Hidup", "Kerajinan", "Anyaman")},
                "REJECTED",
                "akar-crafts",
            ),
            ({"category_path": ("Electronics", "Phones")}, "APPROVED", None),
        ],
        ids=[
            "imported-dress",
            "1ms-before-closure",
            "at-closure",
            "domestic-channel",
            "ships-from-indonesia",
            "other-site",
            "imported-coffee",
            "imported-basket",
            "imported-phone",
        ],
    )
    def test_decisions(
        self, overrides: dict[str, Any], outcome: str, reason_rule: str | None
    ) -> None:
        """Imports in the three clusters are closed from the start date; everything else passes."""
        verdict = evaluate(make_listing(**overrides), bundled("id-akar-import-closure"))
        assert verdict.outcome == outcome
        assert [r.rule_id for r in verdict.reasons] == ([reason_rule] if reason_rule else [])
        assert all(r.code == "IMPORT_CLOSED_CATEGORY" for r in verdict.reasons)


PERMENDAG_FROM = epoch_ms("2023-09-25T17:00:00Z")  # 2023-09-26 00:00 Asia/Jakarta


class TestPermendagPolicy:
    def test_shape_matches_the_issue(self) -> None:
        """A USD 100 cross-border minimum from 2023-09-26 with an HS 4901 exemption and seven rates."""
        model = bundled("permendag-31-2023").model
        assert model.fx is not None
        assert model.fx.base == "USD"
        assert {code for code, _ in model.fx.rates} == {
            "IDR",
            "USD",
            "CNY",
            "MYR",
            "SGD",
            "KRW",
            "JPY",
        }
        exemption, minimum = model.rules
        assert (exemption.effect, exemption.when.hs_code_prefix_in) == ("allow", ("4901",))
        assert (minimum.effect, minimum.reason) == ("reject", "CROSS_BORDER_BELOW_MIN_PRICE")
        assert minimum.when.price_below is not None
        assert minimum.when.price_below == Money(minimum.when.price_below.amount, "USD")
        assert minimum.when.price_below.amount == 100
        assert minimum.effective_from_ms == exemption.effective_from_ms == PERMENDAG_FROM

    def test_carries_no_category_closures(self) -> None:
        """Allow rules win over every reject rule, so the akar closures live in their own policy."""
        model = bundled("permendag-31-2023").model
        assert model.clusters == ()
        assert all(rule.when.cluster_in is None for rule in model.rules)

    @pytest.mark.parametrize(
        ("overrides", "outcome", "code"),
        [
            ({"price": Price(9_999, "USD")}, "REJECTED", "CROSS_BORDER_BELOW_MIN_PRICE"),
            ({"price": Price(10_000, "USD")}, "APPROVED", None),
            ({"price": Price(9_999, "USD"), "event_time_ms": PERMENDAG_FROM - 1}, "APPROVED", None),
            ({"price": Price(9_999, "USD"), "channel": "DOMESTIC"}, "APPROVED", None),
            ({"price": Price(500, "USD"), "hs_code": "490199"}, "APPROVED", None),
            (
                {"price": Price(500, "USD"), "hs_code": "620442"},
                "REJECTED",
                "CROSS_BORDER_BELOW_MIN_PRICE",
            ),
            ({"price": Price(50_000_000, "IDR")}, "REJECTED", "CROSS_BORDER_BELOW_MIN_PRICE"),
            ({"price": Price(200_000_000, "IDR")}, "APPROVED", None),
            ({"price": Price(10_000, "JPY")}, "REJECTED", "CROSS_BORDER_BELOW_MIN_PRICE"),
            ({"price": Price(20_000, "JPY")}, "APPROVED", None),
            ({"price": Price(9_999, "EUR")}, "REJECTED", "UNKNOWN_CURRENCY"),
        ],
        ids=[
            "usd-99.99",
            "usd-100",
            "before-in-force",
            "domestic",
            "book-exempt",
            "dress-not-exempt",
            "idr-500k",
            "idr-2m",
            "jpy-10k",
            "jpy-20k",
            "eur-has-no-rate",
        ],
    )
    def test_decisions(self, overrides: dict[str, Any], outcome: str, code: str | None) -> None:
        """Cross-border listings under USD 100 are rejected from 2023-09-26 unless exempt by HS code."""
        listing = make_listing(**{"event_time_ms": PERMENDAG_FROM, **overrides})
        verdict = evaluate(listing, bundled("permendag-31-2023"))
        assert verdict.outcome == outcome
        assert [r.code for r in verdict.reasons] == ([code] if code else [])
