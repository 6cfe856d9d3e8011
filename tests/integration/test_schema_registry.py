"""The worker with a real Schema Registry (Apicurio, deploy/registry-local, basic auth on).

Confluent-framed input and output, subjects, schema evolution, unknown ids, a registry outage with
ids surviving the restart and the time decisions take to flow again, and 401/403 in one line.
The in-process stand-in (tests/registry_standin.py) is left to the unit tests, for the faults the
real registry cannot produce on demand: a 500 for one id, a few 500s then success, a non-JSON body.
"""

from __future__ import annotations

import copy
import json
import struct
import subprocess
import time
import uuid
from dataclasses import replace
from io import BytesIO
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from consumer.codec import LISTING_CREATED, LISTING_DECISION, AvroCodec, BundledSchemas
from consumer.codec.framing import confluent_header
from consumer.codec.records import listing_record
from consumer.core.sample import SampleSpec, generate
from consumer.kafka import client_conf
from consumer.kafka.clients import create_topics
from consumer.kafka.registry import RegistrySchemaSource
from tests.integration.conftest import Topics, WorkerProcess, start_worker
from tests.integration.registry_server import RealRegistry
from tests.waiting import drain, wait_until

pytestmark = pytest.mark.integration

SPEC = SampleSpec(base_time_ms=1_700_000_000_000)
#: What the issue asks: decisions flow within 10 s of the registry answering again.
RECOVERY_BOUND_S = 10.0


def _listing_schema_text() -> str:
    return BundledSchemas.load()[LISTING_CREATED].text


def _evolved_schema() -> dict[str, Any]:
    """ListingCreated v2: one more optional field with a default (BACKWARD and FORWARD compatible)."""
    raw: dict[str, Any] = copy.deepcopy(json.loads(_listing_schema_text()))
    raw["fields"].append({"name": "promo_code", "type": ["null", "string"], "default": None})
    return raw


def _register(registry: RealRegistry, subject: str, schema_text: str) -> int:
    with SchemaRegistryClient(registry.client_conf) as client:
        return int(client.register_schema(subject, Schema(schema_text, "AVRO")))


def _subjects(registry: RealRegistry) -> list[str]:
    with SchemaRegistryClient(registry.client_conf) as client:
        return list(client.get_subjects())


