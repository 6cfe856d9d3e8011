"""export, replay on a real broker: round trip to check, changed-only re-enforcement, rate, offsets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.codec import AvroCodec
from consumer.core.records import Decision
from consumer.core.sample import SampleSpec, candidate_policy_text
from consumer.kafka import client_conf
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import (
    ROOT,
    Broker,
    Topics,
    WorkerProcess,
    make_topics,
    start_command,
    start_worker,
)
from tests.waiting import all_committed, committed, drain, end_offsets, wait_until

pytestmark = pytest.mark.integration

POLICIES = ROOT / "consumer" / "data" / "policies"
LIVE = POLICIES / "id-akar-import-closure.yaml"
#: Listings from 2022 on, a few hours apart: about 40% cross-border, all after the 2021 closure.
SPEC = SampleSpec(base_time_ms=1_650_000_000_000, step_ms=3_600_000)


def _cli(topics: Topics, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPORT_CLOSURE_")}
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        env={**clean, **topics.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _with_electronics(tmp_path: Path) -> Path:
    path = tmp_path / "candidate.yaml"
    path.write_text(candidate_policy_text())
    assert _validate(path).returncode == 0, _validate(path).stderr
    return path


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", "validate-policy", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestExport:
    def test_export_of_listings_is_what_check_reads(self, topics: Topics, tmp_path: Path) -> None:
        """export --topic <input> | check: every listing decides, none is invalid, same ids."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=120, seed=11, spec=SPEC, bad_fraction=0.05)
        exported = _cli(topics, "export", "--topic", s.input_topic)
        assert exported.returncode == 0, exported.stderr
        lines = exported.stdout.splitlines()
        assert len(lines) == 120  # every record in its place, undecodable ones too
        errors = [json.loads(x) for x in lines if '"error": {' in x]
        assert errors, "the malformed ones are printed with their error code"
        assert all({"code", "message"} <= e["error"].keys() and "offset" in e for e in errors)
        listings = [x for x in lines if '"error": {' not in x]
        checked = subprocess.run(
            [sys.executable, "-m", "consumer", "check", "-"],
            input="\n".join(listings) + "\n",
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        decided = [json.loads(x)["event_id"] for x in checked.stdout.splitlines()]
        assert decided == [json.loads(x)["event_id"] for x in listings]
        assert (
            f"exported 120 records of {s.input_topic} ({len(errors)} undecodable)"
            in exported.stderr
        )

    def test_count_partition_and_meta(self, topics: Topics) -> None:
        """--partition, --count and --with-meta bound and locate what is read."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=60, seed=12, spec=SPEC)
        result = _cli(
            topics, "export", "--topic", s.input_topic, "--partition", "1", "--count", "5",
            "--with-meta",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        rows = [json.loads(x) for x in result.stdout.splitlines()]
        assert len(rows) == 5
        assert {r["partition"] for r in rows} == {1}
        assert [r["offset"] for r in rows] == list(range(5))
        assert all(r["topic"] == s.input_topic and r["timestamp"].endswith("Z") for r in rows)

    def test_unknown_topic_kind_is_one_line_and_exit_2(self, topics: Topics) -> None:
        """A topic the settings do not name needs --kind."""
        result = _cli(topics, "export", "--topic", "some-other-topic")
        assert result.returncode == 2
        assert "name it with --kind" in result.stderr
        assert "Traceback" not in result.stderr


def _decisions(topics: Topics) -> list[tuple[str, dict[str, bytes], Decision]]:
    codec = AvroCodec()
    out = []
    for r in drain(topics.client_conf(), topics.settings.approved_topic):
        out.append((r.key.decode() if r.key else "", r.headers, codec.decode_decision(r.value)))
    return out


class TestReplay:
    def test_changed_only_publishes_exactly_the_newly_rejected(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """After a rule is added: one decision per newly rejected listing, marked as replayed;
        the run's offsets reach the end past unchanged listings, so a second run of the same
        name reads and publishes nothing more; the live group's offsets stay."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=300, seed=21, spec=SPEC)
        worker = start_worker(topics, tmp_path, "--until-idle", "2")
        assert worker.finish() == 0, worker.logs()[-3000:]
        live_offsets = committed(topics.client_conf(), s.group_id, s.input_topic)
        assert all_committed(topics.client_conf(), s.group_id, s.input_topic)
        before = _decisions(topics)
        assert len(before) == 300

        candidate = _with_electronics(tmp_path)
        # what diff says changes, from the topic: the spec of what replay must publish
        diffed = _cli(
            topics, "diff", "--policy", str(LIVE), "--candidate", str(candidate),
            "--topic", s.input_topic, "--from", "2000-01-01", "--changes",
        )  # fmt: skip
        assert diffed.returncode == 0, diffed.stderr
        expected = {json.loads(x)["event_id"] for x in diffed.stdout.splitlines()}
        assert expected, "the sample has cross-border electronics"

        args = (
            "replay", "--policy", str(candidate), "--changed-only", "--baseline", str(LIVE),
            "--name", "close-electronics", "--as-of", "now", "--no-progress",
        )  # fmt: skip
        first = _cli(topics, *args)
        assert first.returncode == 0, first.stderr
        assert f"published {len(expected):,} decisions" in first.stdout
        replayed = [x for x in _decisions(topics) if x[2].provenance.mode == "REPLAY"]
        assert {d.event_id for _k, _h, d in replayed} == expected
        assert len(replayed) == len(expected)
        for key, headers, d in replayed:
            assert d.outcome == "REJECTED"
            assert d.provenance.mode == "REPLAY"
            assert d.provenance.replay_run == "close-electronics"
            assert d.provenance.as_of_ms is not None
            assert headers["ic.replay"] == b"close-electronics"
            assert key == d.listing_id

        # unchanged listings publish nothing, yet their offsets are committed: nothing is re-read
        ends = end_offsets(topics.client_conf(), s.input_topic)
        group = f"{s.group_id}.replay.close-electronics"
        assert committed(topics.client_conf(), group, s.input_topic) == ends

        second = _cli(topics, *args)
        assert second.returncode == 0, second.stderr
        assert "published 0 decisions" in second.stdout
        assert "read 0 listings" in second.stdout
        assert len(_decisions(topics)) == len(before) + len(expected)
        assert committed(topics.client_conf(), s.group_id, s.input_topic) == live_offsets

    def test_rate_holds(self, topics: Topics) -> None:
        """--rate 100 over 150 decisions takes at least (150 - burst of 10) / 100 s."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=150, seed=22, spec=SPEC)
        started = time.monotonic()
        result = _cli(topics, "replay", "--name", "paced", "--rate", "100", "--no-progress")
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert "published 150 decisions" in result.stdout
        assert elapsed >= (150 - 10) / 100
        assert len(_decisions(topics)) == 150

    def test_replay_never_moves_the_live_group(self, topics: Topics) -> None:
        """A full replay commits under <group>.replay.<name> only; the live group has no offsets."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=50, seed=23, spec=SPEC)
        result = _cli(topics, "replay", "--name", "full", "--no-progress")
        assert result.returncode == 0, result.stderr
        assert "published 50 decisions" in result.stdout
        replay_group = f"{s.group_id}.replay.full"
        wait_until(
            lambda: all_committed(topics.client_conf(), replay_group, s.input_topic),
            30,
            "replay offsets committed",
        )
        assert set(committed(topics.client_conf(), s.group_id, s.input_topic).values()) == {-1001}

    def test_dry_run_prints_the_diff_and_publishes_nothing(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """--dry-run: the diff report of the range; the decision topic stays empty."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=80, seed=24, spec=SPEC)
        candidate = _with_electronics(tmp_path)
        result = _cli(
            topics, "replay", "--policy", str(candidate), "--baseline", str(LIVE), "--dry-run",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "listings read: 80" in result.stdout
        assert _decisions(topics) == []


def _log_events(member: WorkerProcess, event: str) -> list[dict[str, object]]:
    lines = (json.loads(x) for x in member.logs().splitlines() if x.startswith("{"))
    return [line for line in lines if line.get("event") == event]


class TestReplaySplit:
    def test_processes_with_the_same_name_split_the_partitions(
        self, broker: Broker, tmp_path: Path
    ) -> None:
        """Two `replay --name R` processes on 4 partitions, kept running by --rate until both
        joined: each decides a share, together they publish every listing's decision, the run's
        offsets reach the ends captured at start (past each partition's last record, a dead
        letter that publishes nothing), and the live group's offsets stay absent."""
        topics = make_topics(broker, partitions=4)
        s = topics.settings
        conf = topics.client_conf()
        produce_samples(s, s.input_topic, count=480, seed=25, spec=SPEC)
        producer = Producer(client_conf.plain_producer_conf(s))
        for partition in range(4):
            producer.produce(s.input_topic, value=b"\x07not avro", key=b"bad", partition=partition)
        assert producer.flush(30) == 0
        codec = AvroCodec()
        inputs = drain(conf, s.input_topic)
        listings = {codec.decode_listing(r.value).event_id for r in inputs if r.key != b"bad"}
        assert len(listings) == 480
        ends = end_offsets(conf, s.input_topic)
        assert {r.partition: r.offset + 1 for r in inputs if r.key == b"bad"} == ends

        args = ("--name", "split", "--rate", "40", "--no-progress")  # 480 alone: 12 s
        members = [start_command(topics, tmp_path, "replay", *args) for _ in range(2)]
        codes = [member.finish(120) for member in members]
        logs = "\n\n".join(m.logs()[-3000:] for m in members)
        assert codes == [0, 0], logs

        shares = []
        for member in members:
            found = re.search(r"published ([\d,]+) decisions", member.output)
            assert found is not None, member.output
            shares.append(int(found.group(1).replace(",", "")))
        assert all(n > 0 for n in shares), (shares, logs)
        decided = Counter(d.event_id for _k, _h, d in _decisions(topics))
        assert set(decided) == listings, "every listing decided, no other"
        assert sum(decided.values()) == sum(shares)  # what the summaries count is on the topic
        duplicates = sum(decided.values()) - len(decided)
        print(f"shares {shares}, duplicates {duplicates}")
        if duplicates:  # at-least-once repeats only work whose partition moved mid-run
            moved = [e for m in members for e in ("partitions revoked", "partitions lost")
                     if _log_events(m, e)]  # fmt: skip
            assert moved, f"{duplicates} duplicates without a rebalance:\n{logs}"

        assert committed(conf, f"{s.group_id}.replay.split", s.input_topic) == ends
        assert set(committed(conf, s.group_id, s.input_topic).values()) == {-1001}
