"""The one seam between the policy engine and its users: what the pipeline, explain and impact
need from "the policy in force", whether it is one file (CompiledPolicy) or a set of layers
(consumer.policy.sets.CompiledSet)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from consumer.core.records import Listing, ListingRow, Verdict

if TYPE_CHECKING:
    from consumer.policy.compile import CompiledPolicy


class Enforced(Protocol):
    """A compiled policy or policy set. `scan` says what the verdict depends on as a hashable
    key and `verdict_of` is a pure function of that key, so callers keep one verdict per key.

    `layers` are the policy files enforced, in order: a single policy is its own only layer.
    """

    @property
    def policy_id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def layers(self) -> tuple[CompiledPolicy, ...]: ...

    def scan(self, listing: Listing | ListingRow, as_of_ms: int | None = None) -> Hashable: ...

    def verdict_of(self, key: Hashable) -> Verdict: ...
