"""The only builder of librdkafka and Schema Registry client dicts, and their check before use.

Merge order for client configs (later wins): library defaults we choose, then the user's
`kafka` extras (file or IMPORT_CLOSURE_KAFKA_*), then the keys the worker's correctness depends on.
Each delivery guarantee owns its keys here, so the worker's loop never branches on the mode.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer.config.redaction import redact
from consumer.config.settings import AT_LEAST_ONCE, EXACTLY_ONCE, Settings
from consumer.errors import ConfigError

#: A librdkafka configuration: property names to str/int/float/bool values or callbacks.
ClientConf = dict[str, Any]


# Keys each delivery guarantee depends on; user extras cannot override them.
_CONSUMER_OWNED: dict[str, dict[str, Any]] = {
    AT_LEAST_ONCE: {
        # Offsets are stored by hand only after the decision or dead letter is acknowledged.
        "enable.auto.offset.store": False,
        # The background committer commits only what we stored: durable work, never more.
        "enable.auto.commit": True,
        # Messages carry our own fields; librdkafka must not fabricate EOF events in the loop.
        "enable.partition.eof": False,
    },
    EXACTLY_ONCE: {
        # Offsets are committed inside the producer's transaction, never by the consumer.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # A transactional upstream's aborted records are never decided.
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    },
}
#: librdkafka backs off reconnecting up to 10 s by default, so after a broker restart a client
#: could sit up to 10 s before trying it again: at-least-once partitions stood still 11.7 s after
#: the broker was back, 6.9-7.4 s with at most 1 s (tests/integration/recovery). One attempt per
#: second per broker while one is down costs nothing.
_RECONNECT = {"reconnect.backoff.max.ms": 1000}
_CONSUMER_DEFAULTS = {
    # The classic protocol, because its session timeout is the client's to choose: under KIP-848
    # ("consumer") it is the broker's (45 s by default, no lower than its 45 s minimum), and a
    # SIGKILLed or cut-off worker held its partitions that long (docs/operations.md, "When a
    # worker dies"). Rebalances stay incremental with cooperative-sticky (CLASSIC_GROUP below).
    "group.protocol": "classic",
    # A new group starts at the beginning: no listing created before the first deploy is skipped.
    "auto.offset.reset": "earliest",
    # How often stored (acknowledged) offsets are committed in the background.
    "auto.commit.interval.ms": 1000,
    # Keep a few batches pre-fetched so consume() rarely waits on the network...
    "queued.min.messages": 1000,
    # ...but bound the pre-fetch by size (librdkafka's defaults are 64 MiB queued and 50 MiB
    # per fetch): 1,000 listings of 450 KB took the worker to 600 MB with them; 190 MB with a
    # 2 MiB fetch, 136 MB with 1 MiB (each fetch buffer lives until its last message is freed).
    "queued.max.messages.kbytes": 2048,
    "fetch.max.bytes": 1024 * 1024,
    # These bounds count bytes as fetched, i.e. compressed: 1 MiB of lz4 batches of repetitive
    # listings held ~57 decompressed 1.4 MB buffers (137-206 MB peak). 128 KiB per partition per
    # fetch: 105 MB, and no slower in bench/throughput.py (1.16x per CPU-second, same run).
    "max.partition.fetch.bytes": 128 * 1024,
    # With a queue that small, librdkafka's default 1 s back-off once it is full capped every
    # reader at ~18,000 events/s and put p50 latency at 650 ms; 10 ms: floor 275,000/s, p50 21 ms.
    "fetch.queue.backoff.ms": 10,
    # See _RECONNECT.
    **_RECONNECT,
}
#: Defaults for `group.protocol=classic` (ours), below the user's settings like the others.
CLASSIC_GROUP = {
    # Only the partitions that move stop during a rebalance; the others keep flowing.
    "partition.assignment.strategy": "cooperative-sticky",
    # A worker that stops heartbeating (SIGKILL, OOM kill, node loss) is out of the group after
    # 6 s, the brokers' default floor (group.min.session.timeout.ms), and its partitions move:
    # measured 5.8-6.2 s from SIGKILL to the next decision on them (43.9 s under KIP-848;
    # tests/integration/recovery). librdkafka heartbeats from its own thread, so a busy Python
    # loop cannot make it miss one.
    "session.timeout.ms": 6000,
    # Six heartbeats per session: a lost one or two never expire a live member, and the others
    # hear of a rebalance within a second.
    "heartbeat.interval.ms": 1000,
    # group.instance.id (static membership, KIP-345) is the worker id, added in consumer_conf: a
    # member whose session expired while its coordinator moved (a broker lost: 9-11 s until it is
    # fenced) rejoins as itself and gets its partitions back at once, instead of joining as a new
    # member and waiting one more session for the coordinator to expire the one it was (15.3-17.1 s
    # of stall on a cluster). A restarted replica with the same name (a container restart, a
    # StatefulSet pod) takes its partitions back at once too. The price: a static member does not
    # leave the group when it stops cleanly, so its partitions wait out the session (6 s).
}
_PRODUCER_OWNED: dict[str, dict[str, Any]] = {
    AT_LEAST_ONCE: {
        # Idempotence implies acks=all and ordered, de-duplicated retries per partition.
        "enable.idempotence": True,
        "acks": "all",
        # 0 = retry forever: a decision must never be dropped because the broker was away.
        "message.timeout.ms": 0,
    },
    EXACTLY_ONCE: {
        "enable.idempotence": True,
        "acks": "all",
    },
}
#: exactly-once: librdkafka's send_offsets_to_transaction() can wait forever for a broker state
#: change after a restart: its group-coordinator lookup holds on to a broker object that a
#: metadata reply without brokers (a KRaft node starting up) decommissioned, and its own timeout
#: is never checked (librdkafka #5511, #5456). Any connection closing or opening re-runs that
#: lookup; with nothing produced while the call blocks, an idle limit closes one within 3-5 s
#: (librdkafka subtracts up to 2 s of jitter). Measured after a broker restart: 51.8 and 62.9 s
#: of stall without it (the watchdog), 8.6 s with it. An idle worker reconnects when input returns.
EOS_CONNECTIONS_MAX_IDLE_MS = 5000
#: exactly-once: a transaction left open by a killed worker blocks read_committed readers of its
#: partitions until the coordinator times it out (a restart with the same transactional.id ends it at
#: once); 30 s leaves a loaded machine room, as a transaction normally lasts ~100 ms.
TRANSACTION_TIMEOUT_MS = 30_000
_PRODUCER_DEFAULTS = {
    # 1 ms: per CPU-second the same as 5 or 20 ms in bench/throughput.py, and p99 decision
    # latency at 5,000/s 88 ms instead of 541 ms (batches still fill at high rates).
    "linger.ms": 1,
    "compression.type": "lz4",
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 200000,
    # librdkafka's default is 1 GiB of queued output; dead letters copy whole input values.
    # 8 MiB is ~25,000 decisions, far more than linger lets pile up.
    "queue.buffering.max.kbytes": 8192,
    **_RECONNECT,
}


def _merge(*layers: Mapping[str, Any]) -> ClientConf:
    out: ClientConf = {}
    for layer in layers:
        out.update(layer)
    return out


def consumer_conf(settings: Settings, **overrides: Any) -> ClientConf:
    """librdkafka consumer config: defaults < settings.kafka < overrides < owned keys."""
    base = _merge(
        _CONSUMER_DEFAULTS,
        {"group.id": settings.group_id, "client.id": settings.worker_id},
        settings.kafka,
    )
    if base.get("group.protocol") == "classic":
        base = _merge(CLASSIC_GROUP, {"group.instance.id": settings.worker_id}, base)
    return _merge(base, _dotted(overrides), _CONSUMER_OWNED[settings.processing_guarantee])


def replay_consumer_conf(settings: Settings, **overrides: Any) -> ClientConf:
    """The worker's consumer config (for replay_settings) plus partition-EOF events: the
    bounded source learns from them that a partition is read to its end. Not a static member:
    a replay's group lives for one run, and its close must leave the group at once."""
    conf = consumer_conf(settings, **overrides)
    conf.pop("group.instance.id", None)
    conf["enable.partition.eof"] = True
    return conf


