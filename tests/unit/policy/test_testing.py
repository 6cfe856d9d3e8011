"""The policy test runner: each kind of mismatch, the lines it prints, --strict, and coverage of
rules, exemptions and list versions over all cases, for a policy and for a set."""

from __future__ import annotations

from collections.abc import Hashable
from zoneinfo import ZoneInfo

import pytest

from consumer.core.records import Exemption, Listing, ListingRow, Reason, Verdict
from consumer.errors import PolicyTestError
from consumer.policy import CompiledPolicy, compile_policy, load_policy
from consumer.policy.casefile import Case, CaseFile, Expect, load_cases
from consumer.policy.sets import load_set
from consumer.policy.testing import (
    CaseResult,
    Report,
    check_rule_ids,
    coverage_gaps,
    mismatches,
    run_case,
    run_tests,
)
from tests.unit.listings import epoch_ms, make_listing

JAKARTA = ZoneInfo("Asia/Jakarta")
NOW = epoch_ms("2026-01-01T00:00:00Z")

#: Every construct coverage looks at: a reject rule with an `unless`, a review rule on a dated
#: list, an allow rule that exempts it.
SHOP = """\
policy: shop
version: "1"
timezone: Asia/Jakarta
clusters:
  fashion: {category_paths: [[Fashion]]}
lists:
  watched:
    - {effective_from: 2024-01-01, effective_until: 2024-07-01, entries: [s-1]}
    - {effective_from: 2024-07-01, entries: [s-1, s-2]}
rules:
  - id: closed-fashion
    effect: reject
    reason: CLOSED
    when: {cross_border: true, cluster_in: [fashion]}
    unless: {brand_in: [Local]}
  - id: watched-seller
    effect: review
    reason: WATCHED
    when: {seller_in: {list: watched}}
  - id: trusted
    effect: allow
    exempts: [watched-seller]
    when: {seller_in: [s-2]}
"""


def shop() -> CompiledPolicy:
    return compile_policy(load_policy(SHOP, "shop.yaml"))


def cases(text: str, policy: CompiledPolicy | None = None) -> CaseFile:
    tz = JAKARTA if policy is None else policy.tz
    return load_cases(text, "t.yaml", tz, NOW)


def verdict(
    outcome: str = "APPROVED",
    reasons: tuple[Reason, ...] = (),
    exemptions: tuple[Exemption, ...] = (),
) -> Verdict:
    ids = tuple(r.rule_id for r in reasons) + tuple(e.rule_id for e in exemptions)
    return Verdict(outcome, reasons, ids, None, True, exemptions)  # type: ignore[arg-type]


def reason(rule_id: str, phrase: str | None = None) -> Reason:
    return Reason("CODE", rule_id, "message", phrase=phrase)


APPROVED = Expect("APPROVED")


def case(name: str = "a case", expect: Expect = APPROVED) -> Case:
    return Case(name, make_listing(), expect)


class TestMismatches:
    def test_a_verdict_as_expected_has_none(self) -> None:
        got = verdict("REJECTED", (reason("r1", "kain"),), (Exemption("r2", "unless"),))
        assert mismatches(Expect("REJECTED", ("r1",), ("r2",), "kain"), got) == ()

    def test_outcome(self) -> None:
        """The rules the verdict gave are shown, since the case did not say which it expected."""
        got = verdict("APPROVED")
        assert mismatches(Expect("REVIEW"), got) == (
            "outcome expected REVIEW, got APPROVED (rules [])",
        )

    def test_rules_in_order(self) -> None:
        got = verdict("REJECTED", (reason("r2"), reason("r1")))
        assert mismatches(Expect("REJECTED", ("r1", "r2")), got) == (
            "rules expected [r1, r2], got [r2, r1]",
        )

    def test_outcome_and_rules_both_reported(self) -> None:
        got = verdict("REJECTED", (reason("r1"),))
        assert mismatches(Expect("APPROVED", ()), got) == (
            "outcome expected APPROVED, got REJECTED",
            "rules expected [], got [r1]",
        )

    def test_exempted_in_any_order_each_rule_once(self) -> None:
        """A rule exempted by its unless and by an allow rule counts once."""
        exemptions = (Exemption("r1", "unless"), Exemption("r1", "a1"), Exemption("r2", "a1"))
        got = verdict(exemptions=exemptions)
        assert mismatches(Expect("APPROVED", exempted=("r2", "r1")), got) == ()
        assert mismatches(Expect("APPROVED", exempted=("r1",)), got) == (
            "exempted expected [r1], got [r1, r2]",
        )

    def test_phrase_of_any_reason(self) -> None:
        got = verdict("REVIEW", (reason("r1"), reason("r2", "batik")))
        assert mismatches(Expect("REVIEW", phrase="batik"), got) == ()

    def test_phrase_mismatch_shows_the_phrases_found(self) -> None:
        got = verdict("REVIEW", (reason("r1", "kain"), reason("r2", "kebaya")))
        assert mismatches(Expect("REVIEW", phrase="batik"), got) == (
            'phrase expected "batik", got "kain", "kebaya"',
        )

    def test_phrase_expected_but_no_text_rule_decided(self) -> None:
        got = verdict("REVIEW", (reason("r1"),))
        assert mismatches(Expect("REVIEW", phrase="batik"), got) == (
            'phrase expected "batik", got none',
        )

    def test_what_is_not_expected_is_not_checked(self) -> None:
        got = verdict("REVIEW", (reason("r1", "kain"),), (Exemption("r2", "unless"),))
        assert mismatches(Expect("REVIEW"), got) == ()


