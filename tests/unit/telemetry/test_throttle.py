"""Throttle: the first of a kind passes, repeats are counted, one passes per interval with the
count; Warnings: the process's throttled warning lines built on it."""

from __future__ import annotations

import logging

import pytest

from consumer.telemetry.throttle import MAX_KINDS, THROTTLE_INTERVAL, Throttle, Warnings, shape


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestThrottle:
    def test_first_of_a_kind_passes_with_nothing_suppressed(self) -> None:
        """A new kind of event is never held back."""
        assert Throttle(30, Clock()).admit("a") == 0

    def test_repeats_within_the_interval_are_suppressed_then_counted(self) -> None:
        """Twenty repeats in one interval become one line saying 20 were suppressed."""
        clock = Clock()
        throttle = Throttle(30, clock)
        throttle.admit("a")
        for _ in range(20):
            clock.now += 1
            assert throttle.admit("a") is None
        clock.now += 10
        assert throttle.admit("a") == 20
        assert throttle.admit("a") is None

    def test_kinds_are_throttled_separately(self) -> None:
        """Another kind of event is not held back by a busy one."""
        throttle = Throttle(30, Clock())
        throttle.admit("a")
        assert throttle.admit("b") == 0

    def test_memory_is_bounded_by_kinds(self) -> None:
        """Ever-new kinds never grow the table past MAX_KINDS."""
        throttle = Throttle(30, Clock())
        for n in range(MAX_KINDS * 3):
            throttle.admit(n)
        assert len(throttle._seen) <= MAX_KINDS


def test_shape_blanks_numbers() -> None:
    """Timings and counts inside a message do not make it a new kind."""
    assert shape("failed (after 3ms in state CONNECT)") == shape(
        "failed (after 17ms in state CONNECT)"
    )


class TestWarnings:
    def test_a_warning_is_logged_once_per_interval_with_the_count_suppressed(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An outage repeats a warning every turn: one line, then one per interval with the count."""
        clock = Clock()
        warnings = Warnings(clock)
        with caplog.at_level(logging.WARNING):
            for _ in range(10):
                warnings.warn("schema registry unavailable, batch held", "connection refused")
            clock.now += THROTTLE_INTERVAL
            warnings.warn("schema registry unavailable, batch held", "connection refused")
        first, second = caplog.records
        assert first.getMessage() == "schema registry unavailable, batch held"
        assert first.detail == "connection refused"  # type: ignore[attr-defined]
        assert not hasattr(first, "suppressed")
        assert second.suppressed == 9  # type: ignore[attr-defined]

    def test_warnings_keep_the_logger_name_of_the_client_callbacks(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The `logger` field of these lines did not change when they left kafka/callbacks.py."""
        with caplog.at_level(logging.WARNING):
            Warnings(Clock()).warn("transaction aborted, rewinding to the last commit", "why")
        [line] = caplog.records
        assert line.name == "consumer.kafka.callbacks"

    def test_one_throttle_serves_every_reporter(self) -> None:
        """A kind admitted through `admit` (a caller with its own logger) counts for `log` too."""
        warnings = Warnings(Clock())
        assert warnings.admit(("event", "x")) == 0
        assert warnings.admit(("event", "x")) is None
