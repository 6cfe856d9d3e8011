"""Client dicts: owned keys win, consumer-only keys stay out, registry conf, and the check before use."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer import config
from consumer.errors import ConfigError
from consumer.kafka import client_conf


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
        consumer = client_conf.consumer_conf(settings)
        producer = client_conf.producer_conf(settings)
        assert consumer["enable.auto.offset.store"] is False
        assert producer["acks"] == "all"
        assert producer["enable.idempotence"] is True
        assert producer["linger.ms"] == "50"

    def test_producer_and_admin_get_no_consumer_only_keys(self) -> None:
        """group.* and other consumer properties stay out of producer and admin configs."""
        settings = config.load(env={"IMPORT_CLOSURE_KAFKA_GROUP_PROTOCOL": "classic"})
        assert "group.protocol" not in client_conf.producer_conf(settings)
        assert "group.protocol" not in client_conf.admin_conf(settings)
        assert (
            client_conf.consumer_conf(settings)["partition.assignment.strategy"]
            == "cooperative-sticky"
        )

    def test_classic_protocol_with_a_six_second_session_by_default(self) -> None:
        """A dead worker is out of the group after 6 s whatever the broker's KIP-848 settings."""
        conf = client_conf.consumer_conf(config.load(env={}))
        assert conf["group.protocol"] == "classic"
        assert conf["session.timeout.ms"] == 6000
        assert conf["heartbeat.interval.ms"] == 1000
        assert conf["partition.assignment.strategy"] == "cooperative-sticky"

    def test_the_worker_is_a_static_member_named_by_its_worker_id(self) -> None:
        """A member whose session expired while its coordinator moved rejoins as itself and gets
        its partitions back at once; a replay's one-run group is not static (its close leaves)."""
        settings = config.load(env={"IMPORT_CLOSURE_WORKER_ID": "worker-0"})
        assert client_conf.consumer_conf(settings)["group.instance.id"] == "worker-0"
        assert "group.instance.id" not in client_conf.replay_consumer_conf(settings)
        own = config.load(env={"IMPORT_CLOSURE_KAFKA_GROUP_INSTANCE_ID": "pod-3"})
        assert client_conf.consumer_conf(own)["group.instance.id"] == "pod-3"

    def test_own_session_timeout_wins_over_the_classic_default(self) -> None:
        """A cluster with a higher group.min.session.timeout.ms sets its own."""
        settings = config.load(env={"IMPORT_CLOSURE_KAFKA_SESSION_TIMEOUT_MS": "10000"})
        assert client_conf.consumer_conf(settings)["session.timeout.ms"] == "10000"

    def test_kip_848_chosen_gets_no_client_session_keys(self) -> None:
        """librdkafka refuses session.timeout.ms under group.protocol=consumer: none is added."""
        settings = config.load(env={"IMPORT_CLOSURE_KAFKA_GROUP_PROTOCOL": "consumer"})
        conf = client_conf.consumer_conf(settings)
        assert not {"session.timeout.ms", "heartbeat.interval.ms"} & conf.keys()
        assert "partition.assignment.strategy" not in conf

    def test_clients_retry_a_broker_at_least_every_second(self) -> None:
        """After a broker restart no client waits librdkafka's 10 s back-off to reconnect."""
        settings = config.load(env={})
        assert client_conf.consumer_conf(settings)["reconnect.backoff.max.ms"] == 1000
        assert client_conf.producer_conf(settings)["reconnect.backoff.max.ms"] == 1000

    def test_exactly_once_producer_closes_idle_connections(self) -> None:
        """The idle limit that frees librdkafka's stuck coordinator lookup is the transactional
        producer's alone, and a user's value wins."""
        eos = {"IMPORT_CLOSURE_PROCESSING_GUARANTEE": "exactly-once"}
        assert client_conf.producer_conf(config.load(env=eos))["connections.max.idle.ms"] == 5000
        assert "connections.max.idle.ms" not in client_conf.producer_conf(config.load(env={}))
        own = {**eos, "IMPORT_CLOSURE_KAFKA_CONNECTIONS_MAX_IDLE_MS": "60000"}
        assert client_conf.producer_conf(config.load(env=own))["connections.max.idle.ms"] == "60000"

    def test_overrides_accept_underscores_and_keep_callback_names(self) -> None:
        """Tests and tools pass overrides as keywords; callbacks keep their librdkafka names."""
        settings = config.load(env={})
        callback = print
        conf = client_conf.consumer_conf(settings, auto_offset_reset="latest", error_cb=callback)
        assert conf["auto.offset.reset"] == "latest"
        assert conf["error_cb"] is callback


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
        assert client_conf.registry_conf(settings) == {
            "url": "http://sr:8081",
            "max.retries": 0,
            "retries.wait.ms": 200,
            "retries.max.wait.ms": 1000,
            "timeout": 2.5,
        }

    def test_client_retries_are_short_unless_configured(self) -> None:
        """The client's own retries wait at most 0.2 s + 0.4 s, so a returning registry is seen fast."""
        settings = config.load(env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081"})
        conf = client_conf.registry_conf(settings)
        assert (conf["max.retries"], conf["retries.wait.ms"], conf["retries.max.wait.ms"]) == (
            2,
            200,
            1000,
        )
        assert conf["timeout"] == 5

    def test_non_numeric_number_is_a_config_error(self) -> None:
        """A typo in a numeric registry setting names the setting."""
        settings = config.load(
            env={
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081",
                "IMPORT_CLOSURE_SCHEMA_REGISTRY_MAX_RETRIES": "three",
            }
        )
        with pytest.raises(ConfigError, match=r"schema_registry max\.retries: expected a number"):
            client_conf.registry_conf(settings)


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
        conf = client_conf.registry_conf(settings)
        assert conf["url"] == clean_url
        assert "@" not in conf["url"]
        assert conf.get("basic.auth.user.info") == user_info

    def test_the_client_accepts_the_result_and_sends_the_credentials(self) -> None:
        """SchemaRegistryClient takes the moved credentials as its basic auth (no extra keys)."""
        settings = config.load(
            env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://user:s3cret@sr:8081"}
        )
        with SchemaRegistryClient(client_conf.registry_conf(settings)) as client:
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
            client_conf.registry_conf(settings)
        assert "s3cret" not in str(info.value)


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
                {
                    "IMPORT_CLOSURE_KAFKA_GROUP_PROTOCOL": "consumer",
                    "IMPORT_CLOSURE_KAFKA_SESSION_TIMEOUT_MS": "10000",
                },
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
            client_conf.validate_client_conf(settings)
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
        client_conf.validate_client_conf(config.load(env=env))

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
        client_conf.validate_client_conf(settings)
        assert not marker.exists()

    def test_takes_well_under_a_second(self) -> None:
        """It runs on every start and every `config`; measured about 20 ms on 2 shared cores."""
        settings = config.load(env={"IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": "http://sr:8081"})
        started = time.monotonic()
        client_conf.validate_client_conf(settings)
        assert time.monotonic() - started < 0.5
