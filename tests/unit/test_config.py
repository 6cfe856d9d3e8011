"""Settings: defaults < file < environment < options; one clear error for a bad setting."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer import config
from consumer.errors import ConfigError


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
        conf = config.consumer_conf(settings)
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


class TestClientConfigs:
    def test_owned_keys_win_over_user_extras(self) -> None:
        """The guarantees (manual offset store, idempotence, acks=all) cannot be switched off by config."""
        settings = config.load(
            env={
                "IMPORT_CLOSURE_KAFKA_ENABLE_AUTO_OFFSET_STORE": "true",
                "IMPORT_CLOSURE_KAFKA_ACKS": "1",
                "IMPORT_CLOSURE_KAFKA_LINGER_MS": "50",
            }
        )
        consumer = config.consumer_conf(settings)
        producer = config.producer_conf(settings)
        assert consumer["enable.auto.offset.store"] is False
        assert producer["acks"] == "all"
        assert producer["enable.idempotence"] is True
        assert producer["linger.ms"] == "50"

    def test_producer_and_admin_get_no_consumer_only_keys(self) -> None:
        """group.* and other consumer properties stay out of producer and admin configs."""
        settings = config.load(env={"IMPORT_CLOSURE_KAFKA_GROUP_PROTOCOL": "classic"})
        assert "group.protocol" not in config.producer_conf(settings)
        assert "group.protocol" not in config.admin_conf(settings)
        assert (
            config.consumer_conf(settings)["partition.assignment.strategy"] == "cooperative-sticky"
        )

    def test_overrides_accept_underscores_and_keep_callback_names(self) -> None:
        """Tests and tools pass overrides as keywords; callbacks keep their librdkafka names."""
        settings = config.load(env={})
        callback = print
        conf = config.consumer_conf(settings, auto_offset_reset="latest", error_cb=callback)
        assert conf["auto.offset.reset"] == "latest"
        assert conf["error_cb"] is callback


class TestRedaction:
    def test_secrets_never_printed(self) -> None:
        """Passwords, JAAS configs and registry credentials print as ***."""
        settings = config.load(
            env={
                "IMPORT_CLOSURE_KAFKA_SASL_PASSWORD": "hunter2",
                "IMPORT_CLOSURE_KAFKA_SASL_USERNAME": "svc",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "u:p",
            }
        )
        shown = settings.redacted()
        assert shown["kafka"]["sasl.password"] == "***"
        assert shown["kafka"]["sasl.username"] == "svc"
        assert shown["schema_registry"]["basic.auth.user.info"] == "***"
        assert "hunter2" not in repr(shown)


class TestTestVariables:
    def test_suite_variables_are_not_settings(self) -> None:
        """IMPORT_CLOSURE_TEST_* belong to the test suite; a worker started by it must accept them."""
        settings = config.load(env={"IMPORT_CLOSURE_TEST_BOOTSTRAP": "x:1"})
        assert settings.kafka["bootstrap.servers"] == "127.0.0.1:9092"


class TestRegistryConf:
    def test_numbers_from_the_environment_become_numbers(self) -> None:
        """SchemaRegistryClient rejects '0' for max.retries; the settings layer converts it."""
        settings = config.load(
            env={
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_MAX_RETRIES": "0",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_TIMEOUT": "2.5",
            }
        )
        assert config.registry_conf(settings) == {
            "url": "http://sr:8081",
            "max.retries": 0,
            "timeout": 2.5,
        }

    def test_non_numeric_number_is_a_config_error(self) -> None:
        """A typo in a numeric registry setting names the setting."""
        settings = config.load(
            env={
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_MAX_RETRIES": "three",
            }
        )
        with pytest.raises(ConfigError, match=r"schema_registry max\.retries: expected a number"):
            config.registry_conf(settings)


class TestRegistryUrlCredentials:
    @pytest.mark.parametrize(
        ("url", "clean_url", "user_info"),
        [
            ("http://user:s3cret@sr:8081", "http://sr:8081", "user:s3cret"),
            ("https://svc%40corp:p%3As%2Fw@sr:8081/", "https://sr:8081/", "svc@corp:p:s/w"),
            (
                "http://u:s3cret@sr1:8081, http://u:s3cret@sr2:8081",
                "http://sr1:8081,http://sr2:8081",
                "u:s3cret",
            ),
            ("http://apikey@sr:8081", "http://sr:8081", "apikey:"),
            ("http://sr:8081", "http://sr:8081", None),
        ],
        ids=["user-password", "percent-encoded", "url-list", "user-only", "no-userinfo"],
    )
    def test_userinfo_moves_out_of_the_url(
        self, url: str, clean_url: str, user_info: str | None
    ) -> None:
        """Credentials in the url become basic.auth.user.info, decoded; the url keeps only the host."""
        settings = config.load(env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": url})
        conf = config.registry_conf(settings)
        assert conf["url"] == clean_url
        assert "@" not in conf["url"]
        assert conf.get("basic.auth.user.info") == user_info

    def test_the_client_accepts_the_result_and_sends_the_credentials(self) -> None:
        """SchemaRegistryClient takes the moved credentials as its basic auth (no extra keys)."""
        settings = config.load(
            env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://user:s3cret@sr:8081"}
        )
        with SchemaRegistryClient(config.registry_conf(settings)) as client:
            assert client._rest_client.auth == ("user", "s3cret")
            assert client._rest_client.base_urls == ["http://sr:8081"]

    @pytest.mark.parametrize(
        ("env", "match"),
        [
            (
                {
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://u:s3cret@sr:8081",
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "u:s3cret",
                },
                "credentials both in url and basic.auth.user.info",
            ),
            (
                {"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://a:s3cret@sr1,http://b:s3cret@sr2"},
                "different credentials",
            ),
        ],
        ids=["url-and-user-info", "different-per-url"],
    )
    def test_conflicting_credentials_are_refused_without_echoing_them(
        self, env: dict[str, str], match: str
    ) -> None:
        """Two sources of credentials is a ConfigError whose message holds no secret."""
        settings = config.load(env=env)
        with pytest.raises(ConfigError, match=match) as info:
            config.registry_conf(settings)
        assert "s3cret" not in str(info.value)


#: librdkafka properties flagged _RK_SENSITIVE in src/rdkafka_conf.c (confluentinc/librdkafka
#: 4c3b017, checked against CONFIGURATION.md), plus the aliases and neighbours that hold secrets.
_LIBRDKAFKA_SECRETS = [
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.credentials.client.secret",  # alias of the above
    "sasl.oauthbearer.config",  # may hold clientSecret=...
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "sasl.oauthbearer.assertion.private.key.file",  # a path, but librdkafka flags it: we follow
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
    "ssl_key",  # the in-memory key, set through the C API
    "sasl.jaas.config",  # Java's name; people paste it from Java client configs
]
_REGISTRY_SECRETS = [
    "basic.auth.user.info",
    "bearer.auth.token",
    "bearer.auth.client.secret",
    "bearer.auth.custom.provider.config",
    "ssl.key.password",
]
#: Not secret, shown in clear: identities, paths, public certificates, endpoints.
_NOT_SECRETS = [
    "bootstrap.servers",
    "sasl.username",  # librdkafka flags it; an identity (API key id), not a credential
    "sasl.mechanism",
    "sasl.kerberos.keytab",  # a path; the file is the secret and stays on disk
    "sasl.kerberos.principal",
    "sasl.kerberos.kinit.cmd",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.token.endpoint.url",  # a url: only its userinfo is redacted
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.scope",
    "ssl.key.location",  # a path (librdkafka flags it; the path itself is no secret)
    "ssl.keystore.location",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.ca.pem",  # public CA certificates (librdkafka flags it)
    "ssl.ca.location",
    "bearer.auth.issuer.endpoint.url",
    "bearer.auth.logical.cluster",
    "url",
]


class TestSecretRule:
    @pytest.mark.parametrize(
        ("key", "secret"),
        [(k, True) for k in _LIBRDKAFKA_SECRETS + _REGISTRY_SECRETS]
        + [(k, False) for k in _NOT_SECRETS],
        ids=[f"secret:{k}" for k in _LIBRDKAFKA_SECRETS]
        + [f"registry-secret:{k}" for k in _REGISTRY_SECRETS]
        + [f"shown:{k}" for k in _NOT_SECRETS],
    )
    def test_which_properties_are_secret(self, key: str, secret: bool) -> None:
        """Every property that carries a credential is redacted; identities and paths are not."""
        assert config.is_secret(key) is secret
        assert config.is_secret(key.upper()) is secret

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            ("http://user:s3cret@sr:8081", "http://***@sr:8081"),
            (
                "https://u:s3cret@sr1:8081,https://u:s3cret@sr2/x",
                "https://***@sr1:8081,https://***@sr2/x",
            ),
            ("http://u:p@ss:s3cret@sr:8081/", "http://***@sr:8081/"),
            ("http://sr:8081/path?to=a@b", "http://sr:8081/path?to=a@b"),
            ("broker-1:9092,broker-2:9092", "broker-1:9092,broker-2:9092"),
        ],
        ids=["userinfo", "url-list", "at-sign-in-password", "at-in-query", "no-url"],
    )
    def test_url_userinfo_is_redacted_in_any_value(self, value: str, shown: str) -> None:
        """Userinfo is replaced by ***, the host stays, whatever the property."""
        assert config.redact("some.property", value) == shown


class TestRedactedSettings:
    def _settings(self) -> config.Settings:
        env = {
            "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "https://sr-user:s3cret-url@sr:8081",
            "IMPORT_CLOSURE_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN": "s3cret-token",
            "IMPORT_CLOSURE_KAFKA_SASL_USERNAME": "svc",
        }
        settings = config.load(env=env)
        secrets = {key: f"s3cret-{number}" for number, key in enumerate(_LIBRDKAFKA_SECRETS)}
        # ssl_key has no environment spelling (its underscore would become a dot).
        return dataclasses.replace(settings, kafka={**settings.kafka, **secrets})

    def test_config_output_holds_no_secret(self) -> None:
        """`redacted()` (what `config` prints) shows no secret value and no url userinfo."""
        shown = self._settings().redacted()
        assert "s3cret" not in repr(shown)
        assert shown["schema_registry"]["url"] == "https://***@sr:8081"
        assert shown["kafka"]["sasl.username"] == "svc"
        assert shown["kafka"]["sasl.oauthbearer.config"] == "***"

    @pytest.mark.parametrize("render", [repr, str], ids=["repr", "str"])
    def test_repr_is_the_redacted_form(self, render: object) -> None:
        """A Settings in a log line, traceback or f-string prints no secret."""
        text = render(self._settings())  # type: ignore[operator]
        assert "s3cret" not in text
        assert text.startswith("Settings(")
        assert "sasl.username" in text


class TestValidateClientConf:
    @pytest.mark.parametrize(
        ("env", "message"),
        [
            (
                {"IMPORT_CLOSURE_KAFKA_FETCH_WAIT_MAX": "100"},
                "kafka: unknown property 'fetch.wait.max'",
            ),
            (
                {"IMPORT_CLOSURE_KAFKA_LINGER_MS": "soon"},
                'kafka (consumer): Invalid value for configuration property "queue.buffering.max.ms"',
            ),
            (
                {"IMPORT_CLOSURE_KAFKA_FETCH_MIN_BYTES": "lots"},
                'kafka (consumer): Invalid value for configuration property "fetch.min.bytes"',
            ),
            (
                {"IMPORT_CLOSURE_KAFKA_SESSION_TIMEOUT_MS": "10000"},
                "kafka (consumer): `session.timeout.ms` is not supported for "
                "`group.protocol=consumer` or share consumer. It is defined broker side",
            ),
            (
                {"IMPORT_CLOSURE_KAFKA_SECURITY_PROTOCOL": "tls"},
                "kafka: invalid value 'tls' for security.protocol (expected plaintext, ssl, "
                "sasl_plaintext, sasl_ssl)",
            ),
            (
                {
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081",
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_BASIC_AUTH_CREDENTIALS_SOURCE": "USER_INFO",
                },
                "schema_registry: unknown property 'basic.auth.credentials.source'",
            ),
            (
                {
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081",
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "no-colon",
                },
                "schema_registry: basic.auth.user.info must be in the form of {username}:{password}",
            ),
            (
                {"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "sr.example:8081"},
                "schema_registry: Invalid url sr.example:8081",
            ),
            (
                {
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "https://sr:8081",
                    "IMPORT_CLOSURE_SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": "/nonexistent.pem",
                },
                "schema_registry: cannot load TLS files: No such file or directory",
            ),
        ],
        ids=[
            "unknown-kafka-property",
            "bad-number",
            "consumer-only-property",
            "classic-only-under-kip-848",
            "security-protocol",
            "unknown-registry-property",
            "bad-user-info",
            "registry-url-without-scheme",
            "missing-tls-file",
        ],
    )
    def test_bad_property_is_named_before_any_client_runs(
        self, env: dict[str, str], message: str
    ) -> None:
        """An unknown or invalid client property stops start-up with its name, no broker needed."""
        settings = config.load(env=env)
        with pytest.raises(ConfigError) as info:
            config.validate_client_conf(settings)
        assert str(info.value) == message

    @pytest.mark.parametrize(
        "env",
        [
            {},
            {
                "IMPORT_CLOSURE_KAFKA_GROUP_PROTOCOL": "classic",
                "IMPORT_CLOSURE_KAFKA_SESSION_TIMEOUT_MS": "10000",
            },
            {
                "IMPORT_CLOSURE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "IMPORT_CLOSURE_KAFKA_SASL_MECHANISM": "PLAIN",
                "IMPORT_CLOSURE_KAFKA_SASL_USERNAME": "svc",
                "IMPORT_CLOSURE_KAFKA_SASL_PASSWORD": "s3cret",
                "IMPORT_CLOSURE_KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem",
            },
            {
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://u:p@sr1:8081,http://u:p@sr2:8081",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_MAX_RETRIES": "2",
            },
        ],
        ids=["defaults", "classic-protocol", "sasl-ssl-not-connected", "registry-url-list"],
    )
    def test_valid_configs_pass(self, env: dict[str, str]) -> None:
        """A valid config passes; TLS and SASL are not started, so a CA path is not opened."""
        config.validate_client_conf(config.load(env=env))

    def test_no_sasl_work_runs_while_checking(self, tmp_path: Path) -> None:
        """GSSAPI's kinit command (run when a SASL client starts) does not run during the check."""
        marker = tmp_path / "kinit-ran"
        settings = config.load(
            env={
                "IMPORT_CLOSURE_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
                "IMPORT_CLOSURE_KAFKA_SASL_MECHANISM": "GSSAPI",
                "IMPORT_CLOSURE_KAFKA_SASL_KERBEROS_KINIT_CMD": f"touch {marker}",
            }
        )
        config.validate_client_conf(settings)
        assert not marker.exists()

    def test_takes_well_under_a_second(self) -> None:
        """It runs on every start and every `config`; measured about 20 ms on 2 shared cores."""
        settings = config.load(env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081"})
        started = time.monotonic()
        config.validate_client_conf(settings)
        assert time.monotonic() - started < 0.5
