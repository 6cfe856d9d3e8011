"""Consumer lag per assigned partition, from what the client knows without asking the broker.

A partition not consumed from yet has no position, and one not fetched from yet has no cached
watermark; both fall back to what the last librdkafka statistics said (committed offset, high
watermark), then to the low watermark, so every assigned partition has a figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consumer.core.records import PartitionKey


@dataclass(frozen=True, slots=True)
class Offsets:
    """What the client knows of one partition; negative means unknown (librdkafka's convention)."""

    position: int
    low: int
    high: int


class PartitionStats:
    """What the last librdkafka statistics said of each partition: (high watermark, committed
    offset). Written by the statistics callback (kafka/callbacks.py), read by the source's lag."""

    __slots__ = ("_offsets",)

    def __init__(self) -> None:
        self._offsets: dict[PartitionKey, tuple[int, int]] = {}

    def update(self, key: PartitionKey, high: int, committed: int) -> None:
        self._offsets[key] = (high, committed)

    @property
    def offsets(self) -> Mapping[PartitionKey, tuple[int, int]]:
        return self._offsets


def partition_lag(
    known: Mapping[PartitionKey, Offsets],
    stats: Mapping[PartitionKey, tuple[int, int]],
    assigned: Iterable[PartitionKey],
) -> dict[PartitionKey, int]:
    """High watermark minus the next offset to process, for every assigned partition we can place."""
    lag: dict[PartitionKey, int] = {}
    for tp in assigned:
        offsets = known.get(tp, Offsets(-1, -1, -1))
        stats_high, stats_committed = stats.get(tp, (-1, -1))
        high = offsets.high if offsets.high >= 0 else stats_high
        if high < 0:
            continue  # nothing is known of this partition's end yet
        for start in (offsets.position, stats_committed, offsets.low, 0):
            if start >= 0:
                lag[tp] = max(0, high - start)
                break
    return lag
