"""Every input event ends as exactly one decision or one dead letter, equal to what `check` says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.codec import AvroCodec
from consumer.codec.jsonform import listing_to_json
from consumer.core.sample import SampleSpec, generate
from consumer.kafka import client_conf
from consumer.kafka.sample_producer import produce_samples
from tests.integration.conftest import ROOT, Topics, start_worker
from tests.waiting import committed, drain, end_offsets

pytestmark = pytest.mark.integration

COUNT = 3000
SEED = 7
SPEC = SampleSpec(base_time_ms=1_700_000_000_000)


def _run_until_idle(topics: Topics, tmp_path: Path, *args: str) -> str:
    worker = start_worker(topics, tmp_path, "--until-idle", "3", *args)
    try:
        out, _ = worker.process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        raise AssertionError("worker did not exit:\n" + worker.logs()[-3000:]) from None
    assert worker.process.returncode == 0, worker.logs()[-3000:]
    return out


class TestEndToEnd:
    def test_every_event_decided_once_and_equal_to_check(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """A clean run decides each good event exactly once, as `import-closure check` would."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=COUNT, seed=SEED, spec=SPEC)
        _run_until_idle(topics, tmp_path)

        decisions = drain(topics.client_conf(), s.approved_topic)
        codec = AvroCodec()
        decoded = [codec.decode_decision(r.value or b"") for r in decisions]
        assert len(decoded) == COUNT
        assert len({d.event_id for d in decoded}) == COUNT
        assert drain(topics.client_conf(), s.dlq_topic) == []

        listings = generate(SEED, SPEC)
        lines = "".join(json.dumps(listing_to_json(next(listings))) + "\n" for _ in range(COUNT))
        check = subprocess.run(
            [sys.executable, "-m", "consumer", "check"],
            input=lines,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        expected = {d["event_id"]: d for d in map(json.loads, check.stdout.splitlines())}
        for d in decoded:
            want = expected[d.event_id]
            got = {
                "outcome": d.outcome,
                "cluster": d.cluster,
                "cross_border": d.cross_border,
                "matched_rules": list(d.matched_rules),
                "policy_version": d.policy_version,
                "reasons": [
                    {
                        "code": r.code,
                        "rule_id": r.rule_id,
                        "message": r.message,
                        "messages": dict(r.messages),
                        "phrase": r.phrase,
                    }
                    for r in d.reasons
                ],
            }
            assert got == {k: want[k] for k in got}, d.event_id
        assert {d.outcome for d in decoded} == {"APPROVED", "REJECTED"}
        # issue 16: the bundled policy's reasons carry Indonesian (`message`) and English
        reasons = [r for d in decoded for r in d.reasons]
        assert reasons
        assert all([tag for tag, _ in r.messages] == ["id", "en"] for r in reasons)
        assert all(r.message == r.message_in("id") != r.message_in("en") for r in reasons)

        ends = end_offsets(topics.client_conf(), s.input_topic)
        assert committed(topics.client_conf(), s.group_id, s.input_topic) == ends

    def test_decisions_keyed_by_listing_with_trace_and_policy_headers(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """Decisions are keyed by listing_id and carry the input's traceparent and the policy version."""
        s = topics.settings
        produce_samples(s, s.input_topic, count=50, seed=3, spec=SPEC)
        _run_until_idle(topics, tmp_path)
        codec = AvroCodec()
        for record in drain(topics.client_conf(), s.approved_topic):
            decision = codec.decode_decision(record.value or b"")
            assert record.key == decision.listing_id.encode()
            assert record.headers["traceparent"].startswith(b"00-")
            assert record.headers["ic.policy.version"].decode() == decision.policy_version
            assert decision.source is not None
            assert decision.source.topic == s.input_topic


class TestPoisonMessages:
    def test_poison_is_dead_lettered_with_headers_and_the_rest_decided(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """Bad values go to the DLQ with original key/value/headers and why; offsets reach the end."""
        s = topics.settings
        codec = AvroCodec()
        listings = generate(11, SPEC)
        good = [codec.encode_listing(next(listings)) for _ in range(200)]
        poison = {
            b"p-empty": (b"", "empty"),
            b"p-json": (b'{"not": "avro"}', "unknown_magic"),
            b"p-trunc": (good[0][:12], "truncated"),
            b"p-fingerprint": (b"\xc3\x01" + b"\x01" * 8 + good[0][10:], "unknown_fingerprint"),
            b"p-registry": (b"\x00\x00\x00\x00\x07" + good[0][10:], "unknown_schema_id"),
        }
        producer = Producer(client_conf.plain_producer_conf(s))
        for i, value in enumerate(good):
            producer.produce(s.input_topic, value=value, key=f"good-{i}".encode(), partition=i % 3)
            if i % 40 == 0:
                key = list(poison)[i // 40]
                producer.produce(
                    s.input_topic,
                    value=poison[key][0],
                    key=key,
                    partition=i % 3,
                    headers=[("traceparent", b"00-poison-01")],
                )
        assert producer.flush(30) == 0

        _run_until_idle(topics, tmp_path)

        dead = drain(topics.client_conf(), s.dlq_topic)
        assert {r.key: r.headers["ic.error.code"].decode() for r in dead} == {
            k: code for k, (_v, code) in poison.items()
        }
        for r in dead:
            assert r.value == poison[r.key or b""][0]
            assert r.headers["traceparent"] == b"00-poison-01"
            assert r.headers["ic.source.topic"].decode() == s.input_topic
            assert int(r.headers["ic.source.offset"]) >= 0
            assert r.headers["ic.worker.id"].startswith(b"test-worker-")
            assert r.headers["ic.error.message"]
        assert len(drain(topics.client_conf(), s.approved_topic)) == len(good)
        ends = end_offsets(topics.client_conf(), s.input_topic)
        assert committed(topics.client_conf(), s.group_id, s.input_topic) == ends
