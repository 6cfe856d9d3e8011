"""The Source protocol: what the worker's loop asks of where its records come from.

Two implementations: GroupSource (kafka/group_source.py), the live consumer group's
subscription, and BoundedSource (kafka/bounded_source.py), replay's range of offsets read by its
own group. The loop depends only on this protocol, and its unit tests on fakes of it.

Partitions cross this seam as PartitionKeys and records as RawRecords: a source owns the client
boundary, rebalance callbacks included (it converts the client's partition lists and wraps any
exception raised by the loop's callbacks into one RebalanceError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol, runtime_checkable

from consumer.core.records import PartitionKey, RawRecord

#: How long a member waits for its first partition before it concludes there is none for it
#: (more members than partitions, or all of its partitions moved to others); seconds.
JOIN_GRACE: Final = 30.0
#: A rebalance callback of the loop: the partitions assigned, revoked or lost, in the client's order.
Rebalanced = Callable[[list[PartitionKey]], None]


@runtime_checkable
class Source(Protocol):
    """What the worker's loop calls on its input."""

    def check_topic(self) -> None:
        """Raise ConfigError when the input topic does not exist (instead of idling silently)."""

    def subscribe(self, on_assign: Rebalanced, on_revoke: Rebalanced, on_lost: Rebalanced) -> None:
        """Join; the callbacks run inside `poll`, on the loop's thread."""

    def poll(self, batch_size: int, timeout: float) -> list[RawRecord]:
        """Up to `batch_size` records, waiting at most `timeout` seconds for the first."""

    def pause(self, keys: Iterable[PartitionKey]) -> None:
        """Stop fetching these partitions (backpressure, a held batch, shutdown)."""

    def resume(self, keys: Iterable[PartitionKey]) -> None:
        """Fetch these partitions again."""

    def seek(self, offsets: Mapping[PartitionKey, int]) -> None:
        """Fetch these partitions again from these offsets (a batch that must be decided later)."""

    def done(self) -> bool:
        """Whether everything this source was asked to read is read; a subscription never is."""

    def close(self) -> None:
        """Leave the group and release the client."""
