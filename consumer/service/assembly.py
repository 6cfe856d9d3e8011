"""The one assembler of `run` and `replay`: builds the process from Settings and a Job (what the two
differ in), runs the worker, and takes everything down again.

Built the same way for both: the metrics registry, readiness and the HTTP server, the client
callbacks, the producer, the codec, the outputs, the delivery of the configured guarantee and the
Worker. A Job supplies the rest: the settings of its clients (replay's name its own group), the
consumer, the source, the decider, the policy updates and whether to serve HTTP. So a new
collaborator of the worker is added here, once. The two Jobs are in service/run.py and
service/replay.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from consumer import config
from consumer.codec import AvroCodec
from consumer.config.settings import Settings
from consumer.core.pipeline import Decider
from consumer.core.summary import RunSummary
from consumer.delivery import Delivery
from consumer.delivery.at_least_once import AtLeastOnce
from consumer.delivery.exactly_once import ExactlyOnce
from consumer.delivery.outputs import DEFAULT_MAX_MESSAGE_BYTES, Outputs
from consumer.errors import ConfigError, SchemaSourceUnavailable
from consumer.kafka import client_conf
from consumer.kafka.callbacks import ClientCallbacks
from consumer.kafka.clients import Consumer, Producer, build_producer, flush_at_exit
from consumer.kafka.faults import Faults
from consumer.kafka.membership import GroupMember
from consumer.kafka.registry import RegistrySchemaSource
from consumer.kafka.source import Source
from consumer.service.allocator import pin_mmap_threshold
from consumer.service.worker import PolicyUpdates, Telemetry, Worker
from consumer.telemetry.health import Health, HealthServer
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings

log = logging.getLogger(__name__)

#: librdkafka statistics feed readiness (broker connection state); every few seconds is plenty.
STATS_INTERVAL_MS = 5000
#: Waits between attempts to reach the schema registry at start (seconds): doubling, capped low
#: so that decisions flow within seconds of the registry answering again, however long it was away.
REGISTRY_BACKOFF = (1.0, 4.0)


class Job(Protocol):
    """What `run` and `replay` differ in. `assemble` calls the methods in the order listed."""

    @property
    def settings(self) -> Settings:
        """The settings of the clients, codec, outputs, delivery and worker."""

    @property
    def http_port(self) -> int | None:
        """Where /metrics and the probes are served; None: nowhere (and no process metrics)."""

    def prepare(self, metrics: Metrics) -> PolicyUpdates | None:
        """What a bad setting stops before any Kafka client exists (the port is bound by then).
        Returns where the worker takes policy changes from, if the policy can change."""

    def consumer(self, callbacks: ClientCallbacks) -> Consumer:
        """The input's consumer, given the client callbacks it should have."""

    def source(self, member: GroupMember, health: Health, warnings: Warnings) -> Source:
        """The worker's input, reading with the member's consumer."""

    def decider(self, codec: AvroCodec) -> Decider:
        """What decides each batch, and so which headers the outputs carry."""

    def run(self, worker: Worker) -> RunSummary:
        """Run the worker to its end."""

    def close(self) -> None:
        """Release what the job started; called once the worker ended (or never started)."""


@dataclass(frozen=True, slots=True)
class Ran:
    """How a job ended: its summary (None when stopped before the worker started), its metrics."""

    summary: RunSummary | None
    registry: CollectorRegistry


def assemble(job: Job, stop: threading.Event) -> Ran:
    """Build the process around `job`, run it until it ends or `stop`, take it down again."""
    settings = job.settings
    pin_mmap_threshold()  # before any client allocates: see allocator.py
    registry = new_registry() if job.http_port is not None else CollectorRegistry()
    metrics = Metrics(registry)
    health = Health(stall_timeout=settings.stall_timeout)
    server = None
    if job.http_port is not None:
        # Binds the port first: a port in use is a ConfigError (exit 2) before any Kafka work.
        server = HealthServer(settings.http_host, job.http_port, registry, health)
    try:
        # An invalid policy at start is a PolicyError (exit 2), also before any Kafka work.
        policies = job.prepare(metrics)
        try:
            health.policy_loaded = True
            if server is not None:
                server.start()
                log.info(
                    "http server listening", extra={"host": settings.http_host, "port": server.port}
                )
            return Ran(_run_on_clients(job, stop, metrics, health, policies), registry)
        finally:
            job.close()
    finally:
        if server is not None:
            server.stop()


