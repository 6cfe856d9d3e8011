"""`import-closure config`: redacted output, property validation and the generated settings help."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from consumer import config
from tests.unit.cli.invoke import ROOT, run

FIELDS = [f.name for f in dataclasses.fields(config.Settings)]


class TestConfigOutput:
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

    def test_registry_url_userinfo_and_oauth_secrets_are_redacted(self) -> None:
        """url userinfo, sasl.oauthbearer.config and the assertion key passphrase print as ***."""
        result = run(
            "config",
            env={
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "https://sr-user:s3cret-1@sr.example:8081",
                "IMPORT_CLOSURE_KAFKA_SASL_OAUTHBEARER_CONFIG": "clientSecret=s3cret-2",
                "IMPORT_CLOSURE_KAFKA_SASL_OAUTHBEARER_ASSERTION_PRIVATE_KEY_PASSPHRASE": "s3cret-3",
            },
        )
        assert result.returncode == 0, result.stderr
        assert "s3cret" not in result.stdout + result.stderr
        shown = json.loads(result.stdout)
        assert shown["schema_registry"]["url"] == "https://***@sr.example:8081"
        assert shown["kafka"]["sasl.oauthbearer.config"] == "***"
        assert shown["kafka"]["sasl.oauthbearer.assertion.private.key.passphrase"] == "***"


class TestPropertyValidation:
    @pytest.mark.parametrize(
        "command",
        [["config"], ["topics", "create"], ["produce-sample", "--count", "1"], ["run"]],
        ids=["config", "topics-create", "produce-sample", "run"],
    )
    def test_unknown_property_stops_every_kafka_command(self, command: list[str]) -> None:
        """An unknown librdkafka property is named and exits 2 before any client is used."""
        result = run(
            *command,
            env={
                "IMPORT_CLOSURE_KAFKA_FETCH_WAIT_MAX": "100",
                # nothing listens here: were a client started, the command would hang or fail later
                "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            },
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == "import-closure: kafka: unknown property 'fetch.wait.max'"
        assert result.stdout == ""


@pytest.fixture(scope="module")
def help_text() -> str:
    """`import-closure config --help`, run once for the module."""
    result = run("config", "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


class TestSettingsHelp:
    @pytest.mark.parametrize("name", FIELDS, ids=FIELDS)
    def test_every_setting_is_listed_with_variable_default_and_meaning(
        self, help_text: str, name: str
    ) -> None:
        """`config --help` has one line per Settings field: name, variable, default, meaning."""
        field = next(f for f in dataclasses.fields(config.Settings) if f.name == name)
        [line] = [line for line in help_text.splitlines() if line.split()[:1] == [name]]
        assert f"IMPORT_CLOSURE_{name.upper()}" in line
        assert line.rstrip().endswith(field.metadata["doc"])
        if field.default is not dataclasses.MISSING and field.default is not None:
            default = (
                str(field.default).lower()
                if isinstance(field.default, bool)
                else str(field.default)
            )
            assert f" {default} " in line

    @pytest.mark.parametrize("name", FIELDS, ids=FIELDS)
    def test_readme_configuration_table_names_every_setting(self, name: str) -> None:
        """README's Configuration table is written by hand; it must not miss a setting."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        table = re.search(r"## Configuration\n(.*?)\n## ", readme, re.DOTALL)
        assert table is not None
        assert f"`{name}`" in table.group(1) or f"`{name}:`" in table.group(1)
