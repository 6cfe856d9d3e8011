"""The policy language of issue 15: condition blocks, named conditions, unless, exempts, review.

The default listing (tests/unit/listings.py) is a cross-border dress from China (cluster fashion)
priced IDR 150,000.00 = USD 9.375 with no HS code and no brand.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from consumer.core.records import Exemption, Price, Reason
from consumer.errors import PolicyError
from consumer.policy import (
    CompiledPolicy,
    compile_policy,
    evaluate,
    explain,
    load_policy,
    summarize,
)
from consumer.policy.load import policy_warnings
from tests.unit.listings import make_listing
from tests.unit.policy.test_evaluate import HEADER, allow, reject, usd


def review(rule_id: str, **when: Any) -> dict[str, Any]:
    return {"id": rule_id, "effect": "review", "reason": f"V_{rule_id.upper()}", "when": when}


class _Dumper(yaml.SafeDumper):
    """Writes shared values out again: a policy refuses anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def text_of(rules: list[dict[str, Any]], conditions: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"rules": rules}
    if conditions is not None:
        body = {"conditions": conditions, **body}
    return HEADER + yaml.dump(body, Dumper=_Dumper, sort_keys=False)


def compiled(
    rules: list[dict[str, Any]], conditions: dict[str, Any] | None = None
) -> CompiledPolicy:
    return compile_policy(load_policy(text_of(rules, conditions)))


def problems(rules: list[dict[str, Any]], conditions: dict[str, Any] | None = None) -> list[str]:
    return problems_in(text_of(rules, conditions))


def problems_in(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "p.yaml")
    return list(caught.value.problems)


FASHION = {"cluster_in": ["fashion"]}
ELECTRONICS = {"cluster_in": ["electronics"]}
CHEAP = {"price_below": usd(10)}  # USD 9.375 holds; EUR has no rate: unknown

# (id, block, named conditions, listing overrides, whether a reject rule with that `when` matches;
# None means it matches only because a price is unknown, with reason UNKNOWN_CURRENCY)
_BLOCKS: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any], bool | None]] = [
    ("all-every-item-holds", {"all": [FASHION, {"cross_border": True}]}, None, {}, True),
    ("all-one-item-fails", {"all": [FASHION, ELECTRONICS]}, None, {}, False),
    ("all-and-leaf-keys", {"cross_border": False, "all": [FASHION]}, None, {}, False),
    ("any-one-item-holds", {"any": [ELECTRONICS, FASHION]}, None, {}, True),
    ("any-no-item-holds", {"any": [ELECTRONICS, {"seller_in": ["x"]}]}, None, {}, False),
    ("not-negates", {"not": ELECTRONICS}, None, {}, True),
    ("not-of-holding-block", {"not": FASHION}, None, {}, False),
    ("not-of-two-keys-is-nand", {"not": {**FASHION, "cross_border": False}}, None, {}, True),
    ("condition-by-name", {"condition": "fashionable"}, {"fashionable": FASHION}, {}, True),
    ("condition-not-holding", {"condition": "tech"}, {"tech": ELECTRONICS}, {}, False),
    (
        "condition-uses-condition",
        {"condition": "outer"},
        {"inner": FASHION, "outer": {"condition": "inner", "cross_border": True}},
        {},
        True,
    ),
    (
        "condition-and-leaf-keys",
        {"condition": "fashionable", "site_in": ["MY"]},
        {"fashionable": FASHION},
        {},
        False,
    ),
    (
        "nested-any-in-all-in-not",
        {"not": {"all": [{"any": [ELECTRONICS, {"brand_in": ["Acme"]}]}]}},
        None,
        {},
        True,
    ),
    (
        "any-true-beats-unknown-price",
        {"any": [CHEAP, FASHION]},
        None,
        _eur := {"price": Price(100, "EUR")},
        True,
    ),
    ("any-false-and-unknown-is-unknown", {"any": [CHEAP, ELECTRONICS]}, None, _eur, None),
    ("all-false-beats-unknown-price", {"all": [CHEAP, ELECTRONICS]}, None, _eur, False),
    ("not-of-unknown-is-unknown", {"not": CHEAP}, None, _eur, None),
    ("not-of-known-price", {"not": CHEAP}, None, {}, False),
]


