"""The command line end to end, as a subprocess: output, errors and exit codes. No broker needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consumer.cli.main import main
from tests.unit.hostile import HEAD, POLICY_CASES, deep_json, listing_line

ROOT = Path(__file__).resolve().parents[3]
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


#: Runs every hostile policy through both commands in one process, under a 1 GiB address-space
#: limit (the alias bomb alone once passed 1.5 GB); prints one exit status per run.
_CORPUS_DRIVER = """
import contextlib, io, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from consumer.cli.main import main
for path in sys.argv[1:]:
    for args in (["validate-policy", path], ["check", "--policy", path, "/dev/null"]):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            status = main(args)
        print(status, len(err.getvalue().splitlines()), args[0], path)
"""


class TestHostileInput:
    @pytest.mark.parametrize(("name", "raw"), POLICY_CASES, ids=[name for name, _ in POLICY_CASES])
    @pytest.mark.parametrize(
        "command", [["validate-policy"], ["check", "--policy"]], ids=["validate", "check"]
    )
    def test_hostile_policy_is_problems_and_exit_2(
        self,
        name: str,
        raw: bytes,
        command: list[str],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Each hostile file prints `FILE: path: message` lines and exits 2, never a traceback."""
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(raw)
        extra = [str(tmp_path / "empty.jsonl")] if command[0] == "check" else []
        (tmp_path / "empty.jsonl").write_bytes(b"")
        assert main([*command, str(path), *extra]) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert lines, "at least one problem line"
        assert all(line.startswith(f"{path}: ") for line in lines), err
        assert "Traceback" not in err
        assert "unexpected error" not in err

    def test_whole_corpus_runs_in_bounded_time_and_memory(self, tmp_path: Path) -> None:
        """All hostile files through both commands: one process, 1 GiB, well inside the timeout."""
        paths = []
        for name, raw in POLICY_CASES:
            path = tmp_path / f"{name}.yaml"
            path.write_bytes(raw)
            paths.append(str(path))
        result = subprocess.run(
            [sys.executable, "-c", _CORPUS_DRIVER, *paths],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        statuses = [line.split()[0] for line in result.stdout.splitlines()]
        assert statuses == ["2"] * (2 * len(POLICY_CASES))

    def test_oversized_policy_is_refused_without_reading_it_all(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 50 MB file is refused by size at once (only the first 5 MiB + 1 byte are read)."""
        path = tmp_path / "huge.yaml"
        with path.open("wb") as file:
            file.write(HEAD.encode())
            file.truncate(50 * 1024 * 1024)
        assert main(["validate-policy", str(path)]) == 2
        assert capsys.readouterr().err == (
            f"{path}: (file): more than 5,242,880 bytes; a policy file may have at most 5 MiB\n"
        )

    def test_empty_rule_list_validates_with_a_warning(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`rules: []` is valid (exit 0, summary on stdout) but warned about on stderr."""
        path = tmp_path / "empty.yaml"
        path.write_text(HEAD + "rules: []\n")
        assert main(["validate-policy", str(path)]) == 0
        out, err = capsys.readouterr()
        assert "rules (0):" in out
        assert err == (
            f"{path}: warning: rules: the policy has no rules, so it approves every listing\n"
        )

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