def _run_on_clients(
    job: Job,
    stop: threading.Event,
    metrics: Metrics,
    health: Health,
    policies: PolicyUpdates | None,
) -> RunSummary | None:
    """The clients and everything around them, then the worker's run; None when `stop` came
    while waiting for the schema registry."""
    settings = job.settings
    faults, warnings = Faults(), Warnings()
    callbacks = ClientCallbacks(health, metrics, faults, warnings)
    member = GroupMember(lambda: job.consumer(callbacks))
    running = False  # once the worker runs, its source closes the consumer
    try:

        def new_producer() -> Producer:
            return build_producer(settings, **callbacks.clients())

        producer = new_producer()
        try:
            source = job.source(member, health, warnings)
            codec = build_codec(settings, stop, lambda why: setattr(health, "waiting_for", why))
            if codec is None:
                return None
            outputs = Outputs(
                producer,
                settings,
                faults,
                warnings,
                max_message_bytes(settings),
                transactional=settings.processing_guarantee == config.EXACTLY_ONCE,
            )
            worker = Worker(
                settings,
                source,
                build_delivery(
                    settings, member, producer, outputs, faults, warnings, metrics, new_producer
                ),
                job.decider(codec),
                Telemetry(metrics, health, warnings),
                faults,
                stop,
                policies=policies,
            )
            running = True
            return job.run(worker)
        finally:
            flush_at_exit(producer, 5)
    finally:
        if not running:
            member.current().close()


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
    delay, longest = REGISTRY_BACKOFF
    stop = stop or threading.Event()
    while True:
        try:
            # Every subject, the first one's id for framing: one schema's content has one id.
            ids = [source.register_decision_schema(s) for s in decision_subjects(settings)]
            decision_id = ids[0]
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


def decision_subjects(settings: Settings) -> list[str]:
    """The subject (TopicNameStrategy) of each topic decisions go to, each once, in order."""
    topics = [settings.approved_topic, settings.rejected_topic]
    if settings.shadow_topic is not None:
        topics.append(settings.shadow_topic)
    return [f"{topic}-value" for topic in dict.fromkeys(topics)]


def build_delivery(
    settings: Settings,
    member: GroupMember,
    producer: Producer,
    outputs: Outputs,
    faults: Faults,
    warnings: Warnings,
    metrics: Metrics,
    new_producer: Callable[[], Producer] | None = None,
) -> Delivery:
    """The Delivery of the configured guarantee: the one place that looks at the mode.
    `new_producer` builds another producer like `producer` (exactly-once renews its own)."""
    if settings.processing_guarantee == config.EXACTLY_ONCE:
        interval = settings.transaction_interval_ms / 1000
        return ExactlyOnce(
            member.current,
            producer,
            outputs,
            warnings,
            metrics,
            interval,
            transactional_id=client_conf.transactional_id(settings),
            renew=new_producer,
        )
    return AtLeastOnce(member.current, outputs, faults, metrics)


def max_message_bytes(settings: Settings) -> int:
    """The producer's message.max.bytes: what a dead letter must fit in."""
    raw = client_conf.producer_conf(settings).get("message.max.bytes", DEFAULT_MAX_MESSAGE_BYTES)
    try:
        return int(raw)
    except ValueError as exc:
        msg = f"kafka message.max.bytes: expected a number of bytes, got {raw!r}"
        raise ConfigError(msg) from exc