class TestConditionBlocks:
    @pytest.mark.parametrize(
        ("when", "conditions", "overrides", "matches"),
        [c[1:] for c in _BLOCKS],
        ids=[c[0] for c in _BLOCKS],
    )
    def test_block(
        self,
        when: dict[str, Any],
        conditions: dict[str, Any] | None,
        overrides: dict[str, Any],
        matches: bool | None,
    ) -> None:
        """all/any/not/condition hold as documented, unknown prices as three-valued logic."""
        verdict = evaluate(make_listing(**overrides), compiled([reject("r", **when)], conditions))
        assert verdict.matched_rules == (("r",) if matches is not False else ())
        codes = [r.code for r in verdict.reasons]
        if matches is None:
            assert codes == ["UNKNOWN_CURRENCY"]
        elif matches:
            assert codes == ["R_R"]

    def test_named_condition_is_compiled_once_and_shared(self) -> None:
        """Two rules naming one condition share its compiled block (compile work is per name)."""
        policy = compiled([reject("a", condition="c"), reject("b", condition="c")], {"c": FASHION})
        assert policy.rules[0].when.named is policy.rules[1].when.named

    def test_leaf_only_when_has_no_group_overhead(self) -> None:
        """A `when` of one leaf key compiles to that key's own test: old files run as fast."""
        policy = compiled([reject("a", **FASHION)])
        assert policy.rules[0].match is policy.rules[0].checks[0].test


# (id, rules, listing overrides, outcome, reason rule ids, exemptions as (rule, by))
_OUTCOMES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str, list[str], list[Any]]] = [
    ("review-alone", [review("v", **FASHION)], {}, "REVIEW", ["v"], []),
    (
        "reject-beats-review",
        [review("v", **FASHION), reject("r", cross_border=True)],
        {},
        "REJECTED",
        ["r"],
        [],
    ),
    (
        "review-beats-approved",
        [review("v", **FASHION), reject("r", **ELECTRONICS)],
        {},
        "REVIEW",
        ["v"],
        [],
    ),
    (
        "every-review-reason",
        [review("v1", **FASHION), review("v2", cross_border=True)],
        {},
        "REVIEW",
        ["v1", "v2"],
        [],
    ),
    (
        "unless-exempts-its-rule",
        [reject("r", **FASHION) | {"unless": {"seller_in": ["seller-cn-1"]}}],
        {},
        "APPROVED",
        [],
        [("r", "unless")],
    ),
    (
        "unless-exempts-that-rule-alone",
        [
            reject("r1", **FASHION) | {"unless": {"seller_in": ["seller-cn-1"]}},
            reject("r2", cross_border=True),
        ],
        {},
        "REJECTED",
        ["r2"],
        [("r1", "unless")],
    ),
    (
        "unless-not-holding",
        [reject("r", **FASHION) | {"unless": {"seller_in": ["other"]}}],
        {},
        "REJECTED",
        ["r"],
        [],
    ),
    (
        "unless-on-unknown-price-grants-nothing",
        [reject("r", **FASHION) | {"unless": {"price_at_least": usd(1)}}],
        {"price": Price(100, "EUR")},
        "REJECTED",
        ["r"],
        [],
    ),
    (
        "unless-exempts-a-review-rule",
        [
            review("v", **FASHION)
            | {"unless": {"any": [{"brand_in": ["Acme"]}, {"hs_code_prefix_in": ["62"]}]}}
        ],
        {"hs_code": "620442"},
        "APPROVED",
        [],
        [("v", "unless")],
    ),
    (
        "exempts-only-the-named-rules",
        [
            reject("closed", **FASHION),
            reject("cheap", **CHEAP),
            allow("books", cross_border=True) | {"exempts": ["cheap"]},
        ],
        {},
        "REJECTED",
        ["closed"],
        [("cheap", "books")],
    ),
    (
        "exempts-star-is-every-rule",
        [
            reject("closed", **FASHION),
            review("v", **CHEAP),
            allow("a", cross_border=True) | {"exempts": ["*"]},
        ],
        {},
        "APPROVED",
        [],
        [("closed", "a"), ("v", "a")],
    ),
    (
        "allow-without-exempts-keeps-its-meaning",
        [reject("closed", **FASHION), allow("a", cross_border=True)],
        {},
        "APPROVED",
        [],
        [("closed", "a")],
    ),
    (
        "exempted-review-leaves-reject",
        [
            reject("closed", **FASHION),
            review("v", cross_border=True),
            allow("a", cross_border=True) | {"exempts": ["v"]},
        ],
        {},
        "REJECTED",
        ["closed"],
        [("v", "a")],
    ),
    (
        "exempted-reject-leaves-review",
        [
            reject("closed", **FASHION),
            review("v", cross_border=True),
            allow("a", cross_border=True) | {"exempts": ["closed"]},
        ],
        {},
        "REVIEW",
        ["v"],
        [("closed", "a")],
    ),
    (
        "exempted-by-unless-and-allow",
        [
            reject("r", **FASHION) | {"unless": {"cross_border": True}},
            allow("a", cross_border=True) | {"exempts": ["r"]},
        ],
        {},
        "APPROVED",
        [],
        [("r", "unless"), ("r", "a")],
    ),
    (
        "allow-not-matching-exempts-nothing",
        [reject("r", **FASHION), allow("a", seller_in=["other"]) | {"exempts": ["r"]}],
        {},
        "REJECTED",
        ["r"],
        [],
    ),
    (
        "review-on-unknown-currency-fails-closed",
        [review("v", **CHEAP)],
        {"price": Price(100, "EUR")},
        "REVIEW",
        ["v"],
        [],
    ),
]