def producer_conf(settings: Settings, **overrides: Any) -> ClientConf:
    """librdkafka producer config: defaults < settings.kafka < overrides < owned keys."""
    common = _without_consumer_keys(settings.kafka)
    mode = settings.processing_guarantee
    defaults: dict[str, Any] = dict(_PRODUCER_DEFAULTS)
    owned = dict(_PRODUCER_OWNED[mode])
    if mode == EXACTLY_ONCE:
        defaults["transaction.timeout.ms"] = TRANSACTION_TIMEOUT_MS
        defaults["connections.max.idle.ms"] = EOS_CONNECTIONS_MAX_IDLE_MS
        owned["transactional.id"] = transactional_id(settings)
    base = _merge(defaults, {"client.id": settings.worker_id}, common)
    conf = _merge(base, _dotted(overrides), owned)
    if mode == EXACTLY_ONCE:
        # A message must not outlive its transaction: it fails and the transaction aborts.
        conf["message.timeout.ms"] = conf["transaction.timeout.ms"]
    return conf


def transactional_id(settings: Settings) -> str:
    """Configured, or `<group>-<worker id>`: unique per replica, stable while it lives."""
    return settings.transactional_id or f"{settings.group_id}-{settings.worker_id}"


def admin_conf(settings: Settings, **overrides: Any) -> ClientConf:
    return _merge(_without_consumer_keys(settings.kafka), _dotted(overrides))


