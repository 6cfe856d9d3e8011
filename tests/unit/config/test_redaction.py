"""Which properties are secret, and that settings print with secrets and url userinfo as ***."""

from __future__ import annotations

import dataclasses

import pytest

from consumer import config
from consumer.config import redaction


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
        assert redaction.is_secret(key) is secret
        assert redaction.is_secret(key.upper()) is secret

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
        assert redaction.redact("some.property", value) == shown


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
