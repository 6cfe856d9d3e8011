"""The command line end to end, as a subprocess: output, errors and exit codes. No broker needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "consumer" / "data" / "samples" / "listings.jsonl"
POLICIES = ROOT / "consumer" / "data" / "policies"


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPORT_CLOSURE_")}
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


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


class TestValidatePolicy:
    def test_summarises_a_valid_policy(self) -> None:
        """Exit 0 with id, version and the rules."""
        result = run("validate-policy", str(POLICIES / "id-akar-import-closure.yaml"))
        assert result.returncode == 0, result.stderr
        assert "id-akar-import-closure" in result.stdout
        assert "akar-crafts" in result.stdout

    def test_lists_every_error_with_its_path(self, tmp_path: Path) -> None:
        """Exit 2 with one line per problem, each naming where it is."""
        text = (POLICIES / "id-akar-import-closure.yaml").read_text()
        text = text.replace("cluster_in: [crafts]", "cluster_in: [craft]")
        text = text.replace("timezone: Asia/Jakarta", "timezone: Asia/Jakarte")
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        result = run("validate-policy", str(path))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert any("when.cluster_in: unknown cluster 'craft'" in line for line in lines)
        assert any(line.startswith(f"{path}: timezone:") for line in lines)


class TestUsageErrors:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["check", "/nonexistent.jsonl"], "cannot read /nonexistent.jsonl"),
            (
                ["check", "--policy", "/nonexistent.yaml"],
                "policy file /nonexistent.yaml: cannot read",
            ),
            (["run", "--until-idle", "soon"], "argument --until-idle: not a number"),
            (["produce-sample"], "the following arguments are required: --count"),
            (["frobnicate"], "invalid choice"),
        ],
        ids=["missing-input", "missing-policy", "bad-number", "missing-option", "unknown-command"],
    )
    def test_one_clear_line_and_exit_2(self, args: list[str], message: str) -> None:
        """Bad arguments and unreadable files never show a traceback."""
        result = run(*args)
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr

    def test_bad_setting_stops_with_one_message(self) -> None:
        """A bad environment value names the variable."""
        result = run("config", env={"IMPORT_CLOSURE_HTTP_PORT": "http"})
        assert result.returncode == 2
        assert "IMPORT_CLOSURE_HTTP_PORT" in result.stderr


class TestConfigCommand:
    def test_prints_effective_settings_with_secrets_redacted(self) -> None:
        """`config` shows what the worker would use, passwords as ***."""
        result = run(
            "config",
            env={"IMPORT_CLOSURE_KAFKA_SASL_PASSWORD": "hunter2", "IMPORT_CLOSURE_GROUP_ID": "g-7"},
        )
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown["group_id"] == "g-7"
        assert shown["kafka"]["sasl.password"] == "***"
        assert "hunter2" not in result.stdout

    @pytest.mark.parametrize(
        "command", ["check", "validate-policy", "run", "topics", "produce-sample", "config"]
    )
    def test_every_subcommand_has_help(self, command: str) -> None:
        """--help works for each subcommand and exits 0."""
        result = run(command, "--help")
        assert result.returncode == 0
        assert "usage: import-closure" in result.stdout