def plain_consumer_conf(settings: Settings, **overrides: Any) -> ClientConf:
    """A consumer for tools and tests (no owned keys): defaults < settings.kafka < overrides."""
    base = _merge(_CONSUMER_DEFAULTS, {"group.id": settings.group_id}, settings.kafka)
    return _merge(base, _dotted(overrides))


def plain_producer_conf(settings: Settings, **overrides: Any) -> ClientConf:
    """A producer for tools and tests: our defaults without the forever-retry owned keys."""
    base = _merge(_PRODUCER_DEFAULTS, _without_consumer_keys(settings.kafka))
    return _merge(base, {"enable.idempotence": True}, _dotted(overrides))


#: SchemaRegistryClient settings it wants as numbers; file and environment values arrive as text.
_REGISTRY_NUMBERS = (
    "max.retries",
    "retries.wait.ms",
    "retries.max.wait.ms",
    "timeout",
    "cache.capacity",
    "cache.latest.ttl.sec",
)


#: The client's own retries, kept short: the worker retries a held batch every second and start-up
#: every few seconds, so a registry that answers again is used within seconds. The client's
#: defaults (3 retries, waits up to 1, 2, 4 s) added up to 7 s to each of our attempts.
REGISTRY_DEFAULTS: Final[Mapping[str, Any]] = {
    "max.retries": 2,
    "retries.wait.ms": 200,
    "retries.max.wait.ms": 1000,
    "timeout": 5,  # seconds per HTTP request (httpx's default, said here)
}


def registry_conf(settings: Settings) -> dict[str, Any]:
    """confluent-kafka's SchemaRegistryClient config; one clear error for a non-numeric number.

    Credentials in the url (`http://user:secret@host`) move to `basic.auth.user.info`: the HTTP
    library logs every request URL, and the client sends the same auth to each url of a list.
    """
    conf: dict[str, Any] = {**REGISTRY_DEFAULTS, **settings.schema_registry}
    if "url" in conf:
        conf["url"], user_info = _split_userinfo(str(conf["url"]))
        if user_info is not None:
            if "basic.auth.user.info" in conf:
                msg = "schema_registry: credentials both in url and basic.auth.user.info; keep one"
                raise ConfigError(msg)
            # SchemaRegistryClient takes user.info as its only basic-auth source; it rejects the
            # `basic.auth.credentials.source` key of the older CachedSchemaRegistryClient.
            conf["basic.auth.user.info"] = user_info
    for key in _REGISTRY_NUMBERS:
        if key in conf:
            try:
                conf[key] = float(conf[key]) if "." in str(conf[key]) else int(conf[key])
            except ValueError as exc:
                msg = f"schema_registry {key}: expected a number, got {conf[key]!r}"
                raise ConfigError(msg) from exc
    return conf


def _split_userinfo(urls: str) -> tuple[str, str | None]:
    """`urls` (comma-separated) without userinfo, and the decoded `user:password` they carried."""
    clean: list[str] = []
    found: set[str] = set()
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        userinfo, at, host = parts.netloc.rpartition("@")
        if at:
            user, _, password = userinfo.partition(":")
            found.add(f"{unquote(user)}:{unquote(password)}")
            parts = parts._replace(netloc=host)
        clean.append(urlunsplit(parts))
    if len(found) > 1:
        msg = "schema_registry url: the urls carry different credentials; the client sends one set"
        raise ConfigError(msg)
    return ",".join(clean), (found.pop() if found else None)


