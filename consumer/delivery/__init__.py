"""Delivery guarantees behind one protocol: the loop hands results over and asks what is durable.

Each mode owns the producer, the record of unfinished work, commits, and what revocation, loss
and shutdown mean for it; the loop does not branch on the mode.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Protocol

from consumer.pipeline import Result, Tally

Key = tuple[str, int]


class Delivery(Protocol):
    """What the worker's loop asks of a delivery guarantee."""

    def submit(self, results: Sequence[Result]) -> None:
        """Produce the outputs of one decided batch (in input order)."""

    def service(self, owned: Set[Key]) -> list[Tally]:
        """Serve delivery reports, re-send, commit as the mode does; the work that became durable."""

    def in_flight(self) -> int:
        """Outputs produced and not yet durable (backpressure reads this)."""

    def idle(self) -> bool:
        """Nothing produced is still waiting to become durable."""

    def revoke(self, partitions: Set[Key], owned: Set[Key], timeout: float) -> list[Tally]:
        """Make these partitions' work durable (or give it up cleanly) before they are handed over."""

    def lose(self, partitions: Set[Key], owned: Set[Key]) -> None:
        """These partitions already belong to someone else: commit nothing for them."""

    def shutdown(self, owned: Set[Key], timeout: float) -> list[Tally]:
        """Make what can be made durable within `timeout`; the rest is re-processed later."""

    def close(self) -> None:
        """Flush and release the producer."""


def by_partition(results: Sequence[Result]) -> dict[Key, list[Result]]:
    """Results grouped by input partition, each group in input order: the unit of a chunk."""
    groups: dict[Key, list[Result]] = {}
    for result in results:
        r = result.record
        groups.setdefault((r.topic, r.partition), []).append(result)
    return groups
