"""`import-closure validate-policy`: the summary, every problem with its path, and hostile policy
files (through `check --policy` too, which loads them the same way). No broker needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from consumer.cli.main import main
from tests.unit.cli.invoke import POLICIES, ROOT, run
from tests.unit.hostile import HEAD, POLICY_CASES


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


class TestHostilePolicy:
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

    @pytest.mark.parametrize(
        ("exempts", "warned"),
        [("", True), ('    exempts: ["*"]\n', False), ("    exempts: [r]\n", False)],
        ids=["no-exempts", "star", "named"],
    )
    def test_allow_rule_without_exempts_is_warned_about(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], exempts: str, warned: bool
    ) -> None:
        """An allow rule that exempts every rule by omission is valid, with a warning on
        stderr; `exempts: ["*"]` says it on purpose and is not warned about."""
        path = tmp_path / "allow.yaml"
        path.write_text(
            HEAD
            + "rules:\n"
            + "  - {id: r, effect: reject, reason: R, when: {cross_border: true}}\n"
            + "  - id: a\n    effect: allow\n"
            + exempts
            + "    when: {cross_border: true}\n"
        )
        assert main(["validate-policy", str(path)]) == 0
        err = capsys.readouterr().err
        expected = (
            f"{path}: warning: rules[1]: allow rule 'a' has no 'exempts', so when it matches it "
            "exempts every reject and review rule of the file; name the rules it exempts "
            '(exempts: [rule-id, ...]), or write exempts: ["*"] if that is what you mean\n'
        )
        assert err == (expected if warned else "")
