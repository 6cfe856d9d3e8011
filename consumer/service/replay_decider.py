"""What replay does to each decided batch: drop dead letters (the live worker sent them) and, with
a baseline, unchanged decisions; add the `ic.replay` header; spend rate tokens; report progress."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consumer.codec import AvroCodec
from consumer.core.judgement import VerdictCache, changed
from consumer.core.pipeline import DeadLettered, Decided, Decider, Result
from consumer.core.records import Provenance, RawRecord, Verdict
from consumer.policy.enforced import Enforced
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
    add the `ic.replay` header, spend rate tokens, and report progress.

    The baseline runs as the Decider's shadow policy (nothing encoded for it), so each listing is
    decoded once and "unchanged" is judgement.changed on the two verdicts. The shadow verdict is
    stripped from what `decide` returns: a replay's metrics count no shadow series.
    """

    __slots__ = ("_baseline", "_bucket", "_changes", "_header", "_progress", "counts")

    def __init__(
        self,
        codec: AvroCodec,
        policy: Enforced,
        provenance: Provenance,
        *,
        baseline: Enforced | None = None,
        bucket: TokenBucket | None = None,
        progress: Callable[[int], object] = lambda _n: None,
    ) -> None:
        super().__init__(codec, policy, provenance, shadow=baseline, shadow_output="none")
        self._baseline = baseline
        #: changed() per pair of verdict objects (shared by every decision with that verdict);
        #: each entry holds both objects, so the ids in its key cannot be reused while it exists.
        self._changes: VerdictCache[tuple[int, int], tuple[Verdict, Verdict, bool]]
        self._changes = VerdictCache()
        self._bucket = bucket
        self._header = (REPLAY_HEADER, (provenance.replay_run or "").encode())
        self._progress = progress
        self.counts = ReplayCounts()

    def replaced(self, policy: Enforced, shadow: Enforced | None) -> Decider:
        """A replay has no shadow policy of its own (its shadow is the baseline): `shadow` must be
        None. Another policy gives a ReplayDecider with the same baseline, rate, progress and
        counts, keeping the baseline's verdict cache."""
        if shadow is not None:
            msg = "replay: a shadow policy cannot run beside the baseline"
            raise ValueError(msg)
        if policy is self.policy:
            return self
        out = ReplayDecider(
            self.codec,
            policy,
            self._verdicts.writer.provenance,
            bucket=self._bucket,
            progress=self._progress,
        )
        out._baseline, out._shadow, out.counts = self._baseline, self._shadow, self.counts
        out._changes = self._changes
        return out

    def decide(self, records: Sequence[RawRecord], now_ms: int) -> list[Result]:
        counts = self.counts
        compare = self._baseline is not None
        header = self._header
        kept: list[Result] = []
        for result in super().decide(records, now_ms):
            if isinstance(result, DeadLettered):
                counts.dead_letters[result.code] += 1
                continue
            if compare and not self._differs(result):
                counts.unchanged += 1
                continue
            kept.append(result._replace(headers=(*result.headers, header), shadow=None))
        counts.read += len(records)
        if self._bucket is not None:
            self._bucket.spend(len(kept))
        self._progress(len(records))
        return kept

    def _differs(self, result: Decided) -> bool:
        """Whether the baseline decides this listing otherwise (judgement.changed)."""
        shadowed = result.shadow
        if shadowed is None:
            return True  # the baseline's verdict could not be encoded: publish rather than drop
        new, old = result.verdict, shadowed.verdict
        pair = (id(new), id(old))
        found = self._changes.get(pair)
        if found is None:
            found = self._changes.put(pair, (new, old, changed(old, new)))
        return found[2]
