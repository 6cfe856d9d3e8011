"""Policy test files: cases read strictly, the listing template filling what a case leaves out,
and every problem of a broken file named by file and path."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from consumer.core.records import Price
from consumer.errors import PolicyError, PolicyTestError
from consumer.policy.casefile import DEFAULT_EVENT_TIME, Expect, load_cases
from tests.unit.listings import epoch_ms

JAKARTA = ZoneInfo("Asia/Jakarta")
NOW = epoch_ms("2026-01-02T03:04:05Z")


def load(text: str) -> list:  # type: ignore[type-arg]
    return list(load_cases(text, "t.yaml", JAKARTA, NOW).cases)


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(PolicyTestError) as caught:
        load_cases(text, "t.yaml", JAKARTA, NOW)
    assert caught.value.source == "t.yaml"
    return caught.value.problems


ONE_CASE = """\
cases:
  - name: dress
    listing: {ship_from_country: CN, category_path: [Fashion]}
    expect: {outcome: REJECTED}
"""


class TestTemplate:
    def test_fields_a_case_leaves_out_come_from_the_template(self) -> None:
        """A domestic ID listing by seller-test, 100,000 IDR, ids from the name, a fixed time."""
        [case] = load("cases: [{name: plain, listing: {}, expect: {outcome: APPROVED}}]")
        listing = case.listing
        assert (listing.event_id, listing.listing_id) == ("test:plain", "test:plain")
        assert (listing.seller_id, listing.site) == ("seller-test", "ID")
        assert (listing.seller_country, listing.ship_from_country) == ("ID", "ID")
        assert listing.price == Price(10_000_000, "IDR")
        assert listing.event_time_ms == epoch_ms(DEFAULT_EVENT_TIME.replace("Z", "+00:00"))
        assert listing.category_path == ()
        assert (listing.channel, listing.brand, listing.hs_code) == (None, None, None)
        assert case.as_of_ms is None

    def test_a_field_the_case_gives_replaces_the_templates(self) -> None:
        [case] = load(ONE_CASE)
        assert case.listing.ship_from_country == "CN"
        assert case.listing.category_path == ("Fashion",)
        assert case.expect == Expect("REJECTED")

    def test_as_of_is_the_event_time_when_the_listing_has_none(self) -> None:
        """A plain date is 00:00 in the policy's timezone, as `check --as-of` reads it."""
        text = "cases: [{name: a, as_of: 2021-08-03, listing: {}, expect: {outcome: APPROVED}}]"
        [case] = load(text)
        assert case.as_of_ms == epoch_ms("2021-08-02T17:00:00Z")
        assert case.listing.event_time_ms == case.as_of_ms
        assert case.time_ms == case.as_of_ms

    def test_as_of_now_is_the_time_given(self) -> None:
        [case] = load("cases: [{name: a, as_of: now, listing: {}, expect: {outcome: APPROVED}}]")
        assert case.as_of_ms == NOW

    def test_an_explicit_event_time_is_kept_beside_as_of(self) -> None:
        text = """\
cases:
  - name: a
    as_of: "2024-01-01T00:00:00+07:00"
    listing: {event_time: 1000}
    expect: {outcome: APPROVED}
"""
        [case] = load(text)
        assert case.listing.event_time_ms == 1000
        assert case.time_ms == epoch_ms("2023-12-31T17:00:00Z")

    def test_no_two_cases_share_the_template_price(self) -> None:
        """The template's mappings are copied per case."""
        text = "cases: [{name: a, listing: {}, expect: {outcome: APPROVED}}, {name: b, listing: {}, expect: {outcome: APPROVED}}]"
        first, second = load(text)
        assert first.listing.price == second.listing.price
        assert first.listing.event_id != second.listing.event_id


class TestExpect:
    def test_every_expectation_is_read(self) -> None:
        text = """\
cases:
  - name: a
    listing: {}
    expect:
      outcome: REVIEW
      rules: [r1, r2]
      exempted: [r3]
      phrase: kain batik
"""
        [case] = load(text)
        assert case.expect == Expect("REVIEW", ("r1", "r2"), ("r3",), "kain batik")

    def test_empty_lists_assert_no_reason_and_nothing_exempted(self) -> None:
        text = (
            "cases: [{name: a, listing: {}, expect: {outcome: APPROVED, rules: [], exempted: []}}]"
        )
        [case] = load(text)
        assert case.expect == Expect("APPROVED", (), ())

    def test_the_case_path_is_kept_for_messages(self) -> None:
        text = ONE_CASE + "  - {name: two, listing: {}, expect: {outcome: APPROVED}}\n"
        assert [c.where for c in load(text)] == ["cases[0]", "cases[1]"]


