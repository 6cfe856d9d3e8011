"""The top-level command line as a subprocess: usage errors, bad settings and --help. No broker
needed. Each command's own behaviour is tested in the test module named after it."""

from __future__ import annotations

import pytest

from consumer.cli.main import build_parser
from tests.unit.cli.invoke import run

#: `import-closure --help` lists the commands in this order; the help text must not change.
COMMANDS = [
    "check",
    "validate-policy",
    "test-policy",
    "run",
    "topics",
    "produce-sample",
    "export",
    "diff",
    "replay",
    "config",
    "acls",
]


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


class TestHelp:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_every_subcommand_has_help(self, command: str) -> None:
        """--help works for each subcommand and exits 0."""
        result = run(command, "--help")
        assert result.returncode == 0
        assert "usage: import-closure" in result.stdout

    def test_commands_are_listed_in_the_documented_order(self) -> None:
        """Splitting the commands into modules left the top-level help's order as it was."""
        parser = build_parser()
        [sub] = [a for a in parser._actions if a.dest == "command"]
        assert list(sub.choices or {}) == COMMANDS
