"""The worker with a Schema Registry: Confluent-framed input and output, and a registry outage."""

from __future__ import annotations

import struct
import subprocess
from itertools import islice
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.codec import LISTING_CREATED, AvroCodec, BundledSchemas
from consumer.core.sample import SampleSpec, generate
from consumer.kafka import client_conf
from consumer.kafka.registry import RegistrySchemaSource
from tests.integration.conftest import Topics, WorkerProcess, start_worker
from tests.registry_standin import DECISION_ID, running_registry
from tests.waiting import drain

pytestmark = pytest.mark.integration

LISTING_ID = 7
UNKNOWN_ID = 99
SPEC = SampleSpec(base_time_ms=1_700_000_000_000)


def _produce_confluent(topics: Topics, count: int, schema_id: int, seed: int) -> None:
    codec = AvroCodec()
    producer = Producer(client_conf.plain_producer_conf(topics.settings))
    for listing in islice(generate(seed, SPEC), count):
        value = codec.encode_listing_confluent(listing, schema_id)
        producer.produce(topics.settings.input_topic, value=value, key=listing.listing_id.encode())
    assert producer.flush(30) == 0


def _run(worker: WorkerProcess) -> None:
    try:
        worker.process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        raise AssertionError("worker did not exit:\n" + worker.logs()[-3000:]) from None
    assert worker.process.returncode == 0, worker.logs()[-3000:]


class TestSchemaRegistry:
    def test_confluent_framed_in_and_out(self, topics: Topics, tmp_path: Path) -> None:
        """Input is resolved by schema id; decisions are framed with the id registered for them."""
        schemas = {LISTING_ID: {"schema": BundledSchemas.load()[LISTING_CREATED].text}}
        with running_registry(schemas) as registry:
            _produce_confluent(topics, 300, LISTING_ID, seed=1)
            _produce_confluent(topics, 1, UNKNOWN_ID, seed=2)
            _run(
                start_worker(
                    topics,
                    tmp_path,
                    "--until-idle",
                    "3",
                    IMPORT_CLOSURE_SCHEMA_REGISTRY_URL=registry.url,
                )
            )
            assert registry.gets(LISTING_ID) == 1, "the schema is fetched once and cached"
            assert [subject for subject, _ in registry.registered] == [
                f"{topics.settings.approved_topic}-value"
            ]
            source = RegistrySchemaSource({"url": registry.url})
            codec = AvroCodec(source, decision_schema_id=DECISION_ID)
            decisions = drain(topics.client_conf(), topics.settings.approved_topic)
            assert len(decisions) == 300
            for record in decisions:
                assert (record.value or b"")[:5] == b"\x00" + struct.pack(">I", DECISION_ID)
                assert codec.decode_decision(record.value).policy == "id-akar-import-closure"
        dead = drain(topics.client_conf(), topics.settings.dlq_topic)
        assert [r.headers["ic.error.code"] for r in dead] == [b"unknown_schema_id"]

    def test_registry_outage_retries_instead_of_dead_lettering(
        self, topics: Topics, tmp_path: Path
    ) -> None:
        """A registry answering 500 is not the message's fault: the batch waits, nothing is dead-lettered."""
        schemas = {LISTING_ID: {"schema": BundledSchemas.load()[LISTING_CREATED].text}}
        with running_registry(schemas) as registry:
            registry.failures_left = 3
            _produce_confluent(topics, 200, LISTING_ID, seed=3)
            worker = start_worker(
                topics,
                tmp_path,
                "--until-idle",
                "3",
                IMPORT_CLOSURE_SCHEMA_REGISTRY_URL=registry.url,
                # no client-side retries: the worker's own batch retry is under test
                IMPORT_CLOSURE_SCHEMA_REGISTRY_MAX_RETRIES="0",
            )
            _run(worker)
            assert registry.gets(LISTING_ID) == 4
        assert "schema registry unavailable, batch held" in worker.logs()
        assert len(drain(topics.client_conf(), topics.settings.approved_topic)) == 200
        assert drain(topics.client_conf(), topics.settings.dlq_topic) == []
