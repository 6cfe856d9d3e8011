"""Composition root of `run`: builds registry, metrics, health server, clients and worker, then runs."""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from consumer import config
from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.pipeline import Decider, ShadowOutput
from consumer.core.summary import RunSummary
from consumer.delivery import Delivery
from consumer.delivery.at_least_once import AtLeastOnce
from consumer.delivery.exactly_once import ExactlyOnce
from consumer.delivery.outputs import DEFAULT_MAX_MESSAGE_BYTES, Outputs
from consumer.errors import ConfigError, SchemaSourceUnavailable
from consumer.kafka import client_conf
from consumer.kafka.callbacks import ClientEvents
from consumer.kafka.clients import build_consumer, build_producer, create_topics
from consumer.kafka.group_source import GroupSource
from consumer.kafka.registry import RegistrySchemaSource
from consumer.service.allocator import pin_mmap_threshold
from consumer.service.health import Health, HealthServer
from consumer.service.metrics import Metrics
from consumer.service.policy_watch import PolicySource
from consumer.service.worker import Telemetry, Worker

log = logging.getLogger(__name__)

#: librdkafka statistics feed readiness (broker connection state); every few seconds is plenty.
STATS_INTERVAL_MS = 5000
#: Waits between attempts to reach the schema registry at start (seconds): doubling, capped.
REGISTRY_BACKOFF = (1.0, 30.0)


@dataclass(frozen=True, slots=True)
class RunResult:
    summary: RunSummary
    metrics_text: str

    def summary_text(self) -> str:
        s = self.summary
        lines = [
            f"events: {s.events} in {s.busy_seconds:.2f}s of processing ({s.events_per_second:,.0f} events/s)",
            "by outcome: " + _counts(s.outcomes),
            "by cluster: " + _counts(s.clusters),
            "rejections by reason: " + _counts(s.reasons),
            "dead letters by error code: " + _counts(s.dead_letters),
        ]
        return "\n".join(lines)


def _counts(counter: dict[str, int]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


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


def new_registry() -> CollectorRegistry:
    """A registry with our series plus the process, platform and GC collectors, never the global one."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def build_codec(
    settings: Settings,
    stop: threading.Event | None = None,
    on_wait: Callable[[str | None], None] = lambda _why: None,
) -> AvroCodec | None:
    """The codec; with a registry, waits for it (like for the broker) until it answers or `stop`.

    `on_wait` hears why start-up is waiting (readiness says so), then None once it is done.
    Returns None only when stopped while waiting.
    """
    if not settings.schema_registry:
        return AvroCodec()
    try:
        source = RegistrySchemaSource(client_conf.registry_conf(settings))
    except (TypeError, ValueError) as exc:  # what SchemaRegistryClient raises for a bad setting
        msg = f"schema registry settings: {exc}"
        raise ConfigError(msg) from exc
    subject = f"{settings.approved_topic}-value"
    delay, longest = REGISTRY_BACKOFF
    stop = stop or threading.Event()
    while True:
        try:
            decision_id = source.register_decision_schema(subject)
        except SchemaSourceUnavailable as exc:
            why = f"waiting for the schema registry: {exc}"
            on_wait(why)
            log.warning(why, extra={"retry_in_seconds": delay})
            if stop.wait(delay):
                return None
            delay = min(delay * 2, longest)
            continue
        on_wait(None)
        return AvroCodec(source, decision_schema_id=decision_id)


def build_delivery(
    settings: Settings,
    consumer: Consumer,
    producer: Producer,
    outputs: Outputs,
    events: ClientEvents,
    metrics: Metrics,
) -> Delivery:
    """The Delivery of the configured guarantee: the one place that looks at the mode."""
    if settings.processing_guarantee == config.EXACTLY_ONCE:
        interval = settings.transaction_interval_ms / 1000
        return ExactlyOnce(consumer, producer, outputs, events, metrics, interval)
    return AtLeastOnce(consumer, outputs, events, metrics)


def build_outputs(settings: Settings, producer: Producer, events: ClientEvents) -> Outputs:
    """The producing side, transactional in exactly-once."""
    return Outputs(
        producer,
        settings,
        events,
        max_message_bytes(settings),
        transactional=settings.processing_guarantee == config.EXACTLY_ONCE,
    )


def max_message_bytes(settings: Settings) -> int:
    """The producer's message.max.bytes: what a dead letter must fit in."""
    raw = client_conf.producer_conf(settings).get("message.max.bytes", DEFAULT_MAX_MESSAGE_BYTES)
    try:
        return int(raw)
    except ValueError as exc:
        msg = f"kafka message.max.bytes: expected a number of bytes, got {raw!r}"
        raise ConfigError(msg) from exc


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
    pin_mmap_threshold()  # before any client allocates: see allocator.py
    registry = new_registry()
    metrics = Metrics(registry)
    health = Health(stall_timeout=settings.stall_timeout)
    # Binds the port first: a port in use is a ConfigError (exit 2) before any Kafka work.
    server = HealthServer(settings.http_host, settings.http_port, registry, health)
    # An invalid policy at start is a PolicyError (exit 2), also before any Kafka work.
    policies = PolicySource(
        settings.policy,
        settings.shadow_policy,
        metrics,
        interval=settings.policy_reload_interval,
        wake=reload,
        wall_clock=time.time,
    )
    health.policy_loaded = True
    if settings.create_topics:
        for result in create_topics(settings):
            log.info("topic", extra={"topic": result.topic, "detail": result.detail})
    server.start()
    log.info("http server listening", extra={"host": settings.http_host, "port": server.port})
    events = ClientEvents(metrics, health)
    callbacks = {"error_cb": events.on_error, "logger": events.logger}
    consumer = build_consumer(
        settings,
        on_commit=events.on_commit,
        stats_cb=events.on_stats,
        **{"statistics.interval.ms": STATS_INTERVAL_MS},
        **callbacks,
    )
    producer = build_producer(settings, **callbacks)
    try:
        codec = build_codec(settings, stop, lambda why: setattr(health, "waiting_for", why))
        if codec is None:
            consumer.close()
            return RunResult(RunSummary(started=0.0), generate_latest(registry).decode())
        outputs = build_outputs(settings, producer, events)
        current = policies.current
        worker = Worker(
            settings,
            GroupSource(consumer, settings.input_topic, events, health),
            build_delivery(settings, consumer, producer, outputs, events, metrics),
            Decider(
                codec,
                current.live,
                shadow=current.shadow,
                shadow_output=shadow_output(settings),
            ),
            Telemetry(metrics, health, events),
            stop,
            policies=policies,
        )
        policies.start()
        summary = worker.run(until_idle=until_idle)
    finally:
        policies.stop()
        producer.flush(5)
        server.stop()
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
    return RunResult(summary, generate_latest(registry).decode())
