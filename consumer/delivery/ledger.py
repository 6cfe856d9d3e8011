"""Per-partition record of acknowledged work; answers "which offset may be committed".

Work is tracked in chunks: the records of one partition from one consumed batch. A chunk is done
when each of its records' outputs (decision or dead letter) is acknowledged by the broker. The
committable offset of a partition is one past the last record of its longest run of done chunks,
so nothing is committed past undelivered work. No I/O here: the worker calls these verbs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from consumer.core.records import PartitionKey

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Chunk(Generic[T]):
    """Records first_offset..last_offset of one partition; `payload` rides along (e.g. metric tallies)."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    remaining: int
    payload: T

    def ack(self) -> None:
        """One output of this chunk was acknowledged."""
        self.remaining -= 1

    @property
    def done(self) -> bool:
        return self.remaining <= 0


class OffsetRegressionError(ValueError):
    """A chunk that starts at or before work already tracked: a bug, never silently accepted."""

    def __init__(self, tp: PartitionKey, offset: int, seen: int) -> None:
        self.tp = tp
        self.offset = offset
        self.seen = seen
        msg = f"{tp[0]}[{tp[1]}]: chunk starts at {offset}, but {seen} is already tracked"
        super().__init__(msg)


class OffsetLedger(Generic[T]):
    """Open chunks in consumption order; pop the done prefix of each partition to commit."""

    def __init__(self) -> None:
        self._chunks: dict[PartitionKey, deque[Chunk[T]]] = {}
        self._high: dict[PartitionKey, int] = {}

    def open(
        self, topic: str, partition: int, first: int, last: int, count: int, payload: T
    ) -> Chunk[T]:
        tp = (topic, partition)
        seen = self._high.get(tp)
        if seen is not None and first <= seen:
            raise OffsetRegressionError(tp, first, seen)
        self._high[tp] = last
        chunk = Chunk(topic, partition, first, last, count, payload)
        self._chunks.setdefault(tp, deque()).append(chunk)
        return chunk

    def pop_done(self) -> tuple[dict[PartitionKey, int], list[Chunk[T]]]:
        """Remove each partition's leading done chunks; return next-offsets to commit and the chunks."""
        commit: dict[PartitionKey, int] = {}
        finished: list[Chunk[T]] = []
        for tp, queue in self._chunks.items():
            while queue and queue[0].done:
                chunk = queue.popleft()
                finished.append(chunk)
                commit[tp] = chunk.last_offset + 1  # Kafka commits the next offset to read
        return commit, finished

    def forget(self, partitions: Iterable[PartitionKey]) -> list[Chunk[T]]:
        """Drop tracking for partitions we no longer own; returns their unfinished chunks."""
        dropped: list[Chunk[T]] = []
        for tp in partitions:
            dropped.extend(self._chunks.pop(tp, ()))
            self._high.pop(tp, None)
        return dropped

    def in_flight(self, partitions: Iterable[PartitionKey] | None = None) -> int:
        """Outputs produced but not yet acknowledged, for the given partitions or all."""
        keys = self._chunks.keys() if partitions is None else partitions
        return sum(c.remaining for tp in keys for c in self._chunks.get(tp, ()))

    def pending(self, partitions: Iterable[PartitionKey] | None = None) -> bool:
        """True while any chunk (of the given partitions, or any) is not yet popped."""
        keys = self._chunks.keys() if partitions is None else partitions
        return any(self._chunks.get(tp) for tp in keys)
