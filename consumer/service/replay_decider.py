"""What replay does to each decided batch: drop dead letters (the live worker sent them) and, with
a baseline, unchanged decisions; add the `ic.replay` header; spend rate tokens; report progress."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consumer.codec import AvroCodec
from consumer.core.impact import changed
from consumer.core.pipeline import DeadLettered, Decided, Decider, Result
from consumer.core.records import Provenance, RawRecord, Verdict
from consumer.policy import CompiledPolicy
from consumer.policy.evaluate import VerdictKey, scan, verdict_of
from consumer.service.rate import TokenBucket

REPLAY_HEADER = "ic.replay"


@dataclass(slots=True)
class ReplayCounts:
    """What the replay read and left out (published decisions are in the worker's RunSummary)."""

    read: int = 0
    unchanged: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)


class ReplayDecider(Decider):
    """The worker's Decider, then: drop dead letters and (with a baseline) unchanged decisions,
    add the `ic.replay` header, spend rate tokens, and report progress."""

    __slots__ = ("_baseline", "_baseline_verdicts", "_bucket", "_header", "_progress", "counts")

    def __init__(
        self,
        codec: AvroCodec,
        policy: CompiledPolicy,
        provenance: Provenance,
        *,
        baseline: CompiledPolicy | None = None,
        bucket: TokenBucket | None = None,
        progress: Callable[[int], object] = lambda _n: None,
    ) -> None:
        super().__init__(codec, policy, provenance)
        self._baseline = baseline
        self._baseline_verdicts: dict[VerdictKey, Verdict] = {}
        self._bucket = bucket
        self._header = (REPLAY_HEADER, (provenance.replay_run or "").encode())
        self._progress = progress
        self.counts = ReplayCounts()

    def decide(self, records: Sequence[RawRecord], now_ms: int) -> list[Result]:
        counts = self.counts
        kept: list[Result] = []
        for result in super().decide(records, now_ms):
            if isinstance(result, DeadLettered):
                counts.dead_letters[result.code] += 1
                continue
            if self._baseline is not None and not self._differs(result):
                counts.unchanged += 1
                continue
            kept.append(result._replace(headers=(*result.headers, self._header)))
        counts.read += len(records)
        if self._bucket is not None:
            self._bucket.spend(len(kept))
        self._progress(len(records))
        return kept

    def _differs(self, result: Decided) -> bool:
        """Whether the baseline policy decides this listing otherwise (decoded a second time)."""
        baseline = self._baseline
        assert baseline is not None
        row = self.codec.read_listing(result.record.value)[0]
        key = scan(row, baseline, self._verdicts.writer.provenance.as_of_ms)
        old = self._baseline_verdicts.get(key)
        if old is None:
            if len(self._baseline_verdicts) >= 4096:  # hostile currencies only
                self._baseline_verdicts.clear()
            old = self._baseline_verdicts[key] = verdict_of(key, baseline)
        return changed(old, result.verdict)
