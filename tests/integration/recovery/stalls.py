"""How long each input partition stood still, read back from the decisions' `decided_at`.

Events arrive on every partition throughout a recovery test (100/s per partition), so between two
decisions of one partition there are milliseconds unless nobody decided it; the longest gap is
the time that partition stood still with input waiting.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

from consumer.codec import AvroCodec
from tests.integration.conftest import Topics
from tests.waiting import drain


@dataclass(frozen=True)
class Stall:
    partition: int
    seconds: float
    #: When the stall began: the partition's last decision before it (epoch seconds).
    since: float

    def __str__(self) -> str:
        return f"partition {self.partition} stood still {self.seconds:.1f}s"


def decision_times(topics: Topics) -> dict[int, list[float]]:
    """Per input partition, the sorted `decided_at` (seconds) of its decisions, read_committed."""
    codec = AvroCodec()
    conf = topics.client_conf(isolation_level="read_committed")
    times: dict[int, list[float]] = defaultdict(list)
    for record in drain(conf, topics.settings.approved_topic, seconds=120):
        decision = codec.decode_decision(record.value or b"")
        assert decision.source is not None
        times[decision.source.partition].append(decision.decided_at_ms / 1000)
    return {p: sorted(ts) for p, ts in times.items()}


def longest_stall(times: dict[int, list[float]], start: float, end: float) -> Stall:
    """The longest time a partition went without a decision from `start` (the failure, or the
    broker back) on, while input still arrived (before `end`): a gap open at `start` counts
    from `start`."""
    worst = Stall(-1, 0.0, start)
    for partition, ts in times.items():
        for before, after in pairwise(ts):
            since = max(before, start)
            if after > start and before < end and after - since > worst.seconds:
                worst = Stall(partition, round(after - since, 1), since)
    return worst
