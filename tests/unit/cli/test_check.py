"""`import-closure check` as a subprocess: decisions, explanations, --as-of, and every broken input
line reported by number while the run goes on. No broker needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consumer.cli.main import main
from tests.unit.cli.invoke import POLICIES, ROOT, SAMPLES, run
from tests.unit.hostile import deep_json, listing_line


class TestCheck:
    def test_decides_the_bundled_samples(self) -> None:
        """One JSON decision per sample line, with the documented fields; exit 0."""
        result = run("check", str(SAMPLES))
        assert result.returncode == 0, result.stderr
        lines = SAMPLES.read_text().strip().splitlines()
        decisions = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(decisions) == len(lines)
        required = {
            "listing_id",
            "event_id",
            "outcome",
            "reasons",
            "matched_rules",
            "cluster",
            "cross_border",
            "policy",
            "policy_version",
        }
        for d in decisions:
            assert required <= d.keys()
            assert d["policy"] == "id-akar-import-closure"
        assert {d["outcome"] for d in decisions} == {"APPROVED", "REJECTED"}
        rejected = [d for d in decisions if d["outcome"] == "REJECTED"]
        assert all(r["code"] == "IMPORT_CLOSED_CATEGORY" for d in rejected for r in d["reasons"])

    def test_reads_standard_input_and_reports_bad_lines_by_number(self) -> None:
        """Invalid lines print `line N: ...` on stderr and no decision; the exit status is 2."""
        good = SAMPLES.read_text().splitlines()[0]
        stdin = "\n".join([good, "{not json", '{"listing_id": "x"}', good]) + "\n"
        result = run("check", "-", stdin=stdin)
        assert result.returncode == 2
        assert len(result.stdout.splitlines()) == 2
        errors = result.stderr.splitlines()
        assert errors[0].startswith("line 2: not valid JSON")
        assert errors[1].startswith("line 3: ")
        assert "Traceback" not in result.stderr

    def test_other_policy_changes_the_decision(self) -> None:
        """--policy selects the file; the permendag policy rejects cheap cross-border listings."""
        listing = json.loads(SAMPLES.read_text().splitlines()[0])
        listing.update(
            event_time="2024-01-01T00:00:00Z",
            channel="CROSS_BORDER",
            hs_code=None,
            price={"amount_minor": 1_000, "currency": "USD"},
        )
        result = run(
            "check",
            "--policy",
            str(POLICIES / "permendag-31-2023.yaml"),
            stdin=json.dumps(listing) + "\n",
        )
        assert result.returncode == 0, result.stderr
        decision = json.loads(result.stdout)
        assert decision["outcome"] == "REJECTED"
        assert decision["reasons"][0]["code"] == "CROSS_BORDER_BELOW_MIN_PRICE"

    def test_explain_prints_a_readable_account(self) -> None:
        """--explain says which rules applied and what the outcome is."""
        result = run("check", "--explain", str(SAMPLES))
        assert result.returncode == 0, result.stderr
        assert "akar-fashion-textile" in result.stdout
        assert "REJECTED" in result.stdout

    def test_as_of_re_evaluates_a_listing_from_before_the_closure(self) -> None:
        """A July 2021 cross-border dress: approved by its event_time, rejected as of September."""
        first = SAMPLES.read_text().splitlines()[0] + "\n"
        live = json.loads(run("check", "-", stdin=first).stdout)
        result = run("check", "--as-of", "2021-09-01", "-", stdin=first)
        assert result.returncode == 0, result.stderr
        later = json.loads(result.stdout)
        assert (live["outcome"], live["as_of"]) == ("APPROVED", None)
        assert later["outcome"] == "REJECTED"
        assert later["as_of"] == "2021-08-31T17:00:00.000Z"  # 00:00 in Asia/Jakarta

    def test_unreadable_as_of_is_one_line_and_exit_2(self) -> None:
        """An --as-of that is no time stops before reading any input."""
        result = run("check", "--as-of", "soon", str(SAMPLES))
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "import-closure: --as-of: 'soon' is not now, a date (2021-08-03) or an RFC 3339 datetime"
        )


class TestHostileLines:
    def test_every_broken_line_is_reported_and_the_run_goes_on(self) -> None:
        """Bad bytes, surrogates, deep nesting, huge numbers, missing fields and over-long lines
        are each `line N: ...` on stderr; the good lines around them are still decided."""
        good = listing_line().encode()
        lines = [
            good,
            good.replace(b"Gaun", b"G\xe9un"),
            listing_line(title="\ud800").encode(),
            deep_json(1_000).encode(),
            good.replace(b"15000000", b"9" * 5_000),
            b'{"listing_id": "x"}',
            b"x" * (1024 * 1024 + 1),
            good,
        ]
        result = subprocess.run(
            [sys.executable, "-m", "consumer", "check", "-"],
            input=b"\n".join(lines) + b"\n",
            capture_output=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert len(result.stdout.splitlines()) == 2
        errors = result.stderr.decode().splitlines()
        assert [e.split(":", 1)[0] for e in errors] == [f"line {n}" for n in range(2, 8)]
        assert errors[0].startswith("line 2: not UTF-8: byte 0xe9 at byte offset")
        assert errors[1].startswith("line 3: title: contains a lone surrogate")
        assert errors[2] == "line 4: not valid JSON: nested too deeply"
        assert errors[3] == (
            "line 5: price.amount_minor: expected a 64-bit integer, got a number of 5,000 digits"
        )
        assert errors[4].startswith("line 6: event_id, event_time, seller_id, site,")
        assert errors[4].endswith("title, price: required fields missing")
        assert errors[5] == "line 7: longer than 1,048,576 bytes; skipped"

    def test_file_input_is_read_as_bytes_too(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A named JSON Lines file gets the same per-line handling as standard input."""
        path = tmp_path / "in.jsonl"
        path.write_bytes(b"\xff\n" + listing_line().encode() + b"\n")
        assert main(["check", str(path)]) == 2
        out, err = capsys.readouterr()
        assert len(out.splitlines()) == 1
        assert err == "line 1: not UTF-8: byte 0xff at byte offset 0 (invalid start byte)\n"


