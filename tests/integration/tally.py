"""What came out per input, read back with read_committed: lost, duplicated, wrong, and stalls.

Shared by the failure tests (test_exactly_once.py, cluster/): each input record is identified by
its source position (partition, offset), which every decision (`source`) and every dead letter
(`ic.source.*` headers) carries.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass

from consumer.codec import AvroCodec
from tests.integration.conftest import Topics
from tests.waiting import drain


def outputs_by_input(topics: Topics) -> tuple[int, int]:
    """(outputs, distinct inputs) over decisions and dead letters, read with read_committed."""
    s = topics.settings
    conf = topics.client_conf(isolation_level="read_committed")
    codec = AvroCodec()
    keys: Counter[tuple[int, int]] = Counter()
    for r in drain(conf, s.approved_topic, seconds=120):
        source = codec.decode_decision(r.value).source
        assert source is not None
        keys[(source.partition, source.offset)] += 1
    for r in drain(conf, s.dlq_topic, seconds=120):
        keys[(int(r.headers["ic.source.partition"]), int(r.headers["ic.source.offset"]))] += 1
    return sum(keys.values()), len(keys)


@dataclass(frozen=True)
class Tally:
    inputs: int
    #: Decisions read with read_committed (dead letters are counted apart).
    decisions: int
    #: Inputs with at least one decision.
    decided: int
    #: Decisions whose event or listing id is not the one of the input at their source.
    wrong: int
    dead_letters: int
    #: The longest time an input partition with records waiting stood still: for each input,
    #: from when it was due (produced, its predecessor decided, and `hold_until` passed) to its
    #: first decision.
    longest_stall: float
    #: Where that stall was: `partition@offset` of the input that waited, and from when to when.
    stall_at: str

    @property
    def lost(self) -> int:
        return self.inputs - self.decided

    @property
    def duplicated(self) -> int:
        return self.decisions - self.decided

    def row(self) -> str:
        return (
            f"lost {self.lost}, wrong {self.wrong}, duplicated {self.duplicated}, dead letters "
            f"{self.dead_letters}, longest stall {self.longest_stall:.1f} s (at {self.stall_at}), "
            f"{self.inputs} inputs"
        )


def tally(topics: Topics, *, hold_until: float = 0.0) -> Tally:
    """Read the input, the decisions and the dead letters of `topics` to their ends and compare.

    `hold_until` (epoch seconds) is when the worker could be expected to move again (e.g. when
    a partition's in-sync replicas are back to min.insync.replicas): waiting before it is no stall.
    """
    s = topics.settings
    conf = topics.client_conf(isolation_level="read_committed")
    codec = AvroCodec()
    inputs: dict[tuple[int, int], tuple[str, str, float]] = {}
    for r in drain(conf, s.input_topic, seconds=120):
        listing = codec.decode_listing(r.value)
        inputs[(r.partition, r.offset)] = (
            listing.event_id,
            listing.listing_id,
            (r.timestamp_ms or 0) / 1000,
        )
    first_decided: dict[tuple[int, int], float] = {}
    decisions = wrong = 0
    for r in drain(conf, s.approved_topic, seconds=120):
        d = codec.decode_decision(r.value)
        assert d.source is not None
        key = (d.source.partition, d.source.offset)
        decisions += 1
        want = inputs.get(key)
        if want is None or (d.event_id, d.listing_id) != want[:2]:
            wrong += 1
            continue
        at = d.decided_at_ms / 1000
        first_decided[key] = min(at, first_decided.get(key, at))
    dead_letters = len(drain(conf, s.dlq_topic, seconds=120))
    stall, where = _longest_stall(inputs, first_decided, hold_until)
    return Tally(len(inputs), decisions, len(first_decided), wrong, dead_letters, stall, where)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 10) % 10}"


def _longest_stall(
    inputs: dict[tuple[int, int], tuple[str, str, float]],
    decided: dict[tuple[int, int], float],
    hold_until: float,
) -> tuple[float, str]:
    by_partition: dict[int, list[int]] = defaultdict(list)
    for partition, offset in inputs:
        by_partition[partition].append(offset)
    longest, where = 0.0, "-"
    for partition, offsets in by_partition.items():
        latest = 0.0  # the latest decision of an earlier input of this partition
        for offset in sorted(offsets):
            at = decided.get((partition, offset))
            if at is None:
                continue  # lost: counted as such, not as a stall
            due = max(inputs[(partition, offset)][2], latest, hold_until)
            if at - due > longest:
                longest, where = at - due, f"{partition}@{offset} {_clock(due)}-{_clock(at)}"
            latest = max(latest, at)
    return round(longest, 1), where
