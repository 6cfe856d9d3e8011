"""Throttle: the first of a kind passes, repeats are counted, one passes per interval with the count."""

from __future__ import annotations

from consumer.service.throttle import MAX_KINDS, Throttle, shape


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
