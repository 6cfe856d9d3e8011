"""Dated fx tables (`fx.tables`): the table in force is the latest already begun at the listing's time."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from consumer.core.records import FxUsed, Price
from consumer.errors import PolicyError
from consumer.policy import CompiledPolicy, compile_policy, evaluate, explain, load_policy
from consumer.policy.evaluate import scan, verdict_of
from tests.unit.listings import epoch_ms, make_listing

HEADER = """\
policy: fx-policy
version: "1"
timezone: Asia/Jakarta
"""
#: Two weekly tables: IDR 16,000 per USD, then 15,000 per USD. IDR 1,550,000 is USD 96.875 under
#: the first and USD 103.33 under the second.
TABLES = [
    {"effective_from": "2023-09-25", "rates": {"IDR": 0.0000625, "EUR": 1.1}},
    {"effective_from": "2023-10-02", "rates": {"IDR": 1 / 15000}},
]
MIN_PRICE = {
    "id": "min-price",
    "effective_from": "2023-09-26",
    "effective_until": None,
    "effect": "reject",
    "reason": "CROSS_BORDER_BELOW_MIN_PRICE",
    "when": {"cross_border": True, "price_below": {"amount": 100, "currency": "USD"}},
}
CHEAP_IDR = Price(155_000_000, "IDR")  # IDR 1,550,000.00


def text(rules: list[dict[str, Any]], fx: dict[str, Any] | None = None) -> str:
    body = {"fx": fx or {"base": "USD", "tables": TABLES}, "rules": rules}
    return HEADER + yaml.safe_dump(body)


def compiled(rules: list[dict[str, Any]], fx: dict[str, Any] | None = None) -> CompiledPolicy:
    return compile_policy(load_policy(text(rules, fx)))


def at(when: str, price: Price = CHEAP_IDR) -> Any:
    return make_listing(price=price, event_time_ms=epoch_ms(when))


class TestTableInForce:
    @pytest.mark.parametrize(
        ("when", "outcome"),
        [
            ("2023-09-28T00:00:00Z", "REJECTED"),
            ("2023-10-01T16:59:59.999Z", "REJECTED"),
            ("2023-10-01T17:00:00Z", "APPROVED"),
            ("2024-06-01T00:00:00Z", "APPROVED"),
        ],
        ids=[
            "first-table-makes-it-cheap",
            "first-table-until-the-next-begins",
            "second-table-from-midnight-jakarta",
            "latest-table-stays-in-force",
        ],
    )
    def test_the_latest_table_begun_is_used(self, when: str, outcome: str) -> None:
        """The table in force is the latest whose effective_from is not after the listing's time."""
        verdict = evaluate(at(when), compiled([MIN_PRICE]))
        assert verdict.outcome == outcome

    def test_as_of_chooses_the_table(self) -> None:
        """With as_of, the table in force then converts the price."""
        policy = compiled([MIN_PRICE])
        listing = at("2024-06-01T00:00:00Z")
        assert evaluate(listing, policy, epoch_ms("2023-09-28T00:00:00Z")).outcome == "REJECTED"

    @pytest.mark.parametrize(
        ("rule", "when", "price", "outcome", "reason"),
        [
            (MIN_PRICE, "2023-10-05T00:00:00Z", Price(1000, "EUR"), "REJECTED", "UNKNOWN_CURRENCY"),
            (
                {**MIN_PRICE, "effective_from": None},
                "2023-09-20T00:00:00Z",
                CHEAP_IDR,
                "REJECTED",
                "UNKNOWN_CURRENCY",
            ),
            (
                {**MIN_PRICE, "effective_from": None},
                "2023-09-20T00:00:00Z",
                Price(5000, "USD"),
                "REJECTED",
                "CROSS_BORDER_BELOW_MIN_PRICE",
            ),
            (
                {
                    "id": "cheap-ok",
                    "effect": "allow",
                    "exempts": ["closed"],
                    "when": {"price_below": {"amount": 100, "currency": "USD"}},
                },
                "2023-10-05T00:00:00Z",
                Price(1000, "EUR"),
                "REJECTED",
                "R",
            ),
        ],
        ids=[
            "currency-missing-from-the-table-in-force-fails-closed",
            "before-the-first-table-fails-closed",
            "the-base-currency-is-always-known",
            "allow-on-unknown-rate-is-not-granted",
        ],
    )
    def test_no_rate_in_force_fails_closed(
        self, rule: dict[str, Any], when: str, price: Price, outcome: str, reason: str
    ) -> None:
        """A currency without a rate in the table in force is unknown: reject rules match with
        UNKNOWN_CURRENCY, allow rules are not granted (EUR is only in the first table)."""
        closed = {"id": "closed", "effect": "reject", "reason": "R", "when": {"cross_border": True}}
        rules = [rule] if rule["effect"] != "allow" else [closed, rule]
        verdict = evaluate(at(when, price), compiled(rules))
        assert verdict.outcome == outcome
        assert [r.code for r in verdict.reasons] == [reason]

    @pytest.mark.parametrize(
        ("when", "price", "fx"),
        [
            (
                "2023-09-28T00:00:00Z",
                CHEAP_IDR,
                FxUsed(epoch_ms("2023-09-24T17:00:00Z"), "USD", "IDR", "0.0000625"),
            ),
            (
                "2023-10-05T00:00:00Z",
                Price(5_000_00, "IDR"),
                FxUsed(epoch_ms("2023-10-01T17:00:00Z"), "USD", "IDR", "0.00006666666666666667"),
            ),
            (
                "2023-10-05T00:00:00Z",
                Price(1000, "EUR"),
                FxUsed(epoch_ms("2023-10-01T17:00:00Z"), "USD", "EUR", None),
            ),
            ("2024-06-01T00:00:00Z", CHEAP_IDR, None),
        ],
        ids=["first-table", "second-table", "no-rate-in-force", "approved-names-no-fx"],
    )
    def test_the_decision_names_the_table_and_rate(
        self, when: str, price: Price, fx: FxUsed | None
    ) -> None:
        """A price rule among the reasons puts its fx table's start and the rate in the verdict."""
        verdict = evaluate(at(when, price), compiled([MIN_PRICE]))
        assert verdict.fx == fx

    def test_an_exempted_price_rule_names_no_fx(self) -> None:
        """Only a price rule that gives the outcome names its fx; one exempted by its unless does not."""
        exempted = {**MIN_PRICE, "unless": {"hs_code_prefix_in": ["4901"]}}
        closed = {"id": "closed", "effect": "reject", "reason": "R", "when": {"cross_border": True}}
        listing = make_listing(
            price=CHEAP_IDR, hs_code="4901", event_time_ms=epoch_ms("2023-09-28T00:00:00Z")
        )
        verdict = evaluate(listing, compiled([exempted, closed]))
        assert [r.rule_id for r in verdict.reasons] == ["closed"]
        assert verdict.fx is None

    def test_equal_keys_give_equal_fx(self) -> None:
        """The fx table is part of the scan key: the same listing in two tables has two keys,
        and each key's verdict is evaluate's."""
        policy = compiled([MIN_PRICE])
        first, second = at("2023-09-28T00:00:00Z"), at("2023-09-29T00:00:00Z")
        later = at("2023-10-05T00:00:00Z", Price(5_000_00, "IDR"))
        assert scan(first, policy) == scan(second, policy)
        assert scan(first, policy) != scan(later, policy)
        for listing in (first, later):
            assert verdict_of(scan(listing, policy), policy) == evaluate(listing, policy)

    def test_explain_names_the_table_in_force(self) -> None:
        """`check --explain` says which table converted the price, and the price in base units."""
        account = explain(at("2023-10-05T00:00:00Z"), compiled([MIN_PRICE]))
        assert "fx table in force: from 2023-10-02T00:00+07:00" in account
        assert "= 103.333333 USD" in account
        rejected = explain(at("2023-09-28T00:00:00Z"), compiled([MIN_PRICE]))
        assert "fx used: fx table from 2023-09-25T00:00+07:00, 1 IDR = 0.0000625 USD" in rejected


