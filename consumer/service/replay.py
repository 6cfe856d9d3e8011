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
from dataclasses import dataclass
from typing import NoReturn

from prometheus_client import CollectorRegistry
from tqdm import tqdm

from consumer import config
from consumer.config.settings import Settings
from consumer.core.records import Provenance
from consumer.core.summary import RunSummary
from consumer.errors import ConfigError
from consumer.kafka.bounded import BoundedSource, plan_range
from consumer.kafka.callbacks import ClientEvents
from consumer.kafka.clients import build_producer, build_replay_consumer
from consumer.policy import CompiledPolicy
from consumer.service.assembly import build_codec, build_delivery, build_outputs, new_registry
from consumer.service.health import Health, HealthServer
from consumer.service.metrics import Metrics
from consumer.service.rate import TokenBucket
from consumer.service.replay_decider import ReplayCounts, ReplayDecider
from consumer.service.worker import Telemetry, Worker

log = logging.getLogger(__name__)


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