def _produce(topics: Topics, values: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(client_conf.plain_producer_conf(topics.settings))
    for key, value in values:
        producer.produce(topics.settings.input_topic, value=value, key=key)
    assert producer.flush(30) == 0


def _framed(count: int, schema_id: int, seed: int) -> list[tuple[bytes, bytes]]:
    codec = AvroCodec()
    return [
        (listing.listing_id.encode(), codec.encode_listing_confluent(listing, schema_id))
        for listing in islice(generate(seed, SPEC), count)
    ]


def _framed_v2(count: int, schema_id: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Listings written with the evolved schema (promo_code set), as a newer producer would."""
    schema = parse_schema(_evolved_schema())
    out = []
    for listing in islice(generate(seed, SPEC), count):
        stream = BytesIO()
        schemaless_writer(stream, schema, {**listing_record(listing), "promo_code": "HARBOLNAS"})
        out.append((listing.listing_id.encode(), confluent_header(schema_id) + stream.getvalue()))
    return out


def _run(worker: WorkerProcess, expected: int = 0) -> None:
    try:
        worker.process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        raise AssertionError("worker did not exit:\n" + worker.logs()[-3000:]) from None
    assert worker.process.returncode == expected, worker.logs()[-3000:]


def _with_rejected_topic(topics: Topics) -> Topics:
    """The same topics plus a rejected topic of its own: two decision subjects."""
    settings = replace(topics.settings, rejected_topic=f"{topics.settings.approved_topic}-rejected")
    create_topics(settings)
    return Topics(settings)


def _worker_env(topics: Topics, url: str) -> dict[str, str]:
    return {
        "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL": url,
        "IMPORT_CLOSURE_REJECTED_TOPIC": topics.settings.rejected_topic,
    }


class TestWithTheRealRegistry:
    def test_confluent_framed_in_and_out_under_every_decision_subject(
        self, topics: Topics, real_registry: RealRegistry, tmp_path: Path
    ) -> None:
        """Input resolved by id (a v1 and an evolved v2 writer), an unknown id dead-lettered, and
        decisions framed with the id registered under both decision topics' subjects; basic auth
        from credentials in the url, which no log line repeats."""
        topics = _with_rejected_topic(topics)
        s = topics.settings
        input_subject = f"{s.input_topic}-value"
        v1 = _register(real_registry, input_subject, _listing_schema_text())
        v2 = _register(real_registry, input_subject, json.dumps(_evolved_schema()))
        assert v2 != v1, "the registry accepted the evolved schema as a new version"
        unknown = max(v1, v2) + 10_000
        _produce(topics, _framed(150, v1, seed=1) + _framed_v2(150, v2, seed=2))
        _produce(topics, _framed(1, unknown, seed=3))

        url = real_registry.url_as(real_registry.user, real_registry.password)
        worker = start_worker(topics, tmp_path, "--until-idle", "3", **_worker_env(topics, url))
        _run(worker)

        subjects = _subjects(real_registry)
        assert {f"{s.approved_topic}-value", f"{s.rejected_topic}-value"} <= set(subjects)
        decision_ids = {
            _register(real_registry, f"{topic}-value", BundledSchemas.load()[LISTING_DECISION].text)
            for topic in (s.approved_topic, s.rejected_topic)
        }
        assert len(decision_ids) == 1, "one schema content, one id under both subjects"
        [decision_id] = decision_ids
        source = RegistrySchemaSource(real_registry.client_conf)
        codec = AvroCodec(source, decision_schema_id=decision_id)
        approved = drain(topics.client_conf(), s.approved_topic)
        rejected = drain(topics.client_conf(), s.rejected_topic)
        assert len(approved) + len(rejected) == 300
        assert approved, "the sample has approvals"
        assert rejected, "the sample has rejections"
        for record in approved + rejected:
            assert (record.value or b"")[:5] == b"\x00" + struct.pack(">I", decision_id)
            assert codec.decode_decision(record.value).policy == "id-akar-import-closure"
        dead = drain(topics.client_conf(), s.dlq_topic)
        assert [r.headers["ic.error.code"] for r in dead] == [b"unknown_schema_id"]
        assert real_registry.password not in worker.logs() + (worker.output or "")

    def test_decisions_flow_within_10_s_of_the_registry_answering_again(
        self, topics: Topics, real_registry: RealRegistry, tmp_path: Path
    ) -> None:
        """A worker started while the registry is away waits (nothing dead-lettered); after a
        restart the ids registered before it still resolve, and the first decision is produced
        within RECOVERY_BOUND_S of the registry answering."""
        s = topics.settings
        listing_id = _register(real_registry, f"{s.input_topic}-value", _listing_schema_text())
        _produce(topics, _framed(200, listing_id, seed=4))
        real_registry.stop()
        try:
            url = real_registry.url_as(real_registry.user, real_registry.password)
            worker = start_worker(topics, tmp_path, "--until-idle", "3", **_worker_env(topics, url))
            # Long enough for the start-up back-off to reach its cap (1 + 2 + 4 + 4 s).
            wait_until(
                lambda: worker.logs().count("waiting for the schema registry") >= 4,
                60,
                "the worker to have waited for the registry four times",
            )
            probe = _first_record_probe(topics)
        finally:
            real_registry.start()
        answering = time.monotonic()
        try:
            first = wait_until(
                lambda: _first_arrival(probe), 60, "the first decision after the restart"
            )
        finally:
            probe.close()
        assert first is not None  # wait_until returns only a truthy value
        recovery = first - answering
        print(f"\nregistry recovery: first decision {recovery:.2f} s after the registry answered")
        _run(worker)
        assert recovery <= RECOVERY_BOUND_S, f"decisions flowed {recovery:.1f} s after the registry"
        assert len(drain(topics.client_conf(), s.approved_topic)) == 200
        assert drain(topics.client_conf(), s.dlq_topic) == []

    @pytest.mark.parametrize(
        ("who", "line"),
        [
            ("wrong-password", "schema registry refused our credentials (HTTP 401) at {url}"),
            ("read-only-user", "schema registry: not authorised (HTTP 403) at {url}"),
        ],
        ids=["401", "403"],
    )
    def test_a_refusal_stops_the_worker_in_one_line(
        self, topics: Topics, real_registry: RealRegistry, tmp_path: Path, who: str, line: str
    ) -> None:
        """Credentials the registry refuses, or a user who may not register: exit 2 with our words
        and the url, never the password, the user-info part or the client's empty-body text."""
        if who == "wrong-password":
            user, password = real_registry.user, f"not-{uuid.uuid4().hex[:8]}"
        else:
            user, password = real_registry.reader, real_registry.reader_password
        url = real_registry.url_as(user, password)
        worker = start_worker(topics, tmp_path, "--until-idle", "3", **_worker_env(topics, url))
        _run(worker, expected=2)
        logs = worker.logs()
        assert line.format(url=real_registry.url) in logs, logs[-2000:]
        assert "Unknown Schema Registry Error" not in logs
        assert "Traceback" not in logs
        assert password not in logs
        assert f"{user}:" not in logs


def _first_record_probe(topics: Topics) -> Consumer:
    """A consumer on every partition of the approved topic from the start, already connected."""
    s = topics.settings
    consumer = Consumer(topics.client_conf(**{"enable.auto.commit": False}))
    metadata = consumer.list_topics(s.approved_topic, timeout=10)
    partitions = list(metadata.topics[s.approved_topic].partitions)
    consumer.assign([TopicPartition(s.approved_topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer


def _first_arrival(consumer: Consumer) -> float | None:
    """The monotonic time a record arrives, or None after a short poll without one."""
    message = consumer.poll(0.05)
    if message is None or message.error() is not None:
        return None
    return time.monotonic()
