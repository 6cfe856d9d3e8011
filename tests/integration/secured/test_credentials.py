"""A wrong password or an untrusted CA on the secured broker: a bounded run never looks like
success (exit 1, the cause in its first and last lines) and no password reaches any output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.secured.conftest import Secured, rows_for

pytestmark = pytest.mark.integration


def first_problem(stderr: str) -> str:
    """The first log line above info: what an operator reading the log meets first."""
    for line in stderr.splitlines():
        if line.startswith("{") and json.loads(line)["level"] != "info":
            return line
    raise AssertionError(f"no warning or error line in:\n{stderr}")


def other_ca(tmp_path: Path) -> Path:
    """A CA the broker's certificate was not signed by."""
    key, cert = tmp_path / "other-ca.key", tmp_path / "other-ca.crt"
    subject = "/CN=not the kafka-local CA"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj"]
    subprocess.run([*argv, subject, "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert


def run_until_idle(secured: Secured, **env: str) -> subprocess.CompletedProcess[str]:
    secured.create_topics()
    secured.grant(rows_for("run (at-least-once)"))
    return secured.cli("run", "--until-idle", "3", timeout=90, **env)


def test_a_wrong_password_ends_a_bounded_run_with_exit_1_naming_authentication(
    secured: Secured,
) -> None:
    wrong = secured.password + "-wrong"
    result = run_until_idle(secured, IMPORT_CLOSURE_KAFKA_SASL_PASSWORD=wrong)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "authentication" in first_problem(result.stderr).lower()
    last = result.stderr.strip().splitlines()[-1]
    group = secured.settings.group_id
    assert last.startswith(f"import-closure: stopped without ever joining group {group} at ")
    assert "authentication failed: " in last
    assert "Traceback" not in result.stderr
    for secret in (wrong, secured.password, secured.broker.admin_password):
        assert secret not in result.stdout + result.stderr


def test_an_untrusted_ca_ends_a_bounded_run_with_exit_1_naming_tls(
    secured: Secured, tmp_path: Path
) -> None:
    ca = other_ca(tmp_path)
    result = run_until_idle(secured, IMPORT_CLOSURE_KAFKA_SSL_CA_LOCATION=str(ca))
    assert result.returncode == 1, result.stderr[-3000:]
    first = first_problem(result.stderr)
    assert "SSL handshake failed" in first
    assert "certificate verify failed" in first
    last = result.stderr.strip().splitlines()[-1]
    group = secured.settings.group_id
    assert last.startswith(f"import-closure: stopped without ever joining group {group} at ")
    assert "TLS handshake with the broker failed" in last
    assert "Traceback" not in result.stderr
    assert secured.password not in result.stdout + result.stderr


def test_config_prints_the_secured_settings_without_the_password(secured: Secured) -> None:
    result = secured.cli("config")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["kafka"]
    assert shown["sasl.username"] == secured.user
    assert shown["sasl.password"] == "***"
    assert secured.password not in result.stdout + result.stderr