class TestOutcomeAndExemptions:
    @pytest.mark.parametrize(
        ("rules", "overrides", "outcome", "reasons", "exemptions"),
        [c[1:] for c in _OUTCOMES],
        ids=[c[0] for c in _OUTCOMES],
    )
    def test_outcome(
        self,
        rules: list[dict[str, Any]],
        overrides: dict[str, Any],
        outcome: str,
        reasons: list[str],
        exemptions: list[tuple[str, str]],
    ) -> None:
        """REJECTED over REVIEW over APPROVED; reasons are the rules giving the outcome; every
        exemption applied is recorded as (rule, allow rule or "unless")."""
        verdict = evaluate(make_listing(**overrides), compiled(rules))
        assert verdict.outcome == outcome
        assert [r.rule_id for r in verdict.reasons] == reasons
        assert verdict.exemptions == tuple(Exemption(r, by) for r, by in exemptions)

    def test_matched_rules_include_exempted_ones(self) -> None:
        """matched_rules still names every rule whose `when` held, before exemptions."""
        rules = [
            reject("r", **FASHION) | {"unless": {"cross_border": True}},
            review("v", **FASHION),
        ]
        verdict = evaluate(make_listing(), compiled(rules))
        assert verdict.matched_rules == ("r", "v")

    def test_review_reason_carries_code_and_message(self) -> None:
        """A review rule's reason is its code and message, like a reject rule's."""
        rule = review("v", **FASHION) | {"message": "a person checks fashion imports"}
        verdict = evaluate(make_listing(), compiled([rule]))
        assert verdict.reasons == (Reason("V_V", "v", "a person checks fashion imports"),)

    def test_review_default_message(self) -> None:
        """Without a message a review reason says which rule sent the listing to review."""
        verdict = evaluate(make_listing(), compiled([review("v", **FASHION)]))
        assert verdict.reasons == (Reason("V_V", "v", "sent to review by rule v"),)