#: Fashion imports go to review unless a known seller sells them; the book allow rule exempts
#: only the review rule.
REVIEW_POLICY = """\
policy: review-test
version: "1"
clusters:
  fashion: {category_paths: [["Women's Fashion"]]}
conditions:
  fashion_import: {cross_border: true, cluster_in: [fashion]}
rules:
  - id: fashion-review
    effect: review
    reason: FASHION_IMPORT_REVIEW
    message: a person checks cross-border fashion
    when: {condition: fashion_import}
    unless: {seller_in: [trusted]}
  - id: books
    effect: allow
    exempts: [fashion-review]
    when: {hs_code_prefix_in: ["4901"]}
"""


class TestCheckReview:
    @pytest.mark.parametrize(
        ("changes", "outcome", "exemptions"),
        [
            ({}, "REVIEW", []),
            ({"seller_id": "trusted"}, "APPROVED", [{"rule_id": "fashion-review", "by": "unless"}]),
            ({"hs_code": "490199"}, "APPROVED", [{"rule_id": "fashion-review", "by": "books"}]),
        ],
        ids=["review", "exempted-by-unless", "exempted-by-allow-rule"],
    )
    def test_json_states_outcome_and_exemptions(
        self, tmp_path: Path, changes: dict[str, str], outcome: str, exemptions: list[Any]
    ) -> None:
        """check's JSON carries REVIEW and the exemptions applied under their Avro names."""
        policy = tmp_path / "review.yaml"
        policy.write_text(REVIEW_POLICY)
        listing = json.loads(SAMPLES.read_text().splitlines()[0]) | changes
        listing.update(channel="CROSS_BORDER", category_path=["Women's Fashion", "Dresses"])
        result = run("check", "--policy", str(policy), stdin=json.dumps(listing) + "\n")
        assert result.returncode == 0, result.stderr
        decision = json.loads(result.stdout)
        assert (decision["outcome"], decision["exemptions"]) == (outcome, exemptions)

    def test_explain_states_the_exemption(self, tmp_path: Path) -> None:
        """check --explain shows the unless block and the exemption it applied."""
        policy = tmp_path / "review.yaml"
        policy.write_text(REVIEW_POLICY)
        listing = json.loads(SAMPLES.read_text().splitlines()[0]) | {"seller_id": "trusted"}
        listing.update(channel="CROSS_BORDER", category_path=["Women's Fashion", "Dresses"])
        result = run(
            "check", "--explain", "--policy", str(policy), stdin=json.dumps(listing) + "\n"
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert "    condition fashion_import: held" in lines
        assert "    -> unless held: this rule is exempted" in lines
        assert "  exempted fashion-review by its unless" in lines
        assert "outcome: APPROVED" in lines


class TestDatedListsAndFx:
    @pytest.fixture
    def policy(self, tmp_path: Path) -> Path:
        """A min-price rule on dated fx tables, exempted by a positive list read from a file."""
        (tmp_path / "positive.txt").write_text("# books\n4901\n")
        (tmp_path / "p.yaml").write_text(
            "policy: dated\nversion: '1'\ntimezone: Asia/Jakarta\n"
            "fx:\n  base: USD\n  tables:\n"
            "    - {effective_from: 2023-09-25, rates: {IDR: 0.0000625}}\n"
            "lists:\n  positive: [{effective_from: 2023-01-01, file: positive.txt}]\n"
            "rules:\n  - id: min-price\n    effect: reject\n    reason: BELOW_MIN_PRICE\n"
            "    when: {cross_border: true, price_below: {amount: 100, currency: USD}}\n"
            "    unless: {hs_code_prefix_in: {list: positive}}\n"
        )
        return tmp_path / "p.yaml"

    @pytest.mark.parametrize(
        ("hs_code", "outcome", "fx"),
        [
            (
                "6403.99",
                "REJECTED",
                {
                    "table_from": "2023-09-24T17:00:00.000Z",
                    "base": "USD",
                    "currency": "IDR",
                    "rate": "0.0000625",
                },
            ),
            ("4901.99", "APPROVED", None),
        ],
        ids=["price-rule-names-its-fx", "exempted-by-the-list-file"],
    )
    def test_json_carries_the_fx_used(
        self, policy: Path, hs_code: str, outcome: str, fx: dict[str, Any] | None
    ) -> None:
        """`check` reads the list file beside the policy and prints the decision's fx."""
        listing = json.loads(SAMPLES.read_text().splitlines()[0])
        listing.update(
            event_time="2023-10-01T00:00:00Z",
            ship_from_country="CN",
            price={"amount_minor": 15_000_000, "currency": "IDR"},
            hs_code=hs_code,
        )
        result = run("check", "--policy", str(policy), "-", stdin=json.dumps(listing) + "\n")
        assert result.returncode == 0, result.stderr
        decision = json.loads(result.stdout)
        assert decision["outcome"] == outcome
        assert decision["fx"] == fx

    def test_explain_shows_the_list_and_the_fx_used(self, policy: Path) -> None:
        """`check --explain` names the list, its entries in force and the fx table and rate."""
        listing = json.loads(SAMPLES.read_text().splitlines()[0])
        listing.update(
            event_time="2023-10-01T00:00:00Z",
            price={"amount_minor": 15_000_000, "currency": "IDR"},
            hs_code="6403.99",
        )
        result = run(
            "check", "--policy", str(policy), "--explain", "-", stdin=json.dumps(listing) + "\n"
        )
        assert result.returncode == 0, result.stderr
        assert (
            "hs_code_prefix_in {list: positive} (1 entry in force): did not hold" in result.stdout
        )
        assert (
            "fx used: fx table from 2023-09-25T00:00+07:00, 1 IDR = 0.0000625 USD" in result.stdout
        )
