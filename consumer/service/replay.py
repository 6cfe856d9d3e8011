"""`import-closure replay`: re-decide the listings still on the input topic and publish the decisions.

A bounded job, not a second live worker: the worker's own loop, pipeline and Delivery run on a
BoundedSource in the group `<group_id>.replay.<RUN>` (so the live group's offsets never move),
from --from (or where an earlier run of the same name stopped) to the end offsets captured at
start (or --to). Decisions say mode REPLAY, the run and the as-of time, carry `ic.replay: RUN`,
and keep deterministic ids. Dead letters are counted, not sent again: the live worker sent them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from prometheus_client import CollectorRegistry
from tqdm import tqdm

from consumer import config
from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.impact import changed
from consumer.core.pipeline import DeadLettered, Decided, Decider, Result
from consumer.core.records import Provenance, RawRecord, Verdict
from consumer.core.summary import RunSummary
from consumer.errors import ConfigError
from consumer.kafka.bounded import BoundedSource, plan_range
from consumer.kafka.callbacks import ClientEvents
from consumer.kafka.clients import build_producer, build_replay_consumer
from consumer.policy import CompiledPolicy
from consumer.policy.evaluate import VerdictKey, scan, verdict_of
from consumer.service.assembly import build_codec, build_delivery, build_outputs, new_registry
from consumer.service.health import Health, HealthServer
from consumer.service.metrics import Metrics
from consumer.service.worker import Telemetry, Worker

log = logging.getLogger(__name__)

REPLAY_HEADER = "ic.replay"


class TokenBucket:
    """--rate: at most `rate` decisions a second, in bursts of at most a tenth of a second's worth.

    The source reads no more records than there are tokens; the decider spends one per
    decision it publishes, so what is published never outruns the rate.
    """

    __slots__ = ("_capacity", "_last", "_monotonic", "_rate", "_tokens")

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate / 10)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._last = monotonic()

    def available(self, want: int) -> int:
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        return min(want, int(self._tokens))

    def spend(self, n: int) -> None:
        self._tokens -= n


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


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    name: str
    from_ms: int | None = None
    to_ms: int | None = None
    as_of_ms: int | None = None
    baseline: CompiledPolicy | None = None
    rate: float | None = None
    http_port: int | None = None
    progress: bool = True


@dataclass(frozen=True, slots=True)
class ReplayResult:
    name: str
    group: str
    summary: RunSummary
    counts: ReplayCounts
    seconds: float

    def summary_text(self) -> str:
        s, c = self.summary, self.counts
        published = s.events
        rate = c.read / self.seconds if self.seconds > 0 else 0.0
        return "\n".join(
            [
                f"replay {self.name} (group {self.group}): read {c.read:,} listings in "
                f"{self.seconds:.1f}s ({rate:,.0f}/s), published {published:,} decisions, "
                f"unchanged {c.unchanged:,}, dead letters {sum(c.dead_letters.values()):,} (not re-sent)",
                "by outcome: " + _counts(s.outcomes),
                "by cluster: " + _counts(s.clusters),
                "rejections by reason: " + _counts(s.reasons),
                "dead letters by error code: " + _counts(c.dead_letters),
            ]
        )


def _counts(counter: Counter[str]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def run_replay(
    settings: Settings, policy: CompiledPolicy, stop: threading.Event, options: ReplayOptions
) -> ReplayResult:
    """Run one replay process to the end of its share of the range; see the module docstring."""
    replay = config.replay_settings(settings, options.name)
    registry = new_registry() if options.http_port is not None else CollectorRegistry()
    metrics = Metrics(registry)
    metrics.set_policy("live", policy.policy_id, policy.version, time.time())
    health = Health(stall_timeout=settings.stall_timeout)
    server = None
    if options.http_port is not None:
        server = HealthServer(settings.http_host, options.http_port, registry, health)
        server.start()
    health.policy_loaded = True
    events = ClientEvents(metrics, health)
    callbacks = {"error_cb": events.on_error, "logger": events.logger}
    consumer = build_replay_consumer(replay, **callbacks)
    producer = build_producer(replay, **callbacks)
    started = time.monotonic()
    bar: tqdm[NoReturn] | None = None
    running = False  # once the worker runs, it closes the consumer
    try:
        bounds = plan_range(
            consumer, settings.input_topic, from_ms=options.from_ms, to_ms=options.to_ms
        )
        codec = build_codec(replay, stop)
        if codec is None:
            raise ConfigError("stopped while waiting for the schema registry")
        bar = progress_bar = tqdm(
            total=bounds.total,
            unit="listing",
            desc=f"replay {options.name}",
            disable=not options.progress,
        )
        bucket = TokenBucket(options.rate) if options.rate else None
        decider = ReplayDecider(
            codec,
            policy,
            Provenance("REPLAY", options.name, options.as_of_ms),
            baseline=options.baseline,
            bucket=bucket,
            progress=progress_bar.update,
        )
        outputs = build_outputs(replay, producer, events)
        source = BoundedSource(
            consumer,
            bounds,
            events,
            health,
            gate=None if bucket is None else bucket.available,
        )
        worker = Worker(
            replay,
            source,
            build_delivery(replay, consumer, producer, outputs, events, metrics),
            decider,
            Telemetry(metrics, health, events),
            stop,
        )
        running = True
        summary = worker.run()
    finally:
        if not running:
            consumer.close()
        if bar is not None:
            bar.close()
        producer.flush(5)
        if server is not None:
            server.stop()
    return ReplayResult(
        options.name, replay.group_id, summary, decider.counts, time.monotonic() - started
    )
