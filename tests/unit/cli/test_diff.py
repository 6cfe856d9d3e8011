"""`diff` against two `check` runs on the same file: the report's numbers are what they give."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from consumer.codec import listing_to_json
from consumer.core.impact import TRANSITIONS
from consumer.core.sample import SampleSpec, generate
from tests.unit.cli.invoke import POLICIES, SAMPLES, run

LIVE = POLICIES / "id-akar-import-closure.yaml"
#: Against LIVE: crafts reopened (REJECTED->APPROVED), a USD 100 minimum for cross-border goods
#: (APPROVED->REJECTED, and REJECTED->REJECTED with one more reason).
CANDIDATE_RULES = """
fx:
  base: USD
  rates: {USD: 1, IDR: 0.0000647, CNY: 0.137, MYR: 0.213, SGD: 0.732, KRW: 0.000741, JPY: 0.00671}
"""
MIN_PRICE = """
  - id: min-price
    effect: reject
    reason: CROSS_BORDER_BELOW_MIN_PRICE
    message: at least USD 100
    effective_from: 2021-08-03
    when: {cross_border: true, price_below: {amount: 100, currency: USD}}
"""


def _candidate(tmp_path: Path) -> Path:
    text = LIVE.read_text()
    crafts = text.index("  - id: akar-crafts")
    rules = text.index("rules:")
    candidate = text[:rules] + CANDIDATE_RULES + text[rules:crafts] + MIN_PRICE
    path = tmp_path / "candidate.yaml"
    path.write_text(candidate)
    return path


def _listings(tmp_path: Path, count: int = 600) -> Path:
    """The samples, generated listings (2021 onwards, about 40% cross-border) and two bad lines."""
    spec = SampleSpec(base_time_ms=1_627_000_000_000, step_ms=86_400_000 / 8)
    lines = SAMPLES.read_text().splitlines()
    lines += [json.dumps(listing_to_json(x)) for x in itertools.islice(generate(7, spec), count)]
    lines.insert(5, "{not json")
    lines.insert(40, '{"listing_id": "x"}')
    path = tmp_path / "listings.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _reasons(d: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["code"], r["rule_id"]) for r in d["reasons"]}


def _expected(live: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> dict[str, Any]:
    """The report as two check runs define it, decision by decision."""
    transitions: Counter[str] = Counter()
    by_cluster: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    changed = []
    for old, new in zip(live, candidate, strict=True):
        assert old["listing_id"] == new["listing_id"]
        if old["outcome"] == new["outcome"] and _reasons(old) == _reasons(new):
            continue
        changed.append((old, new))
        transitions[f"{old['outcome']}->{new['outcome']}"] += 1
        by_cluster[new["cluster"] or "none"] += 1
        rules = set(old["matched_rules"]) ^ set(new["matched_rules"])
        by_rule.update(rules or {rule for _, rule in _reasons(old) ^ _reasons(new)})
    return {
        "listings": len(live),
        "changed": len(changed),
        "transitions": transitions,
        "by_cluster": dict(by_cluster),
        "by_rule": dict(by_rule),
        "pairs": changed,
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("diff")
    listings, candidate = _listings(tmp), _candidate(tmp)
    first = run("check", "--policy", str(LIVE), str(listings))
    second = run("check", "--policy", str(candidate), str(listings))
    assert first.returncode == second.returncode == 2  # the two bad lines
    assert first.stderr == second.stderr
    live = [json.loads(line) for line in first.stdout.splitlines()]
    new = [json.loads(line) for line in second.stdout.splitlines()]
    return listings, candidate, _expected(live, new), first.stderr


class TestDiffAgainstCheck:
    def test_json_report_equals_two_check_runs(
        self, inputs: tuple[Path, Path, dict[str, Any], str]
    ) -> None:
        """listings, invalid, changed, transitions, by_cluster, by_rule: what check gives, twice."""
        listings, candidate, expected, check_errors = inputs
        result = run(
            "diff", "--policy", str(LIVE), "--candidate", str(candidate), "--format", "json",
            "--examples", "3", str(listings),
        )  # fmt: skip
        assert result.returncode == 2  # invalid lines: reported as check reports them
        assert result.stderr == check_errors
        report = json.loads(result.stdout)
        assert report["listings"] == expected["listings"]
        assert report["invalid"] == 2
        assert report["changed"] == expected["changed"]
        assert report["transitions"] == {t: expected["transitions"][t] for t in TRANSITIONS}
        older = ("APPROVED->REJECTED", "REJECTED->APPROVED", "REJECTED->REJECTED")
        assert all(report["transitions"][t] for t in older), "the input exercises each of them"
        assert report["by_cluster"] == expected["by_cluster"]
        assert report["by_rule"] == expected["by_rule"]
        first = [
            (old["listing_id"], old["outcome"], new["outcome"])
            for old, new in expected["pairs"][:3]
        ]
        shown = [
            (e["listing_id"], e["from"]["outcome"], e["to"]["outcome"]) for e in report["examples"]
        ]
        assert shown == first

    def test_changes_are_one_line_per_changed_listing(
        self, inputs: tuple[Path, Path, dict[str, Any], str]
    ) -> None:
        """--changes: listing_id, event_id, from and to of every changed decision, in input order."""
        listings, candidate, expected, _ = inputs
        result = run("diff", "--candidate", str(candidate), "--changes", str(listings))
        assert result.returncode == 2
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(x["listing_id"], x["event_id"]) for x in lines] == [
            (old["listing_id"], old["event_id"]) for old, _ in expected["pairs"]
        ]
        for line, (old, new) in zip(lines, expected["pairs"], strict=True):
            assert line["from"] == {"outcome": old["outcome"], "reasons": old["reasons"]}
            assert line["to"] == {"outcome": new["outcome"], "reasons": new["reasons"]}

    def test_text_report_states_the_same_numbers(
        self, inputs: tuple[Path, Path, dict[str, Any], str]
    ) -> None:
        """The readable report: counts, the transition table, and examples explained both ways."""
        listings, candidate, expected, _ = inputs
        result = run("diff", "--candidate", str(candidate), "--examples", "1", str(listings))
        assert result.returncode == 2
        out = result.stdout.splitlines()
        assert f"listings read: {expected['listings']:,}" in out
        assert "invalid lines: 2" in out
        assert any(line.startswith(f"decisions changed: {expected['changed']:,} (") for line in out)
        for t, n in expected["transitions"].items():
            assert f"  {t:<20} {n:>10,}" in out
        assert out.count("-- live:") == out.count("-- candidate:") == 1
        assert sum(line.startswith("outcome: ") for line in out) == 2


#: Against LIVE: culinary sent to review instead of rejected, cheap cross-border goods sent to
#: review; diffed both ways, every transition into and out of REVIEW occurs.
REVIEW_RULES = """
  - id: akar-culinary
    effect: review
    reason: CULINARY_IMPORT_REVIEW
    effective_from: 2021-08-03
    when: {cross_border: true, cluster_in: [culinary]}
  - id: cheap-review
    effect: review
    reason: CHEAP_IMPORT_REVIEW
    effective_from: 2021-08-03
    when: {cross_border: true, price_below: {amount: 20, currency: USD}}
