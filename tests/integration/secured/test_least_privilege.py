"""Every command on a secured broker (SASL_SSL, SCRAM-SHA-512, deny by default) with exactly the
ACLs docs/operations.md lists: each works with them, and fails in one line naming the missing one
without it, exits non-zero and commits nothing undelivered."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest

from consumer.codec import AvroCodec
from consumer.core.deadletter import SOURCE_OFFSET, SOURCE_PARTITION
from consumer.core.sample import SampleSpec, candidate_policy_text
from consumer.errors import DecodeError
from consumer.kafka.client_conf import plain_consumer_conf
from consumer.kafka.sample_producer import Produced, produce_samples
from tests.integration.secured.conftest import AclRow, Secured, acl_rows, rows_for
from tests.waiting import committed, drain, end_offsets

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_650_000_000_000, step_ms=3_600_000)
COUNT = 60
BAD_FRACTION = 0.1  # some dead letters, so Write on the dead-letter topic is exercised


@dataclass(frozen=True)
class Command:
    """How a row of the table's `command` column is run, and what it leaves behind to check."""

    args: tuple[str, ...]
    guarantee: str = "at-least-once"
    #: The group (under <group_id>) whose committed offsets must never pass an undelivered record.
    group_suffix: str | None = None
    #: diff exits 2 when some input records are invalid, as the sample's malformed ones are.
    ok_exit: int = 0
    #: Whether the topics exist (with sample events) before it runs.
    needs_input: bool = True


COMMANDS = {
    "run (at-least-once)": Command(("run", "--until-idle", "3"), group_suffix=""),
    "run (exactly-once)": Command(("run", "--until-idle", "3"), "exactly-once", group_suffix=""),
    "replay (at-least-once)": Command(
        ("replay", "--name", "r1", "--no-progress"), group_suffix=".replay.r1"
    ),
    "replay (exactly-once)": Command(
        ("replay", "--name", "r1", "--no-progress"), "exactly-once", group_suffix=".replay.r1"
    ),
    "replay --dry-run": Command(
        ("replay", "--dry-run", "--baseline", "CANDIDATE", "--no-progress")
    ),
    "export": Command(("export", "--topic", "TOPIC")),
    "diff --topic": Command(
        ("diff", "--candidate", "CANDIDATE", "--topic", "TOPIC", "--from", "2000-01-01"),
        ok_exit=2,
    ),
    "topics create": Command(("topics", "create"), needs_input=False),
    "produce-sample": Command(("produce-sample", "--count", "20"), needs_input=False),
}


def prepare(secured: Secured, name: str) -> Produced | None:
    """As admin: the topics and sample events the command needs (topics create needs none)."""
    if name == "topics create":
        return None
    secured.create_topics()
    if not COMMANDS[name].needs_input:
        return None
    s = secured.settings
    return produce_samples(
        s, s.input_topic, count=COUNT, seed=7, spec=SPEC, bad_fraction=BAD_FRACTION
    )


def run_command(secured: Secured, name: str) -> subprocess.CompletedProcess[str]:
    command = COMMANDS[name]
    candidate = secured.workdir / "candidate.yaml"
    candidate.write_text(candidate_policy_text())
    argv = [
        a.replace("CANDIDATE", str(candidate)).replace("TOPIC", secured.topic) for a in command.args
    ]
    return secured.cli(*argv, timeout=90, IMPORT_CLOSURE_PROCESSING_GUARANTEE=command.guarantee)


def reader(secured: Secured) -> dict[str, object]:
    """An admin consumer config that sees committed transactions only, as downstream does."""
    return plain_consumer_conf(secured.settings, **{"isolation.level": "read_committed"})


def assert_nothing_undelivered_committed(secured: Secured, group: str) -> None:
    """Every input record below the group's committed offsets has its output: a decision (by
    event id) or, for an undecodable one, a dead letter (replay counts those, writes none)."""
    s, conf, codec = secured.settings, reader(secured), AvroCodec()
    offsets = committed(conf, group, s.input_topic)
    decided = {codec.decode_decision(r.value).event_id for r in drain(conf, s.approved_topic)}
    dead = {
        (int(r.headers[SOURCE_PARTITION]), int(r.headers[SOURCE_OFFSET]))
        for r in drain(conf, s.dlq_topic)
    }
    replay = ".replay." in group
    for record in drain(conf, s.input_topic):
        if record.offset >= offsets[record.partition]:
            continue
        try:
            event_id = codec.decode_listing(record.value).event_id
        except DecodeError:
            assert replay or (record.partition, record.offset) in dead, record
        else:
            assert event_id in decided, record


def test_every_command_in_the_table_is_run_here() -> None:
    """A row for a command these tests cannot run would go unchecked."""
    assert {r.command for r in acl_rows()} == set(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_works_with_exactly_the_listed_acls(secured: Secured, name: str) -> None:
    """Granted only its rows of the table, the command does its whole job and leaks no password."""
    produced = prepare(secured, name)
    secured.grant(rows_for(name))
    result = run_command(secured, name)
    assert result.returncode == COMMANDS[name].ok_exit, result.stderr[-3000:]
    assert secured.password not in result.stdout + result.stderr
    s, conf = secured.settings, reader(secured)
    good = COUNT - produced.bad if produced else 0
    if name.startswith("run"):
        assert committed(conf, s.group_id, s.input_topic) == end_offsets(conf, s.input_topic)
        assert len(drain(conf, s.approved_topic)) == good
        assert produced
        assert len(drain(conf, s.dlq_topic)) == produced.bad
    elif name.startswith("replay ("):
        assert len(drain(conf, s.approved_topic)) == good
    elif name == "export":
        assert len(result.stdout.splitlines()) == COUNT
    elif name in ("diff --topic", "replay --dry-run"):
        assert f"listings read: {good}\n" in result.stdout
    elif name == "topics create":
        assert end_offsets(conf, s.dlq_topic) == {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0}
    elif name == "produce-sample":
        assert sum(end_offsets(conf, s.input_topic).values()) == 20


@pytest.mark.parametrize("missing", acl_rows(), ids=lambda r: r.label)
def test_fails_in_one_line_without_each_listed_acl(secured: Secured, missing: AclRow) -> None:
    """Without one row, the command stops non-zero with one line naming the ACL it lacks, and
    its group has committed nothing whose output was not delivered."""
    name = missing.command
    prepare(secured, name)
    secured.grant([r for r in rows_for(name) if r != missing])
    result = run_command(secured, name)
    assert result.returncode not in (0, COMMANDS[name].ok_exit), result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    needed = f"not authorized: {missing.operation} on {missing.resource_type} "
    assert needed + secured.resolve(missing.name) in last, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert secured.password not in result.stdout + result.stderr
    suffix = COMMANDS[name].group_suffix
    if suffix is not None:
        assert_nothing_undelivered_committed(secured, secured.settings.group_id + suffix)
