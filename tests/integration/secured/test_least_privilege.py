"""Every command on a secured broker (SASL_SSL, SCRAM-SHA-512, deny by default) with exactly the
ACLs docs/operations.md lists: each works with them, and fails in one line naming the missing one
without it, exits non-zero and commits nothing undelivered."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest

from consumer.core.sample import SampleSpec, candidate_policy_text
from consumer.kafka.client_conf import plain_consumer_conf
from consumer.kafka.sample_producer import produce_samples
from tests.integration.secured.conftest import Secured, acl_rows, rows_for
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
    #: The consumer group whose committed offsets must never pass an undelivered record.
    commits: str | None = None  # "live" or "replay"
    #: diff exits 2 when some input records are invalid, as the sample's malformed ones are.
    ok_exit: int = 0

    def argv(self, secured: Secured) -> list[str]:
        if "--candidate" in self.args or "--baseline" in self.args:
            candidate = secured.workdir / "candidate.yaml"
            candidate.write_text(candidate_policy_text())
            return [a.replace("CANDIDATE", str(candidate)) for a in self.args]
        return list(self.args)


COMMANDS = {
    "run (at-least-once)": Command(("run", "--until-idle", "3"), commits="live"),
    "run (exactly-once)": Command(("run", "--until-idle", "3"), "exactly-once", commits="live"),
    "replay (at-least-once)": Command(
        ("replay", "--name", "r1", "--no-progress"), commits="replay"
    ),
    "replay (exactly-once)": Command(
        ("replay", "--name", "r1", "--no-progress"), "exactly-once", commits="replay"
    ),
    "replay --dry-run": Command(
        ("replay", "--dry-run", "--baseline", "CANDIDATE", "--no-progress")
    ),
    "export": Command(("export", "--topic", "TOPIC")),
    "diff --topic": Command(
        ("diff", "--candidate", "CANDIDATE", "--topic", "TOPIC", "--from", "2000-01-01"),
        ok_exit=2,
    ),
    "topics create": Command(("topics", "create")),
    "produce-sample": Command(("produce-sample", "--count", "20")),
}


def run_command(secured: Secured, name: str) -> subprocess.CompletedProcess[str]:
    command = COMMANDS[name]
    argv = [a.replace("TOPIC", secured.topic) for a in command.argv(secured)]
    return secured.cli(*argv, IMPORT_CLOSURE_PROCESSING_GUARANTEE=command.guarantee)


def test_every_command_in_the_table_is_run_here() -> None:
    """A row for a command these tests cannot run would go unchecked."""
    assert {r.command for r in acl_rows()} == set(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_works_with_exactly_the_listed_acls(secured: Secured, name: str) -> None:
    """Granted only its rows of the table, the command does its whole job and leaks no password."""
    s = secured.settings
    produced = produce_samples(
        s, s.input_topic, count=COUNT, seed=7, spec=SPEC, bad_fraction=BAD_FRACTION
    )
    good = COUNT - produced.bad
    secured.grant(rows_for(name))
    result = run_command(secured, name)
    assert result.returncode == COMMANDS[name].ok_exit, result.stderr[-3000:]
    assert secured.password not in result.stdout + result.stderr
    admin = plain_consumer_conf(s, **{"isolation.level": "read_committed"})
    if name.startswith("run"):
        assert committed(admin, s.group_id, s.input_topic) == end_offsets(admin, s.input_topic)
        assert len(drain(admin, s.approved_topic)) == good
        assert len(drain(admin, s.dlq_topic)) == produced.bad
    elif name.startswith("replay ("):
        assert len(drain(admin, s.approved_topic)) == good
    elif name == "export":
        assert len(result.stdout.splitlines()) == COUNT
    elif name in ("diff --topic", "replay --dry-run"):
        assert f"listings read: {good}\n" in result.stdout
