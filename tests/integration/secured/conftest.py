"""A secured broker (deploy/kafka-local, KAFKA_LOCAL_SECURITY=sasl_ssl) started once per session,
and per test a fresh SCRAM user given exactly the ACL rows docs/operations.md lists.

The ACL table in docs/operations.md is the one source: `acl_rows()` parses it, so the docs and
these tests cannot drift apart.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

# The admin package re-exports these from private modules without __all__ entries mypy sees.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from consumer import config
from consumer.config.settings import Settings
from consumer.kafka.clients import create_topics
from tests.integration.conftest import KAFKA_LOCAL, ROOT, TEST_PORT
from tests.waiting import wait_until

#: Its own port (and +1 for the controller), beside the plain test broker's (+0/+1), the recovery
#: tests' default-settings broker (+4/+5) and the cluster (+10 to +15).
SECURE_PORT = int(os.environ.get("IMPORT_CLOSURE_TEST_SECURE_KAFKA_PORT", str(TEST_PORT + 2)))
OPERATIONS_MD = ROOT / "docs" / "operations.md"


@dataclass(frozen=True)
class SecuredBroker:
    bootstrap: str
    data: Path

    @property
    def ca(self) -> Path:
        return self.data / "secure" / "ca.crt"

    @property
    def admin_password(self) -> str:
        return (self.data / "secure" / "admin.password").read_text()

    def client_env(self, user: str, password: str, ca: Path | None = None) -> dict[str, str]:
        """IMPORT_CLOSURE_KAFKA_* for a subprocess that connects as `user`."""
        return {
            "IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "IMPORT_CLOSURE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "IMPORT_CLOSURE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "IMPORT_CLOSURE_KAFKA_SASL_USERNAME": user,
            "IMPORT_CLOSURE_KAFKA_SASL_PASSWORD": password,
            "IMPORT_CLOSURE_KAFKA_SSL_CA_LOCATION": str(ca or self.ca),
        }

    def admin_settings(self) -> Settings:
        return config.load(env=self.client_env("admin", self.admin_password))

    def admin(self) -> AdminClient:
        return AdminClient(dict(self.admin_settings().kafka))


@pytest.fixture(scope="session")
def secured_broker() -> Iterator[SecuredBroker]:
    data = ROOT / ".run" / f"test-kafka-secure-{SECURE_PORT}"
    env = {
        **os.environ,
        "KAFKA_LOCAL_SECURITY": "sasl_ssl",
        "KAFKA_LOCAL_PORT": str(SECURE_PORT),
        "KAFKA_LOCAL_CONTROLLER_PORT": str(SECURE_PORT + 1),
        "KAFKA_LOCAL_DATA": str(data),
    }

    def verb(name: str) -> None:
        result = subprocess.run(
            [str(KAFKA_LOCAL), name], env=env, capture_output=True, text=True, timeout=180
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka-local {name} failed:\n{result.stdout}\n{result.stderr}")

    verb("reset")
    verb("start")
    try:
        yield SecuredBroker(f"127.0.0.1:{SECURE_PORT}", data)
    finally:
        verb("stop")


# ------------------------------------------------------------------------------- the ACL table


@dataclass(frozen=True)
class AclRow:
    """One row of the docs' ACL table, names still with their <placeholders>."""

    command: str
    resource_type: str
    name: str
    pattern_type: str
    operation: str

    @property
    def label(self) -> str:
        return f"{self.command}: {self.operation} on {self.resource_type} {self.name}"


_HEADER = "| command | resource type | name | pattern type | operation | why |"


def acl_rows() -> list[AclRow]:
    """Every row of the ACL table in docs/operations.md."""
    lines = OPERATIONS_MD.read_text().splitlines()
    start = lines.index(_HEADER) + 2  # the header and its --- line
    rows: list[AclRow] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        command, resource_type, name, pattern_type, operation = cells[:5]
        rows.append(
            AclRow(
                command.replace("`", ""), resource_type, name.strip("`"), pattern_type, operation
            )
        )
    return rows


