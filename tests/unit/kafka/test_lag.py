"""Lag covers every assigned partition, falling back from position to committed to low watermark."""

from __future__ import annotations

import pytest

from consumer.kafka.lag import Offsets, PartitionStats, partition_lag

TP = ("t", 0)


@pytest.mark.parametrize(
    ("known", "stats", "expected"),
    [
        ({TP: Offsets(90, 0, 100)}, {}, {TP: 10}),
        ({TP: Offsets(-1001, 0, 100)}, {TP: (100, 40)}, {TP: 60}),
        ({TP: Offsets(-1001, 5, 100)}, {}, {TP: 95}),
        ({TP: Offsets(-1001, -1, -1)}, {TP: (100, -1001)}, {TP: 100}),
        ({TP: Offsets(50, 0, -1)}, {TP: (80, 10)}, {TP: 30}),
        ({TP: Offsets(120, 0, 100)}, {}, {TP: 0}),
        ({}, {}, {}),
    ],
    ids=[
        "position-and-watermark",
        "not-consumed-yet-uses-committed",
        "nothing-committed-uses-low-watermark",
        "no-fetch-yet-uses-statistics-watermark",
        "stale-cache-uses-statistics",
        "never-negative",
        "end-unknown-is-left-out",
    ],
)
def test_partition_lag(known, stats, expected) -> None:
    """Each assigned partition gets the best figure the client has without asking the broker."""
    assert partition_lag(known, stats, [TP]) == expected


class TestPartitionStats:
    def test_the_latest_statistics_of_a_partition_replace_the_earlier(self) -> None:
        """Written by each statistics callback, read by lag: only the newest figures count."""
        stats = PartitionStats()
        stats.update(TP, 100, 40)
        stats.update(TP, 120, 90)
        assert stats.offsets == {TP: (120, 90)}
        assert partition_lag({}, stats.offsets, [TP]) == {TP: 30}
