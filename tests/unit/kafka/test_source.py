"""The Source protocol: both inputs of the loop, the live group and replay's bounded range, are Sources."""

from __future__ import annotations

from collections.abc import Callable
from unittest.mock import create_autospec

import pytest
from confluent_kafka import Consumer

from consumer.kafka.bounded_source import BoundedSource
from consumer.kafka.group_source import GroupSource
from consumer.kafka.membership import GroupMember
from consumer.kafka.ranges import Bounds
from consumer.kafka.source import Source
from consumer.telemetry.health import Health
from consumer.telemetry.throttle import Warnings


def group_source() -> GroupSource:
    consumer = create_autospec(Consumer, instance=True, spec_set=True)
    return GroupSource(GroupMember(lambda: consumer), "in", Health(stall_timeout=60), Warnings())


def bounded_source() -> BoundedSource:
    consumer = create_autospec(Consumer, instance=True, spec_set=True)
    bounds = Bounds("in", {0: (0, 10)})
    return BoundedSource(
        GroupMember(lambda: consumer), bounds, Health(stall_timeout=60), Warnings()
    )


class TestConformance:
    def test_both_sources_are_sources_to_the_type_checker(self) -> None:
        """mypy checks these assignments: a source whose verbs drift from the protocol (a
        parameter renamed, a return type changed) fails the type check, not a run."""
        live: Source = group_source()
        bounded: Source = bounded_source()
        assert live is not bounded

    @pytest.mark.parametrize("make", [group_source, bounded_source], ids=["group", "bounded"])
    def test_both_sources_are_sources_at_run_time(self, make: Callable[[], object]) -> None:
        """What the worker is handed has every method the loop calls."""
        assert isinstance(make(), Source)

    def test_an_object_missing_a_verb_is_not_a_source(self) -> None:
        """The check is not vacuous: a source without `done` would break the loop."""

        class Incomplete:
            def poll(self, batch_size: int, timeout: float) -> list[object]:
                return []

        assert not isinstance(Incomplete(), Source)