class TestInvalidFiles:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("- a\n- b\n", "(top level): expected a mapping with cases:, got a list"),
            ("description: nothing\n", "cases: missing required key"),
            ("cases: []\n", "cases: expected a non-empty list of cases, got an empty list"),
            ("cases: {a: 1}\n", "cases: expected a non-empty list of cases, got a mapping"),
            ("cases: [1]\n", "cases[0]: expected a mapping, got a number"),
            ("", "(top level): expected a mapping with cases:, got nothing"),
        ],
        ids=[
            "not-a-mapping",
            "no-cases",
            "empty-cases",
            "cases-not-a-list",
            "case-not-a-mapping",
            "empty-file",
        ],
    )
    def test_the_shape_of_the_file(self, text: str, expected: str) -> None:
        assert problems(text)[0].startswith(expected)

    def test_unknown_top_level_key(self) -> None:
        found = problems(ONE_CASE + "case: []\n")
        assert found[0].startswith("case: unknown key (did you mean 'cases'?)")

    def test_duplicate_case_names(self) -> None:
        found = problems(ONE_CASE + "  - {name: dress, listing: {}, expect: {outcome: APPROVED}}\n")
        assert found == ("cases[1].name: duplicate case name 'dress' (first at cases[0])",)

    def test_duplicate_yaml_keys_are_named_by_line(self) -> None:
        text = (
            "cases:\n  - name: a\n    name: b\n    listing: {}\n    expect: {outcome: APPROVED}\n"
        )
        assert problems(text) == ("line 3: duplicate key 'name'",)

    def test_unknown_expect_key(self) -> None:
        text = "cases: [{name: a, listing: {}, expect: {outcome: APPROVED, rule: [x]}}]"
        [found] = problems(text)
        assert found.startswith("cases[0].expect.rule: unknown key (did you mean 'rules'?)")

    @pytest.mark.parametrize("outcome", ["REJECT", "approved", "1", "null"])
    def test_bad_outcome(self, outcome: str) -> None:
        [found] = problems(f"cases: [{{name: a, listing: {{}}, expect: {{outcome: {outcome}}}}}]")
        assert found.startswith(
            "cases[0].expect.outcome: expected one of APPROVED, REJECTED, REVIEW"
        )

    def test_missing_outcome(self) -> None:
        found = problems("cases: [{name: a, listing: {}, expect: {rules: []}}]")
        assert found == ("cases[0].expect.outcome: missing required key",)

    @pytest.mark.parametrize(
        ("as_of", "expected"),
        [
            ("yesterday", "'yesterday' is not now, a date (2021-08-03) or an RFC 3339 datetime"),
            ("2021-02-30", "'2021-02-30' is not now, a date"),
            ('"2021-08-03T10:00:00"', "needs an offset (Z or +07:00), or use a plain date"),
            ("20210803", "expected now, a date or an RFC 3339 datetime, got a number"),
        ],
        ids=["word", "impossible-date", "no-offset", "number"],
    )
    def test_bad_as_of(self, as_of: str, expected: str) -> None:
        [found] = problems(
            f"cases: [{{name: a, as_of: {as_of}, listing: {{}}, expect: {{outcome: APPROVED}}}}]"
        )
        assert found.startswith("cases[0].as_of: ")
        assert expected in found

    def test_listing_problems_are_named_by_field(self) -> None:
        """Unknown and missing fields and wrong types, each at its path under the case."""
        text = """\
cases:
  - name: a
    listing: {colour: red, price: {currency: USD}}
    expect: {outcome: APPROVED}
  - name: b
    listing: {site: 5}
    expect: {outcome: APPROVED}
  - name: c
    listing: [site]
    expect: {outcome: APPROVED}
"""
        assert problems(text) == (
            "cases[0].listing.colour: unknown field",
            "cases[0].listing.price.amount_minor: required field missing",
            "cases[1].listing.site: expected a string, got 5",
            "cases[2].listing: expected a mapping, got a list",
        )

    def test_every_problem_of_the_file_is_reported_at_once(self) -> None:
        text = """\
cases:
  - {name: a, listing: {}, expect: {outcome: NO}}
  - {name: a, listing: {}, expect: {outcome: APPROVED, phrase: ""}}
  - {listing: {}, expect: {outcome: APPROVED, rules: [1]}}
"""
        found = problems(text)
        assert [p.split(":")[0] for p in found] == [
            "cases[0].expect.outcome",
            "cases[1].name",
            "cases[1].expect.phrase",
            "cases[2].name",
            "cases[2].expect.rules",
        ]

    def test_yaml_the_policy_loader_refuses_is_refused_here_too(self) -> None:
        """Anchors, bad UTF-8: the same strict YAML as a policy, reported against the test file."""
        text = "cases:\n  - &a {name: a, listing: {}, expect: {outcome: APPROVED}}\n  - *a\n"
        [found] = problems(text)
        assert "anchors and aliases are not allowed" in found
        with pytest.raises(
            PolicyTestError, match=r"t\.yaml: invalid policy test file: line 1: not UTF-8"
        ):
            load_cases(b"cases: \xff\n", "t.yaml", JAKARTA, NOW)

    def test_the_error_is_a_policy_error_so_the_cli_exits_2(self) -> None:
        assert issubclass(PolicyTestError, PolicyError)
        assert PolicyTestError(["x: y"], "t.yaml").code == "bad_policy_test"
