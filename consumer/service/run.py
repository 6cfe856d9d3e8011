"""`import-closure run`: the live worker. Its Job for the assembler: the consumer group, the policy
files watched for changes, HTTP always served; and the `worker stopped` line at the end."""

from __future__ import annotations

import logging
import resource
import threading
import time
from dataclasses import dataclass

from prometheus_client import generate_latest

from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.pipeline import Decider, ShadowOutput
from consumer.core.summary import RunSummary
from consumer.kafka.callbacks import ClientCallbacks
from consumer.kafka.clients import Consumer, build_consumer, build_lag_consumer, create_topics
from consumer.kafka.group_source import GroupSource
from consumer.kafka.lag import GroupOffsetsReader
from consumer.kafka.membership import GroupMember
from consumer.kafka.source import Source
from consumer.service.assembly import STATS_INTERVAL_MS, assemble
from consumer.service.lag_monitor import LagMonitor
from consumer.service.policy_watch import PolicyWatch
from consumer.service.worker import PolicyUpdates, Worker
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    summary: RunSummary
    metrics_text: str

    def summary_text(self) -> str:
        s = self.summary
        return "\n".join(
            [
                f"events: {s.events} in {s.busy_seconds:.2f}s of processing "
                f"({s.events_per_second:,.0f} events/s)",
                *s.count_lines(),
            ]
        )


class _Run:
    """`run`'s Job: the live group, the policy files watched for changes, HTTP always."""

    def __init__(
        self, settings: Settings, reload: threading.Event | None, until_idle: float | None
    ) -> None:
        self.settings = settings
        self.http_port: int | None = settings.http_port
        self._reload = reload
        self._until_idle = until_idle
        self._policies: PolicyWatch | None = None
        self._metrics: Metrics | None = None

    def prepare(self, metrics: Metrics) -> PolicyUpdates:
        settings = self.settings
        self._metrics = metrics
        self._policies = PolicyWatch(
            settings.policy,
            settings.shadow_policy,
            metrics,
            interval=settings.policy_reload_interval,
            wake=self._reload,
            wall_clock=time.time,
        )
        if settings.create_topics:
            for result in create_topics(settings):
                log.info("topic", extra={"topic": result.topic, "detail": result.detail})
        return self._policies

    def consumer(self, callbacks: ClientCallbacks) -> Consumer:
        return build_consumer(
            self.settings,
            **callbacks.consumer(),
            **{"statistics.interval.ms": STATS_INTERVAL_MS},
        )

    def source(self, member: GroupMember, health: Health, warnings: Warnings) -> Source:
        return GroupSource(
            member,
            self.settings.input_topic,
            health,
            warnings,
            group=self.settings.group_id,
            from_committed=True,
        )

    def decider(self, codec: AvroCodec) -> Decider:
        assert self._policies is not None  # prepare came first
        current = self._policies.current
        return Decider(
            codec, current.live, shadow=current.shadow, shadow_output=shadow_output(self.settings)
        )

    def run(self, worker: Worker) -> RunSummary:
        assert self._policies is not None
        assert self._metrics is not None
        self._policies.start()
        monitor = lag_monitor(self.settings, self._metrics)
        monitor.start()
        try:
            return worker.run(until_idle=self._until_idle)
        finally:
            monitor.stop()

    def close(self) -> None:
        if self._policies is not None:
            self._policies.stop()


def lag_monitor(settings: Settings, metrics: Metrics) -> LagMonitor:
    """The group's committed lag on every input partition, read every lag_interval seconds; each
    broker call waits at most that long too, so a reading is never older than about two."""
    reader = GroupOffsetsReader(
        build_lag_consumer(settings), settings.input_topic, timeout=settings.lag_interval
    )
    return LagMonitor(reader, metrics, settings.lag_interval)


def shadow_output(settings: Settings) -> ShadowOutput:
    """Which shadow decisions are produced to shadow_topic."""
    if settings.shadow_topic is None:
        return "none"
    return "changes" if settings.shadow_topic_changes_only else "all"


def run_worker(
    settings: Settings,
    stop: threading.Event,
    *,
    reload: threading.Event | None = None,
    until_idle: float | None = None,
) -> RunResult:
    """Run until `stop`; `reload` (SIGHUP) makes the policy source look at its files at once."""
    ran = assemble(_Run(settings, reload, until_idle), stop)
    metrics_text = generate_latest(ran.registry).decode()
    summary = ran.summary
    if summary is None:  # stopped while waiting for the schema registry
        return RunResult(RunSummary(started=0.0), metrics_text)
    log.info(
        "worker stopped",
        extra={
            "events": summary.events,
            "events_per_second": round(summary.events_per_second),
            "busy_seconds": round(summary.busy_seconds, 3),
            "peak_rss_mb": peak_rss_mb(),
            "outcomes": dict(summary.outcomes),
            "dead_letters": dict(summary.dead_letters),
        },
    )
    return RunResult(summary, metrics_text)


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own memory, in MB.

    Linux's VmHWM, not ru_maxrss: execve carries the forking parent's peak over into ru_maxrss, so
    a worker started by a 180 MB test runner reported 182 MB whatever it did itself.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
