"""Category-path normalisation and the longest-prefix cluster index, built once per policy.

Ranking when several clusters match one listing: the longest matching path prefix wins. A
`category_ids` match counts as a prefix as long as the listing's whole path (an id names the exact
category, so nothing can be more specific than it); equal lengths go to the cluster listed first.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from consumer.policy.model import Cluster

#: Keys longer than this (category id plus path, in characters) are looked up but not memoised:
#: real category paths are far shorter, and a memoised key keeps its strings alive.
MEMO_KEY_CHARS = 256
#: Estimated memory the memo may hold before it is cleared; at about 500 bytes per typical
#: entry that is some 30,000 categories, more than a large marketplace has.
MEMO_BYTES = 16 * 1024 * 1024
#: Estimated cost of one entry besides its characters: dict slot, key and path tuples, str
#: headers (CPython 3.11: str 49-80 bytes, tuple 40 + 8 per item). Characters count 4 bytes each,
#: the most a str spends on one.
_ENTRY_BYTES = 300
_SEGMENT_BYTES = 80


def normalise_segment(segment: str) -> str:
    """NFKC, casefold, trim and collapse inner whitespace: fullwidth letters, case and spacing vanish.

    NFKC runs again after casefold because casefolding can leave a string un-normalised.
    """
    folded = unicodedata.normalize("NFKC", segment).casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKC", folded)
    return " ".join(folded.split())


def normalise_path(path: Iterable[str]) -> tuple[str, ...]:
    return tuple(normalise_segment(segment) for segment in path)


@dataclass(frozen=True, slots=True)
class ClusterMatch:
    """Which cluster a listing falls in and why: `prefix` as written in the policy, or by id."""

    cluster: str
    prefix: tuple[str, ...] | None
    by_id: bool


@dataclass(frozen=True, slots=True)
class _Entry:
    order: int
    match: ClusterMatch


class _Memo:
    """Cluster names by (category_id, raw path), bounded by estimated bytes, not entries."""

    __slots__ = ("bytes", "entries")

    def __init__(self) -> None:
        self.entries: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self.bytes = 0


@dataclass(frozen=True, slots=True)
class TaxonomyIndex:
    """Dicts keyed by normalised prefix tuple and by category id; the first cluster listed keeps a key.

    A lookup walks the listing's own prefixes from longest to shortest, so its cost grows with the
    depth of the listing's path, not with the number of clusters or paths in the policy.
    """

    by_prefix: dict[tuple[str, ...], _Entry]
    by_id: dict[str, _Entry]
    max_depth: int
    #: Results by (category_id, raw path). A marketplace has a bounded set of categories, so after
    #: warm-up a lookup is one dict hit instead of Unicode normalisation of every segment.
    _memo: _Memo = field(default_factory=_Memo, repr=False, compare=False)

    @classmethod
    def build(cls, clusters: Sequence[Cluster]) -> TaxonomyIndex:
        by_prefix: dict[tuple[str, ...], _Entry] = {}
        by_id: dict[str, _Entry] = {}
        for order, cluster in enumerate(clusters):
            for path in cluster.category_paths:
                entry = _Entry(order, ClusterMatch(cluster.name, path, by_id=False))
                by_prefix.setdefault(normalise_path(path), entry)
            for category_id in cluster.category_ids:
                by_id.setdefault(category_id, _Entry(order, ClusterMatch(cluster.name, None, True)))
        depth = max((len(key) for key in by_prefix), default=0)
        return cls(by_prefix, by_id, depth)

    def lookup(self, category_id: str, category_path: Sequence[str]) -> ClusterMatch | None:
        """The winning match for a listing, or None when no cluster claims it."""
        by_path: _Entry | None = None
        length = 0
        if self.by_prefix and category_path:
            path = normalise_path(category_path[: self.max_depth])
            for length in range(len(path), 0, -1):
                by_path = self.by_prefix.get(path[:length])
                if by_path is not None:
                    break
        by_id = self.by_id.get(category_id)
        if by_id is None:
            return None if by_path is None else by_path.match
        # The id match ranks as a full-length prefix; only a full-length path from an earlier
        # cluster beats it.
        if by_path is not None and length == len(category_path) and by_path.order < by_id.order:
            return by_path.match
        return by_id.match

    def cluster_of(self, category_id: str, category_path: tuple[str, ...]) -> str | None:
        """The cluster name, memoised (a pure function of its arguments, so the memo is invisible)."""
        key = (category_id, category_path)
        memo = self._memo
        entries = memo.entries
        if key in entries:
            return entries[key]
        match = self.lookup(category_id, category_path)
        cluster = None if match is None else match.cluster
        chars = len(category_id) + sum(map(len, category_path))
        if chars > MEMO_KEY_CHARS:
            return cluster  # a key this long is no real category; do not keep it alive
        cost = _ENTRY_BYTES + _SEGMENT_BYTES * len(category_path) + 4 * chars
        if memo.bytes + cost > MEMO_BYTES:
            entries.clear()  # bounded memory against a stream of ever-new categories
            memo.bytes = 0
        entries[key] = cluster
        memo.bytes += cost
        return cluster

    @property
    def memo_bytes(self) -> int:
        """Estimated memory held by the memo (at most MEMO_BYTES)."""
        return self._memo.bytes