"""


class TestDiffReview:
    @pytest.mark.parametrize(
        ("reverse", "seen"),
        [
            (False, ("APPROVED->REVIEW", "REJECTED->REVIEW")),
            (True, ("REVIEW->APPROVED", "REVIEW->REJECTED")),
        ],
        ids=["to-review", "from-review"],
    )
    def test_review_transitions_are_counted_like_two_check_runs(
        self, tmp_path: Path, reverse: bool, seen: tuple[str, ...]
    ) -> None:
        """Every transition to and from REVIEW is a key of the JSON report after the three older
        keys, and the counts are what two check runs give."""
        listings = _listings(tmp_path)
        text = LIVE.read_text()
        start = text.index("  - id: akar-culinary")
        end = text.index("  - id: akar-crafts")
        rules = text.index("rules:")
        review = tmp_path / "review.yaml"
        review.write_text(
            text[:rules] + CANDIDATE_RULES + text[rules:start] + text[end:] + REVIEW_RULES
        )
        live, candidate = (review, LIVE) if reverse else (LIVE, review)
        runs = [run("check", "--policy", str(p), str(listings)) for p in (live, candidate)]
        old, new = ([json.loads(line) for line in r.stdout.splitlines()] for r in runs)
        expected = _expected(old, new)
        result = run(
            "diff", "--policy", str(live), "--candidate", str(candidate), "--format", "json",
            str(listings),
        )  # fmt: skip
        report = json.loads(result.stdout)
        assert list(report["transitions"]) == list(TRANSITIONS)
        assert report["transitions"] == {t: expected["transitions"][t] for t in TRANSITIONS}
        assert set(expected["transitions"]) <= set(TRANSITIONS)
        for t in seen:
            assert report["transitions"][t] > 0, t


class TestDiffExitCodes:
    def test_clean_input_exits_0_even_when_decisions_change(self, tmp_path: Path) -> None:
        """Changes are the answer, not a failure."""
        result = run(
            "diff", "--candidate", str(_candidate(tmp_path)), "--format", "json", str(SAMPLES)
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["changed"] > 0

    def test_invalid_candidate_is_exit_2_with_its_problems(self, tmp_path: Path) -> None:
        """A candidate that does not validate stops before any input is read."""
        bad = tmp_path / "bad.yaml"
        bad.write_text("policy: x\nversion: '1'\nrules: [{id: r}]\n")
        result = run("diff", "--candidate", str(bad), str(SAMPLES))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"{bad}: ")

    def test_as_of_applies_to_both_policies(self, tmp_path: Path) -> None:
        """As of 2021-01-01 neither policy's rules are in force: nothing changes."""
        result = run(
            "diff", "--candidate", str(_candidate(tmp_path)), "--as-of", "2021-01-01",
            "--format", "json", str(SAMPLES),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["changed"] == 0
