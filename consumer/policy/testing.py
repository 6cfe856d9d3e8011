"""Running policy test cases (`import-closure test-policy`) and measuring what they cover.

Each case is decided as `check` decides a listing (scan, then verdict_of, at the case's as_of)
and compared with its expectation. Coverage is over all the cases of a run: every rule some case
matched, every exemption some case applied (each allow rule's targets, and each `unless`), every
dated list version in force at some case's time, in every layer of a set. A gap is a warning, or
a failure with --strict, so a policy change that adds a rule without a test is caught.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from consumer.core.records import Verdict
from consumer.errors import PolicyTestError
from consumer.policy.casefile import Case, CaseFile, Expect
from consumer.policy.enforced import Enforced
from consumer.policy.evaluate import BY_UNLESS
from consumer.policy.model import ListVersion
from consumer.policy.problems import Problems


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case, the verdict the policy gave it, and how the verdict differs from the expectation."""

    source: str
    case: Case
    verdict: Verdict
    mismatches: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def line(self) -> str:
        """`FAIL tests.yaml: "name": outcome expected REVIEW, got APPROVED (rules [])`, or PASS."""
        if self.mismatches:
            detail = "; ".join(self.mismatches)
        else:
            detail = f"{self.verdict.outcome} (rules {_ids(_reason_ids(self.verdict))}"
            exempted = _exempted(self.verdict)
            detail += f", exempted {_ids(exempted)})" if exempted else ")"
        status = "PASS" if self.passed else "FAIL"
        return f"{status} {self.source}: {_quoted(self.case.name)}: {detail}"


@dataclass(frozen=True, slots=True)
class Report:
    """A whole run: every case's result and every coverage gap, in a stable order."""

    results: tuple[CaseResult, ...]
    gaps: tuple[str, ...]
    strict: bool = False

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed)

    @property
    def ok(self) -> bool:
        """Every case passed, and with --strict nothing is left uncovered."""
        return not self.failed and not (self.strict and self.gaps)

    def lines(self, verbose: bool = False) -> list[str]:
        """What the runner prints: failures (every case with `verbose`), gaps, then the summary."""
        out = [r.line() for r in self.results if verbose or not r.passed]
        out += [f"coverage: {gap}" for gap in self.gaps]
        summary = f"{len(self.results) - self.failed} passed, {self.failed} failed"
        if self.gaps:
            plural = "s" if len(self.gaps) > 1 else ""
            failing = (
                " (failures with --strict)" if self.strict else " (warnings; --strict fails them)"
            )
            summary += f"; {len(self.gaps)} coverage gap{plural}{failing}"
        out.append(summary)
        return out


def run_tests(policy: Enforced, files: Sequence[CaseFile], strict: bool = False) -> Report:
    """Decide every case of every file with `policy` and measure coverage over all of them."""
    results = tuple(run_case(policy, f.source, case) for f in files for case in f.cases)
    return Report(results, coverage_gaps(policy, results), strict)


def run_case(policy: Enforced, source: str, case: Case) -> CaseResult:
    verdict = policy.verdict_of(policy.scan(case.listing, case.as_of_ms))
    return CaseResult(source, case, verdict, mismatches(case.expect, verdict))


def mismatches(expect: Expect, verdict: Verdict) -> tuple[str, ...]:
    """How `verdict` differs from `expect`, one `what expected X, got Y` per difference."""
    found: list[str] = []
    reasons = _reason_ids(verdict)
    if verdict.outcome != expect.outcome:
        shown = "" if expect.rules is not None else f" (rules {_ids(reasons)})"
        found.append(f"outcome expected {expect.outcome}, got {verdict.outcome}{shown}")
    if expect.rules is not None and reasons != expect.rules:
        found.append(f"rules expected {_ids(expect.rules)}, got {_ids(reasons)}")
    exempted = _exempted(verdict)
    if expect.exempted is not None and set(exempted) != set(expect.exempted):
        found.append(f"exempted expected {_ids(expect.exempted)}, got {_ids(exempted)}")
    phrases = tuple(r.phrase for r in verdict.reasons if r.phrase is not None)
    if expect.phrase is not None and expect.phrase not in phrases:
        got = "none" if not phrases else ", ".join(_quoted(p) for p in phrases)
        found.append(f"phrase expected {_quoted(expect.phrase)}, got {got}")
    return tuple(found)


