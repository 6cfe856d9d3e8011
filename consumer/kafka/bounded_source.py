"""Replay's Source: its own group's subscription, read from a bounded range to its end.

A GroupSource does the reading; this wrapper adds where each partition starts and ends, and says
when the run is done. Composition, not inheritance: it uses the group source's public verbs and
hears partition-EOF events through the `on_eof` hook it gives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from consumer.core.records import PartitionKey, RawRecord
from consumer.kafka.group_source import GroupSource
from consumer.kafka.membership import GroupMember
from consumer.kafka.ranges import METADATA_TIMEOUT, Bounds
from consumer.kafka.source import JOIN_GRACE, Rebalanced
from consumer.telemetry.health import Health
from consumer.telemetry.throttle import Warnings


class BoundedSource:
    """The replay group's subscription, read from `starts` to `ends` (captured when replay began).

    A partition the group has committed offsets for continues from them (a resumed run); one it
    has not starts at `starts`. A partition is finished at its end offset (a record at or past it,
    or the partition-EOF event at the high watermark): it is paused, and its records past the end
    are never handed out. The loop stops once `done()`. `gate`, when given, says how many
    records may be read now (the --rate token bucket).
    """

    def __init__(
        self,
        member: GroupMember,
        bounds: Bounds,
        health: Health,
        warnings: Warnings,
        *,
        gate: Callable[[int], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        group: str | None = None,
    ) -> None:
        self._group = GroupSource(
            member, bounds.topic, health, warnings, on_eof=self._end_of_partition, group=group
        )
        self._bounds = bounds
        self._gate = gate
        self._monotonic = monotonic
        #: Since when this member holds no partition (at start, or after all were moved away).
        self._empty_since = monotonic()
        self._assigned: set[int] = set()
        self._finished: set[int] = set()

    def check_topic(self) -> None:
        self._group.check_topic()

    def subscribe(self, on_assign: Rebalanced, on_revoke: Rebalanced, on_lost: Rebalanced) -> None:
        def assigned(keys: list[PartitionKey]) -> None:
            self._group.assign_at(self._starts(keys))
            on_assign(keys)
            self._assigned.update(p for _topic, p in keys)
            for _topic, p in keys:
                start, end = self._bounds.ranges.get(p, (0, 0))
                if start >= end:
                    self._finish(p)

        def revoked(keys: list[PartitionKey]) -> None:
            on_revoke(keys)
            self._forget(keys)

        def lost(keys: list[PartitionKey]) -> None:
            on_lost(keys)
            self._forget(keys)

        self._group.subscribe(assigned, revoked, lost)

    def _starts(self, keys: list[PartitionKey]) -> dict[PartitionKey, int]:
        """Where each newly assigned partition starts: the run's committed offset, else `starts`."""
        committed = self._group.committed(keys, METADATA_TIMEOUT)
        ranges = self._bounds.ranges
        return {
            key: offset if offset >= 0 else ranges.get(key[1], (0, 0))[0]
            for key, offset in committed.items()
        }

    def _forget(self, keys: list[PartitionKey]) -> None:
        gone = {p for _topic, p in keys}
        self._assigned -= gone
        self._finished -= gone
        if not self._assigned:
            self._empty_since = self._monotonic()

    def _finish(self, partition: int) -> None:
        if partition in self._assigned and partition not in self._finished:
            self._finished.add(partition)
            self._group.pause([(self._bounds.topic, partition)])

    def _end_of_partition(self, key: PartitionKey, offset: int) -> None:
        """A partition-EOF event: the partition is finished once it is at or past its end."""
        if offset >= self._bounds.ranges.get(key[1], (0, 0))[1]:
            self._finish(key[1])

    def poll(self, batch_size: int, timeout: float) -> list[RawRecord]:
        if self._gate is not None:
            batch_size = self._gate(batch_size)
            if batch_size <= 0:
                time.sleep(timeout)  # the token bucket is empty: wait one poll interval
                return []
        # A partition-EOF event finishes its partition inside the group's poll, after the records
        # before it in the same batch: those are in range, so only earlier finishes drop records.
        finished = frozenset(self._finished)
        records = self._group.poll(batch_size, timeout)
        ranges = self._bounds.ranges
        kept: list[RawRecord] = []
        for r in records:
            if r.partition in finished:
                continue
            if r.offset >= ranges.get(r.partition, (0, 0))[1]:
                self._finish(r.partition)
                continue
            kept.append(r)
        return kept

    def pause(self, keys: Iterable[PartitionKey]) -> None:
        self._group.pause(keys)

    def resume(self, keys: Iterable[PartitionKey]) -> None:
        """Never resume a finished partition (releasing backpressure would fetch past its end)."""
        self._group.resume(k for k in keys if k[1] not in self._finished)

    def seek(self, offsets: Mapping[PartitionKey, int]) -> None:
        self._group.seek(offsets)

    def done(self) -> bool:
        """Every assigned partition read to its end; or no partition held for JOIN_GRACE (more
        members than partitions, or this member's partitions all moved to others)."""
        if not self._assigned:
            return self._monotonic() - self._empty_since > JOIN_GRACE
        return self._assigned <= self._finished

    def close(self) -> None:
        self._group.close()
