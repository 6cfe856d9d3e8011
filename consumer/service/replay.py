"""`import-closure replay`: re-decide the listings still on the input topic and publish the decisions.

A bounded job, not a second live worker: the worker's own loop, pipeline and Delivery run on a
BoundedSource in the group `<group_id>.replay.<RUN>` (so the live group's offsets never move),
from --from (or where an earlier run of the same name stopped) to the end offsets captured at
start (or --to). Decisions say mode REPLAY, the run and the as-of time, carry `ic.replay: RUN`,
and keep deterministic ids. Dead letters are counted, not sent again: the live worker sent them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import NoReturn

from tqdm import tqdm

from consumer import config
from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.records import Provenance
from consumer.core.summary import RunSummary
from consumer.errors import ConfigError
from consumer.kafka.bounded_source import BoundedSource
from consumer.kafka.callbacks import ClientCallbacks
from consumer.kafka.clients import Consumer, build_replay_consumer
from consumer.kafka.membership import GroupMember
from consumer.kafka.ranges import Bounds, plan_range
from consumer.kafka.source import Source
from consumer.policy.enforced import Enforced
from consumer.service.assembly import assemble
from consumer.service.rate import TokenBucket
from consumer.service.replay_decider import ReplayCounts, ReplayDecider
from consumer.service.worker import Worker
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    name: str
    from_ms: int | None = None
    to_ms: int | None = None
    as_of_ms: int | None = None
    baseline: Enforced | None = None
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
                *s.count_lines(dead_letters=c.dead_letters),
            ]
        )


class _Replay:
    """replay's Job: its own group over a bounded range, one fixed policy, a progress bar, and
    HTTP only when --http-port asks for it."""

    def __init__(self, settings: Settings, policy: Enforced, options: ReplayOptions) -> None:
        self.settings = config.replay_settings(settings, options.name)
        self.http_port = options.http_port
        self._policy = policy
        self._options = options
        self._bucket = TokenBucket(options.rate) if options.rate else None
        self._bounds = Bounds(settings.input_topic, {})
        self._bar: tqdm[NoReturn] | None = None
        self.counts = ReplayCounts()
        self.started = time.monotonic()

    def prepare(self, metrics: Metrics) -> None:
        policy = self._policy
        metrics.set_policy("live", policy.policy_id, policy.version, time.time())

    def consumer(self, callbacks: ClientCallbacks) -> Consumer:
        return build_replay_consumer(self.settings, **callbacks.clients())

    def source(self, member: GroupMember, health: Health, warnings: Warnings) -> Source:
        options = self._options
        self.started = time.monotonic()
        self._bounds = plan_range(
            member.current(),
            self.settings.input_topic,
            from_ms=options.from_ms,
            to_ms=options.to_ms,
        )
        bucket = self._bucket
        gate = None if bucket is None else bucket.available
        return BoundedSource(
            member, self._bounds, health, warnings, gate=gate, group=self.settings.group_id
        )

    def decider(self, codec: AvroCodec) -> ReplayDecider:
        options = self._options
        self._bar = bar = tqdm(
            total=self._bounds.total,
            unit="listing",
            desc=f"replay {options.name}",
            disable=not options.progress,
        )
        decider = ReplayDecider(
            codec,
            self._policy,
            Provenance("REPLAY", options.name, options.as_of_ms),
            baseline=options.baseline,
            bucket=self._bucket,
            progress=bar.update,
        )
        self.counts = decider.counts
        return decider

    def run(self, worker: Worker) -> RunSummary:
        return worker.run()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_replay(
    settings: Settings, policy: Enforced, stop: threading.Event, options: ReplayOptions
) -> ReplayResult:
    """Run one replay process to the end of its share of the range; see the module docstring."""
    job = _Replay(settings, policy, options)
    ran = assemble(job, stop)
    if ran.summary is None:
        raise ConfigError("stopped while waiting for the schema registry")
    seconds = time.monotonic() - job.started
    return ReplayResult(options.name, job.settings.group_id, ran.summary, job.counts, seconds)