_DEEP = {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": FASHION}}}}}}}}

# (id, rules, named conditions, the one expected problem)
_PROBLEMS: list[tuple[str, list[dict[str, Any]], dict[str, Any] | None, str]] = [
    (
        "unknown-condition",
        [reject("r", any=[FASHION, {"condition": "foo"}])],
        {"food": FASHION},
        "rules[0].when.any[1].condition: unknown condition 'foo' (did you mean 'food'?)",
    ),
    (
        "unknown-condition-in-named",
        [reject("r", condition="a")],
        {"a": {"not": {"condition": "b"}}},
        "conditions.a.not.condition: unknown condition 'b'",
    ),
    (
        "self-reference",
        [reject("r", condition="a")],
        {"a": {"any": [FASHION, {"condition": "a"}]}},
        "conditions.a.any[1].condition: conditions refer to each other in a cycle: a -> a",
    ),
    (
        "two-name-cycle",
        [reject("r", condition="a")],
        {"a": {"condition": "b"}, "b": {"all": [{"condition": "a"}]}},
        "conditions.b.all[0].condition: conditions refer to each other in a cycle: a -> b -> a",
    ),
    (
        "nesting-deeper-than-8",
        [reject("r", **_DEEP)],
        None,
        "rules[0].when.not.not.not.not.not.not.not.not: condition blocks nest deeper than 8 levels",
    ),
    (
        "nesting-through-names",
        [reject("r", all=[{"condition": "a"}])],
        {"a": {"not": {"not": {"not": {"condition": "b"}}}}, "b": {"not": {"not": FASHION}}},
        "rules[0].when.all[0].condition: condition blocks nest deeper than 8 levels "
        "through condition 'a' (9 levels)",
    ),
    (
        "empty-any",
        [reject("r", any=[])],
        None,
        "rules[0].when.any: expected a non-empty list of condition blocks, got an empty list",
    ),
    (
        "all-not-a-list",
        [reject("r", all=FASHION)],
        None,
        "rules[0].when.all: expected a non-empty list of condition blocks, got a mapping",
    ),
    (
        "not-not-a-block",
        [reject("r", **{"not": ["x"]})],
        None,
        "rules[0].when.not: expected a mapping, got a list",
    ),
    (
        "leaf-error-inside-group",
        [reject("r", any=[{"cluster_in": ["fashon"]}])],
        None,
        "rules[0].when.any[0].cluster_in: unknown cluster 'fashon' (did you mean 'fashion'?)",
    ),
    (
        "unknown-key-in-block",
        [reject("r", either=[FASHION])],
        None,
        "rules[0].when.either: unknown key",
    ),
    (
        "unless-on-allow",
        [allow("a", **FASHION) | {"unless": FASHION}],
        None,
        "rules[0].unless: an allow rule has no unless; name the rules it exempts with exempts",
    ),
    (
        "unless-bad-key",
        [reject("r", **FASHION) | {"unless": {"cluster": ["x"]}}],
        None,
        "rules[0].unless.cluster: unknown key",
    ),
    (
        "exempts-on-reject",
        [reject("r", **FASHION) | {"exempts": ["r"]}],
        None,
        "rules[0].exempts: only allow rules exempt other rules; a reject rule can carry unless instead",
    ),
    (
        "exempts-unknown-rule",
        [reject("closed", **FASHION), allow("a", **FASHION) | {"exempts": ["closd"]}],
        None,
        "rules[1].exempts: unknown rule 'closd' (did you mean 'closed'?)",
    ),
    (
        "exempts-an-allow-rule",
        [allow("a", **FASHION) | {"exempts": ["a"]}],
        None,
        "rules[0].exempts: rule 'a' is an allow rule; only reject and review rules are exempted",
    ),
    (
        "exempts-star-with-ids",
        [reject("r", **FASHION), allow("a", **FASHION) | {"exempts": ["*", "r"]}],
        None,
        "rules[1].exempts: '*' already means every rule; list it alone",
    ),
    (
        "exempts-empty",
        [allow("a", **FASHION) | {"exempts": []}],
        None,
        "rules[0].exempts: expected a non-empty list, got an empty list",
    ),
    (
        "review-without-reason",
        [{"id": "v", "effect": "review", "when": FASHION}],
        None,
        "rules[0].reason: a review rule needs a reason code",
    ),
    (
        "condition-not-an-id",
        [reject("r", condition=["a"])],
        None,
        "rules[0].when.condition: expected a non-empty string, got a list",
    ),
    (
        "named-condition-body",
        [reject("r", **FASHION)],
        {"a": {}},
        "conditions.a: needs at least one condition",
    ),
]


class TestValidation:
    @pytest.mark.parametrize(
        ("rules", "conditions", "problem"),
        [c[1:] for c in _PROBLEMS],
        ids=[c[0] for c in _PROBLEMS],
    )
    def test_problem_names_its_path(
        self, rules: list[dict[str, Any]], conditions: dict[str, Any] | None, problem: str
    ) -> None:
        """Each mistake in the new keys is one `path: message`."""
        found = problems(rules, conditions)
        assert len(found) == 1, found
        assert found[0].startswith(problem), found

    def test_depth_8_is_allowed(self) -> None:
        """Exactly 8 levels (when + 7 nested nots) is valid."""
        seven = {"not": {"not": {"not": {"not": {"not": {"not": {"not": ELECTRONICS}}}}}}}
        assert evaluate(make_listing(), compiled([reject("r", **seven)])).outcome == "REJECTED"

    def test_unused_named_condition_is_still_checked(self) -> None:
        """A named condition no rule uses is validated all the same."""
        found = problems([reject("r", **FASHION)], {"spare": {"cluster_in": ["toys"]}})
        assert found == ["conditions.spare.cluster_in: unknown cluster 'toys'"]


class TestHostileConditions:
    @pytest.mark.parametrize("count", [1_000, 10_000], ids=["1k", "10k"])
    def test_long_chain_of_names_is_one_error_without_recursion(self, count: int) -> None:
        """c0 -> c1 -> ... -> cN: one nesting error where the limit is first passed, in well
        under a second, never a RecursionError."""
        conditions: dict[str, Any] = {f"c{i}": {"condition": f"c{i + 1}"} for i in range(count)}
        conditions[f"c{count}"] = FASHION
        text = text_of([reject("r", condition="c0")], conditions)
        started = time.process_time()
        found = problems_in(text)
        assert time.process_time() - started < 2
        assert found == [
            f"conditions.c{count - 8}.condition: condition blocks nest deeper than 8 levels "
            f"through condition 'c{count - 7}' (9 levels)"
        ]

    @pytest.mark.parametrize("count", [2, 1_000], ids=["2", "1k"])
    def test_cycle_of_names_is_one_error(self, count: int) -> None:
        """A ring of names is reported once, at the reference that closes it."""
        conditions = {f"c{i}": {"condition": f"c{(i + 1) % count}"} for i in range(count)}
        found = problems([reject("r", condition="c0")], conditions)
        assert len(found) == 1
        assert found[0].startswith(f"conditions.c{count - 1}.condition: conditions refer to each")

    def test_shared_names_validate_and_compile_once(self) -> None:
        """Four layers of 10 names, each using every name of the layer below: valid (8 levels),
        and validation and compilation work per name, not per use."""
        conditions: dict[str, Any] = {"l0-0": FASHION}
        for layer in range(1, 4):
            below = [name for name in conditions if name.startswith(f"l{layer - 1}-")]
            for i in range(10):
                conditions[f"l{layer}-{i}"] = {"all": [{"condition": name} for name in below]}
        text = text_of([reject("r", condition="l3-0")], conditions)
        started = time.process_time()
        policy = compile_policy(load_policy(text))
        assert time.process_time() - started < 2
        assert evaluate(make_listing(), policy).outcome == "REJECTED"

    def test_exponential_expansion_is_refused(self) -> None:
        """Three layers of 100 names, each using all 100 below, expand to about 2,000,000 blocks
        for one rule, each evaluated per listing: refused with one error, quickly."""
        conditions: dict[str, Any] = {f"l0-{i}": FASHION for i in range(100)}
        for layer in range(1, 4):
            below = [name for name in conditions if name.startswith(f"l{layer - 1}-")]
            for i in range(100):
                conditions[f"l{layer}-{i}"] = {"all": [{"condition": name} for name in below]}
        text = text_of([reject("r", condition="l3-0")], conditions)
        started = time.process_time()
        found = problems_in(text)
        assert time.process_time() - started < 2
        assert found == [
            "rules: the rules' condition blocks expand to more than 1,000,000 blocks (each use "
            "of a named condition counts its blocks again); evaluating them would be slow for "
            "every listing"
        ]

    def test_yaml_nested_past_the_parser_limit_is_one_error(self) -> None:
        """100 nested `not`s: the YAML reader's own limit refuses it, no recursion."""
        text = HEADER + "rules:\n  - id: r\n    effect: reject\n    reason: R\n    when: "
        text += "{not: " * 100 + "{cross_border: true}" + "}" * 100 + "\n"
        with pytest.raises(PolicyError) as caught:
            load_policy(text)
        assert len(caught.value.problems) == 1


class TestWarnings:
    @pytest.mark.parametrize(
        ("exempts", "warned"),
        [(None, True), (["*"], False), (["r"], False)],
        ids=["no-exempts", "star", "named"],
    )
    def test_allow_without_exempts_warns(self, exempts: list[str] | None, warned: bool) -> None:
        """validate-policy warns about an allow rule that exempts every rule by omission."""
        rule = allow("a", **FASHION) | ({} if exempts is None else {"exempts": exempts})
        model = load_policy(text_of([reject("r", cross_border=True), rule]))
        expected = (
            "rules[1]: allow rule 'a' has no 'exempts', so when it matches it exempts every "
            "reject and review rule of the file; name the rules it exempts (exempts: "
            '[rule-id, ...]), or write exempts: ["*"] if that is what you mean',
        )
        assert policy_warnings(model) == (expected if warned else ())


class TestVersion:
    @pytest.mark.parametrize(
        ("change", "same"),
        [
            ({"exempts": ["*"]}, True),
            ({"exempts": ["r"]}, False),
        ],
        ids=["star-hashes-like-no-key", "named-exempts-change-it"],
    )
    def test_exempts_and_the_version(self, change: dict[str, Any], same: bool) -> None:
        """exempts: ["*"] says what no key says, so the version stays; a list changes it."""
        base = [reject("r", **FASHION), allow("a", cross_border=True)]
        changed = [base[0], base[1] | change]
        assert (compiled(base).version == compiled(changed).version) is same

    def test_new_keys_change_the_version(self) -> None:
        """unless, review, any and a named condition each make a new version."""
        versions = {
            compiled([reject("r", **FASHION)]).version,
            compiled([reject("r", **FASHION) | {"unless": ELECTRONICS}]).version,
            compiled([review("r", **FASHION) | {"reason": "R_R"}]).version,
            compiled([reject("r", any=[FASHION])]).version,
            compiled([reject("r", condition="f")], {"f": FASHION}).version,
        }
        assert len(versions) == 5


class TestExplainLanguage:
    def test_explains_groups_unless_and_exemptions(self) -> None:
        """Each group is shown with whether it held, nested items below it, then the unless
        and the exemptions the decision records."""
        policy = compiled(
            [
                reject("r", any=[ELECTRONICS, {"condition": "fashionable"}])
                | {"unless": {"not": {"seller_in": ["other"]}}},
                review("v", cross_border=True),
                allow("a", **FASHION) | {"exempts": ["v"]},
            ],
            {"fashionable": FASHION},
        )
        lines = explain(make_listing(), policy).splitlines()
        for line in [
            "    any: held (one item must hold)",
            "      any[0]: did not hold",
            "        cluster_in [electronics]: did not hold (listing: fashion)",
            "      any[1]: held",
            "        condition fashionable: held",
            "          cluster_in [fashion]: held (listing: fashion)",
            "    unless:",
            "      not: held (the block below did not hold)",
            "        seller_in [other]: did not hold (listing: seller-cn-1)",
            "    -> unless held: this rule is exempted",
            "    exempts: v",
            "outcome: APPROVED",
            "  exempted r by its unless",
            "  exempted v by allow rule a",
            "matched rules: r, v, a",
        ]:
            assert line in lines, line

    def test_explains_review(self) -> None:
        """A REVIEW outcome is stated with its reasons."""
        lines = explain(make_listing(), compiled([review("v", **FASHION)])).splitlines()
        assert "outcome: REVIEW" in lines
        assert "  reason V_V (v): sent to review by rule v" in lines

    def test_summary_shows_conditions_unless_and_exempts(self) -> None:
        """validate-policy's summary lists named conditions and each rule's unless/exempts."""
        policy = compiled(
            [
                reject("r", condition="f") | {"unless": {"any": [ELECTRONICS, FASHION]}},
                allow("a", **FASHION) | {"exempts": ["r"]},
            ],
            {"f": {"not": ELECTRONICS}},
        )
        lines = summarize(policy).splitlines()
        for line in [
            "conditions (1):",
            "  f: not (cluster_in [electronics])",
            "    when condition f",
            "    unless any (cluster_in [electronics] | cluster_in [fashion])",
            "    exempts r",
        ]:
            assert line in lines, line