def rows_for(command: str) -> list[AclRow]:
    found = [r for r in acl_rows() if r.command == command]
    assert found, f"no ACL rows for {command!r} in {OPERATIONS_MD}"
    return found


_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional-id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
_PATTERN = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}


@dataclass(frozen=True)
class Secured:
    """One test's topics, group and user on the secured broker."""

    broker: SecuredBroker
    settings: Settings  # as admin
    user: str
    password: str
    topic: str  # what <topic> (export --topic, diff --topic) stands for
    workdir: Path

    def resolve(self, name: str) -> str:
        s = self.settings
        values = {
            "input_topic": s.input_topic,
            "decision_topic": s.approved_topic,
            "dlq_topic": s.dlq_topic,
            "group_id": s.group_id,
            "topic": self.topic,
        }
        return re.sub(r"<(\w+)>", lambda m: values[m[1]], name)

    def binding(self, row: AclRow) -> AclBinding:
        return AclBinding(
            _RESOURCE[row.resource_type],
            self.resolve(row.name),
            _PATTERN[row.pattern_type],
            f"User:{self.user}",
            "*",
            getattr(AclOperation, row.operation.upper()),
            AclPermissionType.ALLOW,
        )

    def grant(self, rows: Sequence[AclRow]) -> None:
        """Create the rows' ACLs and wait until the broker's authorizer lists them all."""
        if not rows:
            return
        admin = self.broker.admin()
        for future in admin.create_acls([self.binding(r) for r in rows]).values():
            future.result()
        # None matches any name and any host; the stubs type them as str.
        mine = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]
            ResourcePatternType.ANY,
            f"User:{self.user}",
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        wanted = {str(self.binding(r)) for r in rows}

        def listed() -> bool:
            found = admin.describe_acls(mine).result()
            return wanted <= {str(b) for b in found}

        wait_until(listed, 20, f"ACLs of {self.user} listed")

    def create_topics(self) -> None:
        """The test's topics, created as admin (input with 3 partitions)."""
        create_topics(self.settings)

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess as this test's user, on this test's topics."""
        s = self.settings
        return {
            **self.broker.client_env(self.user, self.password),
            "IMPORT_CLOSURE_GROUP_ID": s.group_id,
            "IMPORT_CLOSURE_INPUT_TOPIC": s.input_topic,
            "IMPORT_CLOSURE_APPROVED_TOPIC": s.approved_topic,
            "IMPORT_CLOSURE_REJECTED_TOPIC": s.rejected_topic,
            "IMPORT_CLOSURE_DLQ_TOPIC": s.dlq_topic,
            "IMPORT_CLOSURE_HTTP_HOST": "127.0.0.1",
            "IMPORT_CLOSURE_HTTP_PORT": "0",
        }

    def cli(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """`import-closure ARGS` as this user, with nothing else of the caller's IMPORT_CLOSURE_*."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPORT_CLOSURE_")}
        return subprocess.run(
            [sys.executable, "-m", "consumer", *args],
            env={**clean, **self.env, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def secured(secured_broker: SecuredBroker, tmp_path: Path) -> Secured:
    """Fresh names of topics (not created: `create_topics`) and group, a SCRAM user without ACLs."""
    tag = uuid.uuid4().hex[:10]
    settings = replace(
        secured_broker.admin_settings(),
        group_id=f"ic-sec-{tag}",
        input_topic=f"listing-created-{tag}",
        approved_topic=f"listing-decisions-{tag}",
        rejected_topic=f"listing-decisions-{tag}",
        dlq_topic=f"listing-created-{tag}.dlq",
        topic_partitions=3,
    )
    user, password = f"ic-{tag}", secrets.token_hex(12)
    admin = secured_broker.admin()
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password.encode()
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result()
    return Secured(secured_broker, settings, user, password, settings.input_topic, tmp_path)