class _Fixed:
    """An Enforced that gives one verdict to every listing: the runner needs nothing else."""

    policy_id = "fixed"
    version = "1"
    timezone = "UTC"
    tz = ZoneInfo("UTC")
    layers = ()

    def __init__(self, given: Verdict) -> None:
        self.given = given
        self.scanned: list[int | None] = []

    def scan(self, listing: Listing | ListingRow, as_of_ms: int | None = None) -> Hashable:
        self.scanned.append(as_of_ms)
        return 0

    def verdict_of(self, key: Hashable) -> Verdict:
        return self.given


class TestRunCase:
    def test_the_phrase_a_text_rule_filled_in_is_compared(self) -> None:
        """Reason.phrase comes from the text engine; the runner only reads it from the verdict."""
        policy = _Fixed(verdict("REVIEW", (reason("keyword-batik", "batik"),)))
        result = run_case(policy, "t.yaml", case("batik", Expect("REVIEW", phrase="batik")))
        assert result.passed
        failed = run_case(policy, "t.yaml", case("kain", Expect("REVIEW", phrase="kain")))
        assert failed.line() == 'FAIL t.yaml: "kain": phrase expected "kain", got "batik"'

    def test_the_case_as_of_is_passed_to_scan(self) -> None:
        policy = _Fixed(verdict())
        run_case(policy, "t.yaml", Case("a", make_listing(), Expect("APPROVED"), as_of_ms=123))
        assert policy.scanned == [123]

    def test_lines(self) -> None:
        """PASS shows what the policy said; a name is quoted as JSON so quotes stay readable."""
        passed = CaseResult("t.yaml", case('say "hi"'), verdict("REJECTED", (reason("r1"),)), ())
        assert passed.line() == 'PASS t.yaml: "say \\"hi\\"": REJECTED (rules [r1])'
        exempt = verdict(exemptions=(Exemption("r1", "a1"),))
        assert CaseResult("t.yaml", case(), exempt, ()).line() == (
            'PASS t.yaml: "a case": APPROVED (rules [], exempted [r1])'
        )
        failed = CaseResult(
            "t.yaml", case(), verdict(), ("outcome expected REVIEW, got APPROVED (rules [])", "x")
        )
        assert failed.line() == (
            'FAIL t.yaml: "a case": outcome expected REVIEW, got APPROVED (rules []); x'
        )


class TestReport:
    def results(self, *passed: bool) -> tuple[CaseResult, ...]:
        return tuple(
            CaseResult(
                "t.yaml",
                case(f"c{i}"),
                verdict(),
                () if ok else ("outcome expected REVIEW, got APPROVED (rules [])",),
            )
            for i, ok in enumerate(passed)
        )

    def test_failures_then_summary(self) -> None:
        report = Report(self.results(True, False, True), ())
        assert report.lines() == [
            'FAIL t.yaml: "c1": outcome expected REVIEW, got APPROVED (rules [])',
            "2 passed, 1 failed",
        ]
        assert not report.ok

    def test_verbose_prints_every_case(self) -> None:
        lines = Report(self.results(True, False), ()).lines(verbose=True)
        assert [line.split(" ")[0] for line in lines] == ["PASS", "FAIL", "1"]

    def test_gaps_are_warnings_without_strict(self) -> None:
        report = Report(self.results(True), ("rule r1 matched by no case",))
        assert report.ok
        assert report.lines() == [
            "coverage: rule r1 matched by no case",
            "1 passed, 0 failed; 1 coverage gap (warnings; --strict fails them)",
        ]

    def test_gaps_fail_with_strict(self) -> None:
        report = Report(self.results(True), ("a", "b"), strict=True)
        assert not report.ok
        assert report.lines()[-1] == "1 passed, 0 failed; 2 coverage gaps (failures with --strict)"

    def test_strict_with_full_coverage_passes(self) -> None:
        assert Report(self.results(True, True), (), strict=True).ok


ALL_COVERED = """\
cases:
  - name: cross-border fashion
    listing: {ship_from_country: CN, category_path: [Fashion]}
    expect: {outcome: REJECTED, rules: [closed-fashion]}
  - name: local brand
    listing: {ship_from_country: CN, category_path: [Fashion], brand: Local}
    expect: {outcome: APPROVED, exempted: [closed-fashion]}
  - name: watched in the first half
    as_of: 2024-03-01
    listing: {seller_id: s-1}
    expect: {outcome: REVIEW, rules: [watched-seller]}
  - name: trusted in the second half
    as_of: 2024-09-01
    listing: {seller_id: s-2}
    expect: {outcome: APPROVED, exempted: [watched-seller]}
"""


