"""`import-closure test-policy`: every bundled policy passes its shipped tests with --strict (so CI
runs them), a wrong expectation fails with exit 1 and its line, a broken test file or policy
exits 2 with one line per problem. No broker needed."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from consumer.cli.main import main
from consumer.policy.bundled import BUNDLED_POLICIES, BUNDLED_SETS, bundled_tests_path
from tests.unit.cli.invoke import POLICIES, ROOT, run

BUNDLED = [*BUNDLED_POLICIES, *BUNDLED_SETS]
AKAR_TESTS = POLICIES / "id-akar-import-closure.tests.yaml"

DRESS = """\
cases:
  - name: cross-border dress
    listing: {seller_country: CN, ship_from_country: CN, category_path: ["Women's Fashion"]}
    expect: {outcome: REJECTED, rules: [akar-fashion-textile]}
"""


def write(tmp_path: Path, text: str, name: str = "tests.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestBundledPolicies:
    @pytest.mark.parametrize("name", BUNDLED, ids=BUNDLED)
    def test_each_bundled_policy_passes_its_shipped_tests_with_strict(self, name: str) -> None:
        """Every case passes and every rule, exemption and list version is covered."""
        result = run("test-policy", "--strict", f"bundled:{name}")
        assert result.returncode == 0, result.stdout + result.stderr
        summary = result.stdout.splitlines()[-1]
        assert summary.endswith(" passed, 0 failed"), summary
        assert "coverage:" not in result.stdout

    def test_the_shipped_test_file_can_be_named_with_a_policy_path(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The same file, given explicitly, against the policy file (not bundled:)."""
        policy = POLICIES / "indonesia-cross-border" / "set.yaml"
        tests = POLICIES / "indonesia-cross-border" / "set.tests.yaml"
        assert main(["test-policy", "--strict", str(policy), str(tests)]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "19 passed, 0 failed"

    @pytest.mark.parametrize("name", BUNDLED, ids=BUNDLED)
    def test_the_wheel_ships_the_test_files(self, name: str) -> None:
        """pyproject's package-data globs match each bundled test file."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        globs = pyproject["tool"]["setuptools"]["package-data"]["consumer"]
        path = bundled_tests_path(name)
        assert (ROOT / "consumer" / path).is_file()
        assert any(fnmatch.fnmatch(path, g) for g in globs)


class TestFailingCases:
    def test_a_wrong_expectation_fails_with_exit_1_and_its_line(self, tmp_path: Path) -> None:
        wrong = DRESS.replace("outcome: REJECTED, rules: [akar-fashion-textile]", "outcome: REVIEW")
        tests = write(tmp_path, wrong)
        result = run("test-policy", "bundled:id-akar-import-closure", str(tests))
        assert result.returncode == 1
        assert result.stdout.splitlines() == [
            f'FAIL {tests}: "cross-border dress": outcome expected REVIEW, got REJECTED '
            "(rules [akar-fashion-textile])",
            "coverage: rule akar-culinary matched by no case",
            "coverage: rule akar-crafts matched by no case",
            "0 passed, 1 failed; 2 coverage gaps (warnings; --strict fails them)",
        ]
        assert result.stderr == ""

    def test_a_bundled_file_with_one_expectation_changed_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The shipped cases are assertions that can fail: flip one outcome and it is caught."""
        text = AKAR_TESTS.read_text(encoding="utf-8")
        changed = text.replace(
            "outcome: APPROVED\n      rules: []", "outcome: REJECTED\n      rules: []", 1
        )
        assert changed != text
        code = main(
            [
                "test-policy",
                "--strict",
                "bundled:id-akar-import-closure",
                str(write(tmp_path, changed)),
            ]
        )
        out = capsys.readouterr().out.splitlines()
        assert code == 1
        assert out[0] == (
            f'FAIL {tmp_path / "tests.yaml"}: "domestic dress is approved": '
            "outcome expected REJECTED, got APPROVED"
        )
        assert out[-1] == "10 passed, 1 failed"

    def test_verbose_prints_every_case(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert (
            main(
                ["test-policy", "-v", "bundled:id-akar-import-closure", str(write(tmp_path, DRESS))]
            )
            == 0
        )
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("PASS ")
        assert out[0].endswith('"cross-border dress": REJECTED (rules [akar-fashion-textile])')
        assert out[-1].startswith("1 passed, 0 failed; 2 coverage gaps")

    def test_coverage_gaps_fail_only_with_strict(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        tests = str(write(tmp_path, DRESS))
        assert main(["test-policy", "bundled:id-akar-import-closure", tests]) == 0
        assert main(["test-policy", "--strict", "bundled:id-akar-import-closure", tests]) == 1
        out = capsys.readouterr().out
        assert "1 passed, 0 failed; 2 coverage gaps (failures with --strict)" in out

    def test_several_files_are_one_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Coverage adds up over the files; a name may repeat in another file."""
        culinary = DRESS.replace("Women's Fashion", "Kuliner").replace(
            "akar-fashion-textile", "akar-culinary"
        )
        crafts = DRESS.replace("Women's Fashion", "Kerajinan").replace(
            "akar-fashion-textile", "akar-crafts"
        )
        files = [
            str(write(tmp_path, text, f"{i}.yaml"))
            for i, text in enumerate([DRESS, culinary, crafts])
        ]
        assert main(["test-policy", "--strict", "bundled:id-akar-import-closure", *files]) == 0
        assert capsys.readouterr().out.splitlines() == ["3 passed, 0 failed"]


class TestInvalidInput:
    def test_an_invalid_test_file_exits_2_naming_file_and_path(self, tmp_path: Path) -> None:
        tests = write(tmp_path, DRESS.replace("outcome: REJECTED", "outcome: REJECT"))
        result = run("test-policy", "bundled:id-akar-import-closure", str(tests))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"{tests}: cases[0].expect.outcome: expected one of APPROVED, REJECTED, REVIEW, "
            "got a string ('REJECT')"
        ]

    def test_every_invalid_test_file_is_reported(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Not only the first: each file's problems, then exit 2 and no case is run."""
        bad = write(tmp_path, DRESS.replace("outcome: REJECTED", "outcome: REJECT"), "bad.yaml")
        good = write(tmp_path, DRESS, "good.yaml")
        typo = write(tmp_path, DRESS.replace("[akar-fashion-textile]", "[akar-x]"), "typo.yaml")
        code = main(
            ["test-policy", "bundled:id-akar-import-closure", str(bad), str(good), str(typo)]
        )
        out, err = capsys.readouterr()
        assert code == 2
        assert out == ""
        assert [line.split(":")[0] for line in err.splitlines()] == [str(bad), str(typo)]

    def test_an_unknown_rule_id_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        tests = write(
            tmp_path, DRESS.replace("rules: [akar-fashion-textile]", "rules: [akar-fashion]")
        )
        assert main(["test-policy", "bundled:id-akar-import-closure", str(tests)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(
            f"{tests}: cases[0].expect.rules[0]: no rule 'akar-fashion' in id-akar-import-closure"
        )

    def test_an_invalid_policy_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        policy = write(tmp_path, "policy: p\nversion: '1'\nrules: []\nextra: 1\n", "policy.yaml")
        assert main(["test-policy", str(policy), str(write(tmp_path, DRESS))]) == 2
        assert capsys.readouterr().err.startswith(f"{policy}: ")

    def test_a_missing_test_file_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        missing = tmp_path / "nope.yaml"
        assert main(["test-policy", "bundled:id-akar-import-closure", str(missing)]) == 2
        assert (
            capsys.readouterr().err
            == f"import-closure: cannot read {missing}: No such file or directory\n"
        )

    def test_a_policy_file_without_test_files_exits_2(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Only bundled:NAME brings its own tests."""
        assert main(["test-policy", str(POLICIES / "permendag-31-2023.yaml")]) == 2
        assert "name at least one test file" in capsys.readouterr().err

    def test_no_traceback_for_a_hostile_test_file(self, tmp_path: Path) -> None:
        """Not UTF-8: one line naming the byte, exit 2."""
        tests = tmp_path / "tests.yaml"
        tests.write_bytes(b"cases:\n  - name: \xff\n")
        result = run("test-policy", "bundled:id-akar-import-closure", str(tests))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"{tests}: line 2: not UTF-8: byte 0xff")

    def test_help_describes_the_file_format_and_exit_codes(self) -> None:
        result = run("test-policy", "--help")
        assert result.returncode == 0
        for words in ("--strict", "cases:", "Exit 0", "seller-test", "2024-01-01T00:00:00Z"):
            assert words in " ".join(result.stdout.split()), words
