"""`import-closure acls` as a user runs it: the configured names, no broker needed."""

from __future__ import annotations

from tests.unit.cli.invoke import CLOSED, run


def test_prints_one_kafka_acls_line_per_acl_of_the_configured_commands() -> None:
    result = run(
        "acls", "--for", "produce-sample", env={**CLOSED, "IMPORT_CLOSURE_INPUT_TOPIC": "in"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "# produce-sample for User:import-closure",
        "kafka-acls.sh --bootstrap-server 127.0.0.1:1 --command-config admin.properties --add "
        "--allow-principal User:import-closure --operation Write --topic in",
    ]


def test_an_unknown_command_is_a_usage_error() -> None:
    result = run("acls", "--for", "runn", env=CLOSED)
    assert result.returncode == 2
    assert "unknown command 'runn'" in result.stderr