#: A second layer with a list named like SHOP's, in force only from 2030.
OTHER = """\
policy: other
version: "1"
timezone: Asia/Jakarta
lists:
  watched:
    - {effective_from: 2030-01-01, entries: [s-9]}
rules:
  - id: other-watched
    effect: review
    reason: OTHER_WATCHED
    when: {seller_in: {list: watched}}
"""


class TestCoverage:
    def test_cases_that_exercise_everything_leave_no_gap(self) -> None:
        policy = shop()
        report = run_tests(policy, [cases(ALL_COVERED, policy)], strict=True)
        assert [r.line() for r in report.results if not r.passed] == []
        assert report.gaps == ()
        assert report.ok

    def test_each_kind_of_gap(self) -> None:
        """One domestic case: no rule matched, no exemption applied, the 2024-07 version never
        in force (the case is at the template's 2024-01-01 00:00 UTC, in the first version)."""
        policy = shop()
        text = "cases: [{name: quiet, listing: {}, expect: {outcome: APPROVED}}]"
        report = run_tests(policy, [cases(text, policy)])
        assert report.gaps == (
            "rule closed-fashion matched by no case",
            "rule watched-seller matched by no case",
            "rule trusted matched by no case",
            "exemption of closed-fashion by its unless applied in no case",
            "exemption of watched-seller by trusted applied in no case",
            "list watched[1] (2 entries, from 2024-07-01) in force for no case",
        )
        assert report.ok  # warnings only

    def test_a_version_before_every_case_is_a_gap_with_its_window(self) -> None:
        policy = shop()
        text = "cases: [{name: late, as_of: 2025-01-01, listing: {}, expect: {outcome: APPROVED}}]"
        gaps = run_tests(policy, [cases(text, policy)]).gaps
        assert "list watched[0] (1 entry, 2024-01-01 to 2024-07-01) in force for no case" in gaps

    def test_a_version_is_in_force_from_its_start_until_just_before_its_end(self) -> None:
        """[from, until): a case at 2024-07-01 00:00 is in the second version, not the first."""
        policy = shop()
        text = "cases: [{name: edge, as_of: 2024-07-01, listing: {}, expect: {outcome: APPROVED}}]"
        gaps = [g for g in run_tests(policy, [cases(text, policy)]).gaps if g.startswith("list")]
        assert gaps == ["list watched[0] (1 entry, 2024-01-01 to 2024-07-01) in force for no case"]
        text = text.replace("2024-07-01", '"2024-06-30T23:59:59.999+07:00"')
        gaps = [g for g in run_tests(policy, [cases(text, policy)]).gaps if g.startswith("list")]
        assert gaps == ["list watched[1] (2 entries, from 2024-07-01) in force for no case"]

    def test_an_allow_rule_without_exempts_must_exempt_every_reject_and_review_rule(self) -> None:
        text = SHOP.replace("    exempts: [watched-seller]\n", "")
        policy = compile_policy(load_policy(text))
        report = run_tests(policy, [cases(ALL_COVERED, policy)])
        assert report.gaps == ("exemption of closed-fashion by trusted applied in no case",)

    def test_coverage_counts_every_file(self) -> None:
        """Coverage is of the policy by the whole run, whichever file a case is in."""
        policy = shop()
        head, _, tail = ALL_COVERED.partition("  - name: watched")
        first = cases(head, policy)
        second = load_cases("cases:\n  - name: watched" + tail, "u.yaml", policy.tz, NOW)
        report = run_tests(policy, [first, second], strict=True)
        assert report.gaps == ()
        assert [r.source for r in report.results] == ["t.yaml"] * 2 + ["u.yaml"] * 2

    def test_every_layer_of_a_set_is_covered_and_shared_list_names_are_qualified(self) -> None:
        """Layer 0 is covered by the cases; layer 1's rule and list version are not, and both
        layers call their list `watched`."""
        set_text = "policy_set: both\nversion: '1'\nlayers: [{path: a.yaml}, {path: b.yaml}]\n"
        both = load_set(set_text, "set.yaml", [SHOP.encode(), OTHER.encode()])
        report = run_tests(both, [cases(ALL_COVERED)])
        assert report.gaps == (
            "rule other-watched matched by no case",
            "list other/watched[0] (1 entry, from 2030-01-01) in force for no case",
        )

    def test_gaps_are_computed_from_results(self) -> None:
        assert "rule closed-fashion matched by no case" in coverage_gaps(shop(), [])


class TestRuleIds:
    def test_an_expectation_naming_an_unknown_rule_is_an_invalid_test_file(self) -> None:
        policy = shop()
        text = "cases: [{name: a, listing: {}, expect: {outcome: APPROVED, rules: [closed-fashon], exempted: [nope]}}]"
        with pytest.raises(PolicyTestError) as caught:
            check_rule_ids(policy, cases(text, policy))
        assert caught.value.problems == (
            "cases[0].expect.rules[0]: no rule 'closed-fashon' in shop (did you mean 'closed-fashion'?)",
            "cases[0].expect.exempted[0]: no rule 'nope' in shop",
        )

    def test_known_ids_pass(self) -> None:
        policy = shop()
        check_rule_ids(policy, cases(ALL_COVERED, policy))
