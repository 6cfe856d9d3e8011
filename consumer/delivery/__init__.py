"""Delivery guarantees behind one protocol: the loop hands results over and asks what is durable.

Each mode owns the producer, the record of unfinished work, commits, and what revocation, loss
and shutdown mean for it; the loop does not branch on the mode.

May import: core, kafka, config, telemetry, errors, and confluent_kafka for the producer's transactional
API, which is what a delivery mode is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import NamedTuple, Protocol

from consumer.core.pipeline import Result, Tally
from consumer.core.records import PartitionKey, RawRecord

#: The first and last offset of a partition's records in one batch.
Span = tuple[int, int]


class Delivery(Protocol):
    """What the worker's loop asks of a delivery guarantee."""

    def submit(
        self, results: Sequence[Result], consumed: Mapping[PartitionKey, Span] | None = None
    ) -> None:
        """Produce the outputs of one decided batch (in input order).

        `consumed` (the batch's spans) is what the committed offsets will cover: also records
        that gave no result (replay drops unchanged listings and dead letters). None: the
        results' own offsets.
        """

    def service(self, owned: Set[PartitionKey]) -> list[Tally]:
        """Serve delivery reports, re-send, commit as the mode does; the work that became durable."""

    def in_flight(self) -> int:
        """Outputs produced and not yet durable (backpressure reads this)."""

    def idle(self) -> bool:
        """Nothing produced is still waiting to become durable."""

    def revoke(
        self, partitions: Set[PartitionKey], owned: Set[PartitionKey], timeout: float
    ) -> list[Tally]:
        """Make these partitions' work durable (or give it up cleanly) before they are handed over."""

    def lose(self, partitions: Set[PartitionKey], owned: Set[PartitionKey]) -> None:
        """These partitions already belong to someone else: commit nothing for them."""

    def shutdown(self, owned: Set[PartitionKey], timeout: float) -> list[Tally]:
        """Make what can be made durable within `timeout`; the rest is re-processed later."""

    def close(self) -> None:
        """Flush and release the producer."""


class Part(NamedTuple):
    """One partition's share of a batch, the unit of a chunk: its offsets and its results (in
    input order; none when every record of it gave nothing to produce)."""

    first: int
    last: int
    results: list[Result]


def spans(records: Iterable[RawRecord]) -> dict[PartitionKey, Span]:
    """Each partition's first and last offset in a batch (a partition's records are in order)."""
    out: dict[PartitionKey, Span] = {}
    for r in records:
        key = (r.topic, r.partition)
        span = out.get(key)
        out[key] = (r.offset, r.offset) if span is None else (span[0], r.offset)
    return out


def by_partition(
    results: Sequence[Result], consumed: Mapping[PartitionKey, Span] | None = None
) -> dict[PartitionKey, Part]:
    """Results grouped by input partition, over the offsets `consumed` (default: the results')."""
    groups: dict[PartitionKey, list[Result]] = {}
    for result in results:
        r = result.record
        groups.setdefault((r.topic, r.partition), []).append(result)
    parts: dict[PartitionKey, Part] = {}
    for key, group in groups.items():
        first, last = group[0].record.offset, group[-1].record.offset
        if consumed is not None and key in consumed:
            first, last = min(first, consumed[key][0]), max(last, consumed[key][1])
        parts[key] = Part(first, last, group)
    for key, (first, last) in (consumed or {}).items():
        if key not in parts:
            parts[key] = Part(first, last, [])
    return parts
