"""Settings: defaults < file < environment < options; one clear error for a bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer import config
from consumer.errors import ConfigError
from consumer.kafka import client_conf


class TestLoad:
    def test_defaults_work_against_the_local_broker(self) -> None:
        """With nothing set, the worker talks to the local Kafka with the documented topic names."""
        settings = config.load(env={})
        assert settings.kafka["bootstrap.servers"] == "127.0.0.1:9092"
        assert (settings.input_topic, settings.approved_topic, settings.dlq_topic) == (
            "listing-created",
            "listing-decisions",
            "listing-created.dlq",
        )
        assert settings.group_id == "import-closure"
        assert settings.shutdown_timeout < 30

    def test_environment_beats_file(self, tmp_path: Path) -> None:
        """A value in IMPORT_CLOSURE_* wins over the same setting in the YAML file."""
        path = tmp_path / "c.yaml"
        path.write_text("group_id: from-file\nhttp_port: 9000\nkafka:\n  linger.ms: 5\n")
        settings = config.load(env={"IMPORT_CLOSURE_GROUP_ID": "from-env"}, config_file=path)
        assert settings.group_id == "from-env"
        assert settings.http_port == 9000
        assert settings.kafka["linger.ms"] == "5"

    def test_config_file_named_by_environment(self, tmp_path: Path) -> None:
        """IMPORT_CLOSURE_CONFIG names the file when no option does."""
        path = tmp_path / "c.yaml"
        path.write_text("dlq_topic: dead\n")
        assert config.load(env={"IMPORT_CLOSURE_CONFIG": str(path)}).dlq_topic == "dead"

    def test_any_librdkafka_property_passes_through(self) -> None:
        """IMPORT_CLOSURE_KAFKA_<NAME> becomes <name> with dots, e.g. SASL settings."""
        settings = config.load(
            env={
                "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": "b1:9093",
                "IMPORT_CLOSURE_KAFKA_SASL_MECHANISM": "PLAIN",
                "IMPORT_CLOSURE_KAFKA_SASL_PASSWORD": "hunter2",
            }
        )
        conf = client_conf.consumer_conf(settings)
        assert conf["bootstrap.servers"] == "b1:9093"
        assert conf["sasl.mechanism"] == "PLAIN"
        assert conf["sasl.password"] == "hunter2"

    def test_options_beat_environment(self) -> None:
        """A CLI option (passed as an override) wins over the environment."""
        settings = config.load(env={"IMPORT_CLOSURE_LOG_LEVEL": "DEBUG"}, log_level="warning")
        assert settings.log_level == "WARNING"

    @pytest.mark.parametrize(
        ("env", "match"),
        [
            (
                {"IMPORT_CLOSURE_HTTP_PORT": "eighty"},
                "IMPORT_CLOSURE_HTTP_PORT: invalid value 'eighty'",
            ),
            ({"IMPORT_CLOSURE_BATCH_SIZE": "0"}, "invalid value '0' for batch_size"),
            (
                {"IMPORT_CLOSURE_LOG_LEVEL": "LOUD"},
                r"invalid value 'LOUD' for log_level \(expected DEBUG, INFO, WARNING, ERROR, CRITICAL\)",
            ),
            ({"IMPORT_CLOSURE_GROUP_ID": " "}, r"for group_id \(expected a non-empty string\)"),
            ({"IMPORT_CLOSURE_GRUOP_ID": "x"}, "unknown setting IMPORT_CLOSURE_GRUOP_ID"),
            ({"IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": ""}, "bootstrap.servers is empty"),
            ({"IMPORT_CLOSURE_CONFIG": "/nonexistent/c.yaml"}, "cannot read"),
        ],
        ids=[
            "port-not-a-number",
            "zero-batch",
            "bad-level",
            "blank-string",
            "typo",
            "empty-bootstrap",
            "missing-file",
        ],
    )
    def test_bad_setting_gives_one_clear_message(self, env: dict[str, str], match: str) -> None:
        """Each bad setting names itself and what is wrong with it."""
        with pytest.raises(ConfigError, match=match):
            config.load(env=env)

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("- a\n- b\n", "top level must be a mapping"),
            ("group_id: [\n", "not valid YAML"),
            ("topics: {}\n", "unknown setting 'topics'"),
            ("kafka: 3\n", "kafka: must be a mapping"),
        ],
        ids=["list", "syntax", "unknown-key", "kafka-not-mapping"],
    )
    def test_bad_config_file_names_the_file(self, tmp_path: Path, text: str, match: str) -> None:
        """Errors in the YAML file say which file and what is wrong."""
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=match):
            config.load(env={}, config_file=path)


class TestCoercionMessages:
    @pytest.mark.parametrize(
        ("variable", "raw", "expected"),
        [
            ("HTTP_PORT", "99999", "a port 0\N{EN DASH}65535"),
            ("HTTP_PORT", "-1", "a port 0\N{EN DASH}65535"),
            ("HTTP_PORT", "http", "a port 0\N{EN DASH}65535"),
            ("BATCH_SIZE", "0", "a positive whole number"),
            ("BATCH_SIZE", "1.5", "a positive whole number"),
            ("SHUTDOWN_TIMEOUT", "soon", "a positive number of seconds"),
            ("POLL_TIMEOUT", "-0.1", "a positive number of seconds"),
            ("STALL_TIMEOUT", "nan", "a positive number of seconds"),
            ("STALL_TIMEOUT", "inf", "a positive number of seconds"),
            ("CREATE_TOPICS", "maybe", "true or false"),
            ("LOG_LIBRARIES", "2", "true or false"),
        ],
        ids=[
            "port-too-high",
            "port-negative",
            "port-not-a-number",
            "int-zero",
            "int-fraction",
            "float-word",
            "float-negative",
            "float-nan",
            "float-inf",
            "bool-word",
            "bool-number",
        ],
    )
    def test_message_says_what_was_expected(self, variable: str, raw: str, expected: str) -> None:
        """The message names the variable, the value and the kind of value that would fit."""
        env = {f"IMPORT_CLOSURE_{variable}": raw}
        name = variable.lower()
        message = f"environment IMPORT_CLOSURE_{variable}: invalid value {raw!r} for {name} (expected {expected})"
        with pytest.raises(ConfigError) as info:
            config.load(env=env)
        assert str(info.value) == message

    @pytest.mark.parametrize(
        ("variable", "raw", "name", "value"),
        [
            ("HTTP_PORT", "0", "http_port", 0),
            ("HTTP_PORT", "65535", "http_port", 65535),
            ("CREATE_TOPICS", "yes", "create_topics", True),
            ("CREATE_TOPICS", "OFF", "create_topics", False),
            ("POLL_TIMEOUT", "0.05", "poll_timeout", 0.05),
        ],
        ids=["port-zero-is-any-free-port", "port-max", "bool-yes", "bool-off", "float"],
    )
    def test_edge_values_that_fit(self, variable: str, raw: str, name: str, value: object) -> None:
        """Port 0 (pick a free port) and the spelled-out booleans are accepted."""
        settings = config.load(env={f"IMPORT_CLOSURE_{variable}": raw})
        assert getattr(settings, name) == value


class TestTestVariables:
    def test_suite_variables_are_not_settings(self) -> None:
        """IMPORT_CLOSURE_TEST_* belong to the test suite; a worker started by it must accept them."""
        settings = config.load(env={"IMPORT_CLOSURE_TEST_BOOTSTRAP": "x:1"})
        assert settings.kafka["bootstrap.servers"] == "127.0.0.1:9092"


class TestReplaySettings:
    def test_a_replay_has_its_own_group_and_transactional_id(self) -> None:
        """A configured transactional_id is the live worker's: a replay using it would fence it."""
        live = config.load(
            env={"IMPORT_CLOSURE_GROUP_ID": "g", "IMPORT_CLOSURE_TRANSACTIONAL_ID": "g-pod-0"}
        )
        replay = config.replay_settings(live, "r1")
        assert replay.group_id == "g.replay.r1"
        assert client_conf.transactional_id(live) == "g-pod-0"
        assert client_conf.transactional_id(replay) == f"g.replay.r1-{live.worker_id}"