def check_rule_ids(policy: Enforced, cases: CaseFile) -> None:
    """PolicyTestError when an expectation names a rule the policy does not have: a typo would
    otherwise read as a failing case rather than a broken test."""
    known = [rule.id for layer in policy.layers for rule in layer.rules]
    known_set = set(known)
    problems = Problems()
    for case in cases.cases:
        named = (("rules", case.expect.rules), ("exempted", case.expect.exempted))
        for key, ids in named:
            for i, rule_id in enumerate(ids or ()):
                if rule_id not in known_set:
                    hint = problems.hint(rule_id, known)
                    msg = f"no rule {rule_id!r} in {policy.policy_id}{hint}"
                    problems.fail(f"{case.where}.expect.{key}[{i}]", msg)
    if problems.total:
        raise PolicyTestError(problems.listed(), cases.source)


def coverage_gaps(policy: Enforced, results: Iterable[CaseResult]) -> tuple[str, ...]:
    """Rules no case matched, exemptions no case applied, list versions in force for no case."""
    matched: set[str] = set()
    applied: set[tuple[str, str]] = set()
    times: list[int] = []
    for result in results:
        matched.update(result.verdict.matched_rules)
        applied.update((e.rule_id, e.by) for e in result.verdict.exemptions)
        times.append(result.case.time_ms)
    gaps: list[str] = []
    for layer in policy.layers:
        gaps += [f"rule {r.id} matched by no case" for r in layer.rules if r.id not in matched]
    for layer in policy.layers:
        rules = layer.rules
        for rule in rules:
            if not rule.allow and rule.unless is not None and (rule.id, BY_UNLESS) not in applied:
                gaps.append(f"exemption of {rule.id} by its unless applied in no case")
        for allow in (r for r in rules if r.allow):
            for index, target in enumerate(rules):
                exempts = allow.exempts is None or index in allow.exempts
                if exempts and not target.allow and (target.id, allow.id) not in applied:
                    gaps.append(f"exemption of {target.id} by {allow.id} applied in no case")
    gaps += _list_gaps(policy, times)
    return tuple(gaps)


def _list_gaps(policy: Enforced, times: Sequence[int]) -> list[str]:
    """List versions in force at no case's time; a list name two layers share is qualified by
    the layer's policy id."""
    names = [name for layer in policy.layers for name, _ in layer.model.lists]
    ordered = sorted(times)  # bisect per version: a 2,000-version policy x 20,000 cases stays fast
    gaps: list[str] = []
    for layer in policy.layers:
        for name, versions in layer.model.lists:
            shown = f"{layer.policy_id}/{name}" if names.count(name) > 1 else name
            for i, version in enumerate(versions):
                if not _in_force(version, ordered):
                    what = _window(version, layer.tz)
                    gaps.append(f"list {shown}[{i}] ({what}) in force for no case")
    return gaps


def _in_force(version: ListVersion, ordered: Sequence[int]) -> bool:
    """Whether some time of `ordered` (sorted) falls in [from_ms, until_ms)."""
    first = bisect_left(ordered, version.from_ms)
    if first == len(ordered):
        return False
    return version.until_ms is None or ordered[first] < version.until_ms


def _window(version: ListVersion, tz: tzinfo) -> str:
    """`positive-list-2023-09.txt, 2023-09-26 to 2024-03-26` in the policy's timezone."""
    count = len(version.entries)
    source = version.file or f"{count} entr{'y' if count == 1 else 'ies'}"
    start = _moment(version.from_ms, tz)
    span = (
        f"from {start}"
        if version.until_ms is None
        else f"{start} to {_moment(version.until_ms, tz)}"
    )
    return f"{source}, {span}"


def _moment(ms: int, tz: tzinfo) -> str:
    """A date when the instant is 00:00 in `tz` (as the policy writes it), else the datetime."""
    moment = datetime.fromtimestamp(ms / 1000, tz)
    return moment.date().isoformat() if moment.time() == datetime.min.time() else moment.isoformat()


def _reason_ids(verdict: Verdict) -> tuple[str, ...]:
    return tuple(r.rule_id for r in verdict.reasons)


def _exempted(verdict: Verdict) -> tuple[str, ...]:
    """The ids of the rules exempted, each once, in the verdict's order."""
    return tuple(dict.fromkeys(e.rule_id for e in verdict.exemptions))


def _ids(ids: Iterable[str]) -> str:
    return "[" + ", ".join(ids) + "]"


def _quoted(text: str) -> str:
    """A name or phrase in double quotes, escaped as JSON so a quote or newline cannot blur it."""
    return json.dumps(text, ensure_ascii=False)
