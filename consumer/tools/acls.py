"""`import-closure acls`: the ACLs each command needs, and the kafka-acls commands that grant
them for the current settings (group, topics, transactional id).

ROWS is the table of docs/operations.md ("Least privilege"); a unit test keeps the two equal, and
the secured integration tests grant exactly the docs' rows.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from consumer.config.settings import Settings


@dataclass(frozen=True, slots=True)
class Acl:
    """One row: names may hold <placeholders> for settings (<group_id>, <input_topic>, ...)."""

    command: str
    resource_type: str  # topic, group, transactional-id
    name: str
    pattern_type: str  # literal, prefixed
    operation: str  # Read, Write, Create
    why: str = ""


def _rows(command: str, *rows: tuple[str, str, str, str, str]) -> list[Acl]:
    return [Acl(command, *row) for row in rows]


_READ_INPUT = ("topic", "<input_topic>", "literal", "Read", "consume listings")
_WRITE_DECISIONS = (
    "topic",
    "<decision_topic>",
    "literal",
    "Write",
    "decisions (idempotent producer: Write on the topic is enough since Kafka 2.8, no IdempotentWrite)",
)
_WRITE_DLQ = ("topic", "<dlq_topic>", "literal", "Write", "dead letters")
_REPLAY_INPUT = ("topic", "<input_topic>", "literal", "Read", "re-read listings")

ROWS: tuple[Acl, ...] = (
    *_rows(
        "run (at-least-once)",
        _READ_INPUT,
        ("group", "<group_id>", "literal", "Read", "join the group, commit offsets"),
        _WRITE_DECISIONS,
        _WRITE_DLQ,
    ),
    *_rows(
        "run (exactly-once)",
        _READ_INPUT,
        (
            "group",
            "<group_id>",
            "literal",
            "Read",
            "join the group; offsets are committed inside the transaction (TxnOffsetCommit)",
        ),
        ("topic", "<decision_topic>", "literal", "Write", "decisions"),
        _WRITE_DLQ,
        (
            "transactional-id",
            "<group_id>-",
            "prefixed",
            "Write",
            "the transactional id is `<group_id>-<worker_id>`, one per replica: a prefix covers them all",
        ),
    ),
    *_rows(
        "replay (at-least-once)",
        _REPLAY_INPUT,
        (
            "group",
            "<group_id>.replay.",
            "prefixed",
            "Read",
            "every run has its own group `<group_id>.replay.<RUN>`",
        ),
        (
            "topic",
            "<decision_topic>",
            "literal",
            "Write",
            "re-published decisions (undecodable records are counted, not dead-lettered again: "
            "no Write on `<dlq_topic>`)",
        ),
    ),
    *_rows(
        "replay (exactly-once)",
        _REPLAY_INPUT,
        (
            "group",
            "<group_id>.replay.",
            "prefixed",
            "Read",
            "the run's group, offsets committed in the transaction",
        ),
        ("topic", "<decision_topic>", "literal", "Write", "re-published decisions"),
        (
            "transactional-id",
            "<group_id>.replay.",
            "prefixed",
            "Write",
            "its transactional id is `<group_id>.replay.<RUN>-<worker_id>`",
        ),
    ),
    *_rows(
        "replay --dry-run",
        (
            "topic",
            "<input_topic>",
            "literal",
            "Read",
            "reads the range; publishes and commits nothing, uses no group",
        ),
    ),
    *_rows(
        "export",
        ("topic", "<topic>", "literal", "Read", "reads the range with `assign()`; no group"),
    ),
    *_rows("diff --topic", ("topic", "<topic>", "literal", "Read", "as `export`")),
    *_rows(
        "topics create",
        ("topic", "<input_topic>", "literal", "Create", "creates it"),
        ("topic", "<decision_topic>", "literal", "Create", "as above"),
        ("topic", "<dlq_topic>", "literal", "Create", "as above"),
    ),
    *_rows(
        "produce-sample",
        ("topic", "<input_topic>", "literal", "Write", "test events (its `--topic T`: Write on T)"),
    ),
)

#: What `acls` grants by default: the service's commands in the configured guarantee.
SERVICE_COMMANDS = ("run", "replay", "replay --dry-run", "export", "diff --topic")


def commands_for(settings: Settings, names: Iterable[str]) -> list[str]:
    """Table labels for command names; `run` and `replay` in the configured guarantee."""
    labels = {r.command for r in ROWS}
    out: list[str] = []
    for name in names:
        label = f"{name} ({settings.processing_guarantee})" if name in ("run", "replay") else name
        if label not in labels:
            known = ", ".join(sorted({lbl.split(" (")[0] for lbl in labels}))
            msg = f"--for: unknown command {name!r} (one of: {known})"
            raise ValueError(msg)
        out.append(label)
    return out


def resolved(settings: Settings, commands: Sequence[str], topic: str | None = None) -> list[Acl]:
    """The rows of `commands` with the settings' names, without repeats. `<topic>` (export,
    diff) is `topic`, else the input topic; a configured transactional_id replaces the live
    workers' prefix with itself (literal)."""
    values = {
        "input_topic": settings.input_topic,
        "group_id": settings.group_id,
        "dlq_topic": settings.dlq_topic,
        "topic": topic or settings.input_topic,
    }
    out: list[Acl] = []
    seen: set[tuple[str, str, str, str]] = set()
    for row in (r for r in ROWS if r.command in commands):
        rows = [row]
        if row.name == "<decision_topic>":
            decision_topics = dict.fromkeys((settings.approved_topic, settings.rejected_topic))
            rows = [replace(row, name=t) for t in decision_topics]
        elif row.name == "<group_id>-" and settings.transactional_id is not None:
            rows = [replace(row, name=settings.transactional_id, pattern_type="literal")]
        for acl in rows:
            name = re.sub(r"<(\w+)>", lambda m: values[m[1]], acl.name)
            key = (acl.resource_type, name, acl.pattern_type, acl.operation)
            if key not in seen:
                seen.add(key)
                out.append(replace(acl, name=name))
    return out


def kafka_acls_lines(acls: Sequence[Acl], principal: str, bootstrap: str) -> list[str]:
    """One `kafka-acls.sh --add` per ACL, for an admin's client config in admin.properties."""
    lines = []
    for acl in acls:
        argv = [
            "kafka-acls.sh",
            "--bootstrap-server",
            bootstrap,
            "--command-config",
            "admin.properties",
            "--add",
            "--allow-principal",
            principal,
            "--operation",
            acl.operation,
            f"--{acl.resource_type}",
            acl.name,
        ]
        if acl.pattern_type != "literal":
            argv += ["--resource-pattern-type", acl.pattern_type]
        lines.append(shlex.join(argv))
    return lines
