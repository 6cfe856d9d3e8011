"""`import-closure config`: redacted output, property validation and the generated settings help."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_cli import run


class TestConfigOutput:
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
