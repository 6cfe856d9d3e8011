"""The ACL table in code equals the one in docs/operations.md, and resolves to the settings' names."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consumer import config
from consumer.tools.acls import ROWS, Acl, commands_for, kafka_acls_lines, resolved
from tests.unit.cli.invoke import ROOT

HEADER = "| command | resource type | name | pattern type | operation | why |"


def docs_rows() -> list[Acl]:
    lines = (ROOT / "docs" / "operations.md").read_text().splitlines()
    rows = []
    for line in lines[lines.index(HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        command, resource_type, name, pattern_type, operation, why = (
            c.strip() for c in line.strip("|").split("|")
        )
        rows.append(
            Acl(
                command.replace("`", ""),
                resource_type,
                name.strip("`"),
                pattern_type,
                operation,
                why,
            )
        )
    return rows


def test_the_docs_table_is_this_table() -> None:
    """The secured integration tests grant the docs' rows; `acls` prints these: one table."""
    assert docs_rows() == list(ROWS)


SETTINGS = config.load(env={"IMPORT_CLOSURE_GROUP_ID": "g"})


def names(acls: list[Acl]) -> list[tuple[str, str, str, str]]:
    return [(a.resource_type, a.name, a.pattern_type, a.operation) for a in acls]


class TestResolved:
    def test_run_in_exactly_once_with_the_settings_names(self) -> None:
        settings = replace(SETTINGS, processing_guarantee="exactly-once")
        assert names(resolved(settings, commands_for(settings, ["run"]))) == [
            ("topic", "listing-created", "literal", "Read"),
            ("group", "g", "literal", "Read"),
            ("topic", "listing-decisions", "literal", "Write"),
            ("topic", "listing-created.dlq", "literal", "Write"),
            ("transactional-id", "g-", "prefixed", "Write"),
        ]

    def test_a_configured_transactional_id_is_granted_as_it_is(self) -> None:
        settings = replace(SETTINGS, processing_guarantee="exactly-once", transactional_id="pod-0")
        acls = resolved(settings, commands_for(settings, ["run", "replay"]))
        txn = [a for a in names(acls) if a[0] == "transactional-id"]
        assert txn == [
            ("transactional-id", "pod-0", "literal", "Write"),
            ("transactional-id", "g.replay.", "prefixed", "Write"),  # replay never uses pod-0
        ]

    def test_separate_decision_topics_get_a_row_each_and_repeats_go(self) -> None:
        settings = replace(SETTINGS, approved_topic="ok", rejected_topic="no")
        acls = resolved(settings, commands_for(settings, ["run", "replay", "export"]))
        writes = [a[1] for a in names(acls) if a[3] == "Write"]
        assert writes == ["ok", "no", "listing-created.dlq"]
        assert [a[1] for a in names(acls)].count("listing-created") == 1

    def test_an_unknown_command_is_named(self) -> None:
        with pytest.raises(ValueError, match="unknown command 'runn'"):
            commands_for(SETTINGS, ["runn"])


def test_kafka_acls_lines_say_prefixed_where_the_pattern_is() -> None:
    acl = Acl("x", "transactional-id", "g-", "prefixed", "Write")
    [line] = kafka_acls_lines([acl], "User:ic", "b:9092")
    assert line == (
        "kafka-acls.sh --bootstrap-server b:9092 --command-config admin.properties --add "
        "--allow-principal User:ic --operation Write --transactional-id g- "
        "--resource-pattern-type prefixed"
    )