class TestValidation:
    @pytest.mark.parametrize(
        ("fx", "rules", "expected"),
        [
            (
                {"base": "USD", "rates": {"IDR": 0.0001}, "tables": TABLES},
                [MIN_PRICE],
                "fx: needs exactly one of rates or tables, not both",
            ),
            (
                {"base": "USD", "tables": []},
                [MIN_PRICE],
                "fx.tables: expected a non-empty list of tables, got an empty list",
            ),
            (
                {
                    "base": "USD",
                    "tables": [TABLES[0], {**TABLES[1], "effective_from": "2023-09-25"}],
                },
                [MIN_PRICE],
                "fx.tables[1].effective_from: fx.tables[0] begins at the same time",
            ),
            (
                {"base": "USD", "tables": [{"rates": {"IDR": 0.0001}}]},
                [MIN_PRICE],
                "fx.tables[0].effective_from: missing required key",
            ),
            (
                {"base": "USD", "tables": [{"effective_from": "2023-09-25", "rates": {"IDR": -1}}]},
                [MIN_PRICE],
                "fx.tables[0].rates.IDR: must be a finite number greater than 0",
            ),
            (
                {"base": "USD", "tables": TABLES},
                [
                    {
                        **MIN_PRICE,
                        "when": {"price_below": {"amount": 100, "currency": "EUR"}},
                    }
                ],
                "rules[0].when.price_below.currency: no fx rate for 'EUR' in every table of fx.tables",
            ),
        ],
        ids=[
            "rates-and-tables",
            "no-tables",
            "two-tables-one-date",
            "table-without-date",
            "negative-rate",
            "price-currency-missing-from-a-table",
        ],
    )
    def test_problem_names_its_path(
        self, fx: dict[str, Any], rules: list[dict[str, Any]], expected: str
    ) -> None:
        """Every problem with fx tables says where it is, and what is wrong."""
        with pytest.raises(PolicyError) as info:
            load_policy(text(rules, fx))
        assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


class TestVersion:
    def test_a_rate_change_changes_the_version(self) -> None:
        """Any rate of any table is part of the policy version."""
        changed = [TABLES[0], {**TABLES[1], "rates": {"IDR": 1 / 15001}}]
        assert (
            compiled([MIN_PRICE]).version
            != compiled([MIN_PRICE], {"base": "USD", "tables": changed}).version
        )

    def test_one_table_is_not_the_plain_form(self) -> None:
        """A single dated table differs from undated rates: before it begins, nothing converts."""
        dated = compiled([MIN_PRICE], {"base": "USD", "tables": [TABLES[0]]})
        plain = compiled([MIN_PRICE], {"base": "USD", "rates": TABLES[0]["rates"]})
        assert dated.version != plain.version
