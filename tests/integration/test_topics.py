"""`topics create` on a real broker: creates what is missing, reports what exists, changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from uuid import uuid4

import pytest
from confluent_kafka.admin import AdminClient

from consumer.kafka import client_conf
from consumer.kafka.clients import create_topics, our_topics
from tests.integration.conftest import ROOT, Broker, Topics, make_topics
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _cli(topics: Topics, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPORT_CLOSURE_")}
    return subprocess.run(
        [sys.executable, "-m", "consumer", "topics", "create", *args],
        env={**clean, **topics.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _partitions(topics: Topics) -> dict[str, int]:
    """Partitions per topic, once the broker's metadata lists every topic (creation propagates)."""
    admin = AdminClient(client_conf.admin_conf(topics.settings))
    names = our_topics(topics.settings)

    def listed() -> dict[str, int]:
        found = admin.list_topics(timeout=10).topics
        if not all(name in found for name in names):
            return {}
        return {name: len(found[name].partitions) for name in names}

    return wait_until(listed, 30, f"metadata listing {names}")


class TestTopicsCreate:
    def test_existing_topics_with_fewer_partitions_are_reported_and_left_alone(
        self, broker: Broker
    ) -> None:
        """Asking for 12 partitions of topics that have 6: each line says so, exit 0, still 6."""
        topics = make_topics(broker, partitions=6)
        result = _cli(topics, "--partitions", "12")
        assert result.returncode == 0, result.stderr
        names = our_topics(topics.settings)
        assert result.stdout.splitlines() == [
            f"{name}: already exists with 6 partitions (asked for 12); not changed"
            for name in names
        ]
        assert _partitions(topics) == dict.fromkeys(names, 6)

    def test_existing_topics_as_asked_are_just_reported(self, broker: Broker) -> None:
        topics = make_topics(broker, partitions=6)
        result = _cli(topics, "--partitions", "6")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"{name}: already exists" for name in our_topics(topics.settings)
        ]

    def test_creates_the_missing_ones_and_reports_the_others(self, broker: Broker) -> None:
        """One topic exists (3 partitions), the others are new: created with the asked count."""
        topics = make_topics(broker, partitions=3)
        fresh = f"listing-created-{uuid4().hex[:10]}.dlq"
        settings = replace(topics.settings, dlq_topic=fresh, topic_partitions=4)
        results = create_topics(settings, timeout=30)
        details = {r.topic: (r.created, r.detail) for r in results}
        assert details[fresh] == (True, "created")
        assert details[settings.input_topic] == (
            False,
            "already exists with 3 partitions (asked for 4); not changed",
        )
        assert _partitions(Topics(settings))[fresh] == 4