#: Laid over the real configs when only checking them: nothing connects, resolves, loads TLS
#: files or runs SASL (kinit, OIDC token requests) while property names and values are checked.
_PROBE: ClientConf = {
    "bootstrap.servers": "",
    "security.protocol": "plaintext",  # its real value is checked by _check_security_protocol
    "logger": logging.Logger(
        "consumer.client_conf.probe", logging.CRITICAL + 1
    ),  # librdkafka's lines
}
_SECURITY_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
_NO_SUCH_PROPERTY = re.compile(r'No such configuration property: "(?P<name>[^"]+)"')
_UNRECOGNISED = "Unrecognized properties: "


def validate_client_conf(settings: Settings) -> None:
    """Reject unknown or invalid client properties with their names, before any client is used.

    librdkafka checks properties only when a client is built, so this builds the worker's
    consumer and producer with the merged configs over _PROBE and closes them at once (about
    20 ms, no broker needed); the registry client is built and closed likewise. Not checked:
    what only a connection shows (TLS files, credentials, broker versions).
    """
    _check_security_protocol(settings.kafka)
    probes = (
        ("consumer", Consumer, consumer_conf(settings)),
        ("producer", Producer, producer_conf(settings)),
    )
    for kind, client_class, conf in probes:
        try:
            client = client_class({**conf, **_PROBE})
        except KafkaException as exc:
            detail = exc.args[0].str()
            unknown = _NO_SUCH_PROPERTY.search(detail)
            if unknown:
                msg = f"kafka: unknown property {unknown['name']!r}"
            else:
                msg = f"kafka ({kind}): {detail.removeprefix(f'Failed to create {kind}: ')}"
            raise ConfigError(redact("", msg)) from exc
        if kind == "consumer":
            client.close()  # a producer has nothing to close; it is destroyed when dropped
    if settings.schema_registry:
        _validate_registry_conf(registry_conf(settings))


def _check_security_protocol(kafka: Mapping[str, str]) -> None:
    """The one property _PROBE replaces, so checked here the way librdkafka would."""
    value = kafka.get("security.protocol")
    if value is not None and value.lower() not in _SECURITY_PROTOCOLS:
        expected = ", ".join(_SECURITY_PROTOCOLS)
        msg = f"kafka: invalid value {value!r} for security.protocol (expected {expected})"
        raise ConfigError(msg)


def _validate_registry_conf(conf: Mapping[str, Any]) -> None:
    """SchemaRegistryClient checks its keys and TLS files when built; it connects only on use."""
    try:
        with SchemaRegistryClient(dict(conf)):
            pass
    except ValueError as exc:  # unknown keys, malformed url or user.info
        detail = str(exc)
        if detail.startswith(_UNRECOGNISED):
            names = detail.removeprefix(_UNRECOGNISED).split(", ")
            label = "property" if len(names) == 1 else "properties"
            msg = f"schema_registry: unknown {label} {', '.join(repr(n) for n in names)}"
        else:
            msg = f"schema_registry: {detail}"
        raise ConfigError(redact("", msg)) from exc
    except TypeError as exc:  # a non-number where it wants one
        raise ConfigError(redact("", f"schema_registry: {exc}")) from exc
    except OSError as exc:  # ssl.* files: missing, unreadable, or not a key/certificate
        msg = f"schema_registry: cannot load TLS files: {exc.strerror or exc}"
        raise ConfigError(msg) from exc


_CONSUMER_ONLY = (
    "group.",
    "auto.offset",
    "enable.auto",
    "fetch.",
    "queued.",
    "session.",
    "heartbeat.",
    "max.poll",
    "partition.assignment",
    "isolation.level",
)


def _without_consumer_keys(kafka: Mapping[str, str]) -> dict[str, str]:
    """Drop consumer-only properties, which a producer or admin client would warn about."""
    return {k: v for k, v in kafka.items() if not k.startswith(_CONSUMER_ONLY)}


_CALLBACK_KEYS = (
    "error_cb",
    "stats_cb",
    "throttle_cb",
    "oauth_cb",
    "on_commit",
    "on_delivery",
    "logger",
)


def _dotted(overrides: Mapping[str, Any]) -> ClientConf:
    """Accept `auto_offset_reset=` as well as `**{"auto.offset.reset": ...}`; callbacks keep their names."""
    return {k if k in _CALLBACK_KEYS else k.replace("_", "."): v for k, v in overrides.items()}
