"""Settings from defaults < YAML file < IMPORT_CLOSURE_* environment; the only builder of librdkafka dicts.

Merge order for client configs (later wins): library defaults we choose, then the user's
`kafka` extras (file or IMPORT_CLOSURE_KAFKA_*), then the keys the worker's correctness depends on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumer.errors import ConfigError

ENV_PREFIX = "IMPORT_CLOSURE_"
AT_LEAST_ONCE = "at-least-once"
EXACTLY_ONCE = "exactly-once"
GUARANTEES = (AT_LEAST_ONCE, EXACTLY_ONCE)
KAFKA_ENV_PREFIX = "IMPORT_CLOSURE_KAFKA_"
SCHEMA_REGISTRY_ENV_PREFIX = "IMPORT_CLOSURE_SCHEMA_REGISTRY_"
CONFIG_FILE_ENV = "IMPORT_CLOSURE_CONFIG"
#: Variables of the test suite (e.g. IMPORT_CLOSURE_TEST_BOOTSTRAP), not settings of the service.
TEST_ENV_PREFIX = "IMPORT_CLOSURE_TEST_"
LOCAL_BOOTSTRAP = "127.0.0.1:9092"

#: Substrings of librdkafka/registry property names whose values are never printed or logged.
#: Covers librdkafka's _RK_SENSITIVE properties except three that hold no secret (sasl.username,
#: an identity; ssl.key.location, a path; ssl.ca.pem, public certificates), the Schema Registry
#: client's credentials, and Java's sasl.jaas.config. Over-matching a harmless key
#: (bearer.auth.credentials.source) is the safe side of the trade.
_SECRET_MARKERS = (
    "password",
    "secret",
    "passphrase",
    "token",
    "key.pem",
    "private.key",
    "ssl_key",
    "jaas",
    "user.info",
    "credentials",
    "oauthbearer.config",
    "provider.config",
)
#: Keys ending so hold an endpoint (sasl.oauthbearer.token.endpoint.url): only userinfo is hidden.
_URL_SUFFIX = ".url"
#: scheme://userinfo@ in any value; userinfo runs to the last @ before the path (or a space).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
REDACTED = "***"
#: A librdkafka configuration: property names to str/int/float/bool values or callbacks.
ClientConf = dict[str, Any]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _doc(meaning: str, shown: str | None = None) -> dict[str, str]:
    """Field metadata: the one-line meaning, and the default to print when not the field's own."""
    return {"doc": meaning} if shown is None else {"doc": meaning, "shown": shown}


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """Everything the shell needs. Built only by `load()`; tests use `dataclasses.replace`.

    Its repr is the redacted form, so a Settings in a log line or traceback shows no secret.
    """

    # Each field's `doc` is its line in `import-closure config --help`; `shown` overrides the
    # default printed there when the real one is computed or empty.
    group_id: str = field(default="import-closure", metadata=_doc("consumer group"))
    input_topic: str = field(
        default="listing-created", metadata=_doc("topic of the ListingCreated events")
    )
    approved_topic: str = field(
        default="listing-decisions", metadata=_doc("where approved decisions go")
    )
    rejected_topic: str = field(
        default="listing-decisions", metadata=_doc("where rejected decisions go")
    )
    dlq_topic: str = field(
        default="listing-created.dlq", metadata=_doc("dead letters: records that cannot be decided")
    )
    policy: Path | None = field(
        default=None,
        metadata=_doc("policy YAML file", shown="bundled id-akar-import-closure"),
    )
    policy_reload_interval: float = field(
        default=10.0,
        metadata=_doc("seconds between checks of the policy files for a change (0: only SIGHUP)"),
    )
    shadow_policy: Path | None = field(
        default=None,
        metadata=_doc("candidate policy YAML evaluated beside the live one; never enforced"),
    )
    shadow_topic: str | None = field(
        default=None,
        metadata=_doc("where the shadow policy's decisions go (none: metrics only)", shown="none"),
    )
    shadow_topic_changes_only: bool = field(
        default=False,
        metadata=_doc("produce only the shadow decisions that differ from the live ones"),
    )
    http_host: str = field(default="0.0.0.0", metadata=_doc("address of /metrics and the probes"))
    http_port: int = field(default=9400, metadata=_doc("port of /metrics and the probes (0: any)"))
    log_level: str = field(
        default="INFO", metadata=_doc("DEBUG, INFO, WARNING, ERROR or CRITICAL; JSON on stderr")
    )
    log_libraries: bool = field(
        default=False,
        metadata=_doc("with log_level DEBUG, also other libraries' lines below WARNING"),
    )
    shutdown_timeout: float = field(
        default=25.0,
        metadata=_doc("seconds to deliver in-flight work and commit on SIGTERM"),
    )
    stall_timeout: float = field(
        default=60.0,
        metadata=_doc("seconds without a loop turn before /healthz answers 503"),
    )
    worker_id: str = field(
        default_factory=_default_worker_id,
        metadata=_doc("written into dead-letter headers and client.id", shown="hostname-pid"),
    )
    batch_size: int = field(
        default=1000,
        metadata=_doc("messages per consume() call: the unit of decode/evaluate/encode work"),
    )
    poll_timeout: float = field(
        # 10 ms: at high rates consume() returns as soon as a batch is full, so this only
        # bounds the wait at low rates (p99 at 5,000/s: 541 ms with 0.1 s and 20 ms linger).
        default=0.01,
        metadata=_doc("seconds to wait for a batch to fill (bounds added latency at low rates)"),
    )
    processing_guarantee: str = field(
        default="at-least-once",
        metadata=_doc(
            "at-least-once (offsets after acknowledgement) or exactly-once (transactions)"
        ),
    )
    transactional_id: str | None = field(
        default=None,
        metadata=_doc(
            "exactly-once: the producer's transactional.id", shown="<group_id>-<worker_id>"
        ),
    )
    transaction_interval_ms: int = field(
        default=100,
        metadata=_doc("exactly-once: milliseconds one transaction collects batches before commit"),
    )
    progress_interval: float = field(
        default=30.0,
        metadata=_doc("seconds between progress lines in the log; 0 turns them off"),
    )
    max_in_flight: int = field(
        default=50_000,
        metadata=_doc("decisions produced but not acknowledged before fetching pauses"),
    )
    topic_partitions: int = field(
        default=6, metadata=_doc("partitions per topic for `topics create` / --create-topics")
    )
    topic_replication: int = field(
        default=1, metadata=_doc("replication factor for `topics create` / --create-topics")
    )
    create_topics: bool = field(default=False, metadata=_doc("create the topics when `run` starts"))
    kafka: Mapping[str, str] = field(
        default_factory=lambda: {"bootstrap.servers": LOCAL_BOOTSTRAP},
        metadata=_doc(
            "any librdkafka property; <NAME> upper-cased with . as _",
            shown=f"bootstrap.servers={LOCAL_BOOTSTRAP}",
        ),
    )
    schema_registry: Mapping[str, str] = field(
        default_factory=dict,
        metadata=_doc("url and other SchemaRegistryClient settings", shown="none"),
    )

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets replaced by ***."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                out[f.name] = redact_conf(value)
            else:
                out[f.name] = redact(f.name, str(value) if isinstance(value, Path) else value)
        return out

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.redacted().items())
        return f"Settings({fields})"


def is_secret(key: str) -> bool:
    """Whether a client property's value is a credential (see _SECRET_MARKERS)."""
    lowered = key.lower()
    if lowered.endswith(_URL_SUFFIX):
        return False
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(key: str, value: Any) -> Any:
    """`value` fit to print: *** for a secret property, else with any URL userinfo as ***."""
    if is_secret(key):
        return REDACTED
    if isinstance(value, str):
        return _USERINFO.sub(rf"\g<scheme>{REDACTED}@", value)
    return value


def redact_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A client config (or settings map) fit to print or log, keys sorted; the one redactor."""
    return {key: redact(key, value) for key, value in sorted(conf.items())}


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_MAPPING_FIELDS = ("kafka", "schema_registry")
#: Settings where 0 means "off" rather than a bad value.
_ZERO_TURNS_OFF = ("progress_interval", "policy_reload_interval")


_MAP_ENV_PREFIXES = {"kafka": KAFKA_ENV_PREFIX, "schema_registry": SCHEMA_REGISTRY_ENV_PREFIX}


def settings_help() -> str:
    """The settings as a table for `config --help`, generated from the fields so it cannot drift."""
    rows = [("setting", "environment", "default", "meaning")]
    for f in dataclasses.fields(Settings):
        if f.name in _MAP_ENV_PREFIXES:
            env = f"{_MAP_ENV_PREFIXES[f.name]}<NAME>"
        else:
            env = ENV_PREFIX + f.name.upper()
        rows.append((f.name, env, _shown_default(f), f.metadata["doc"]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "settings: defaults < YAML file (--config or IMPORT_CLOSURE_CONFIG) < environment < options"
    ]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[3]]))
    lines.append(
        "In the file, kafka and schema_registry are maps of property: value. "
        "Secrets (passwords, tokens, url userinfo...) print as ***."
    )
    return "\n".join(lines)


def _shown_default(f: dataclasses.Field[Any]) -> str:
    if "shown" in f.metadata:
        return str(f.metadata["shown"])
    if isinstance(f.default, bool):
        return "true" if f.default else "false"
    return str(f.default)


#: What a value of each field type must look like, for the error message.
_EXPECTED = {
    "int": "a positive whole number",
    "float": "a positive number of seconds",  # every float setting is a duration
    "bool": "true or false",
}
_PORT_FIELDS = ("http_port",)
_PORT_RANGE = "a port 0\N{EN DASH}65535"  # 0: the OS picks a free port (tests, sidecars)
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _coerce(name: str, raw: object, origin: str) -> object:
    """Turn a file or env value into the field's type; one clear message when it does not fit."""
    kind = _FIELDS[name].type
    if kind in _EXPECTED:
        value = _convert(name, kind, raw)
        if value is None:
            expected = _PORT_RANGE if name in _PORT_FIELDS else _EXPECTED[str(kind)]
            msg = f"{origin}: invalid value {raw!r} for {name} (expected {expected})"
            raise ConfigError(msg)
        return value
    if kind == "Path | None":
        return Path(str(raw)) if raw not in (None, "") else None
    if not isinstance(raw, str) or not raw.strip():
        msg = f"{origin}: invalid value {raw!r} for {name} (expected a non-empty string)"
        raise ConfigError(msg)
    if name == "processing_guarantee":
        mode = raw.strip().lower()
        if mode not in GUARANTEES:
            msg = f"{origin}: processing_guarantee must be one of {', '.join(GUARANTEES)}, got {raw!r}"
            raise ConfigError(msg)
        return mode
    if name == "log_level":
        level = raw.strip().upper()
        if level not in _LEVELS:
            msg = f"{origin}: invalid value {raw!r} for log_level (expected {', '.join(_LEVELS)})"
            raise ConfigError(msg)
        return level
    return raw


def _convert(name: str, kind: object, raw: object) -> int | float | bool | None:
    """`raw` as an int, float or bool setting, or None when it does not fit."""
    text = str(raw).strip()
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        return None
    if isinstance(raw, bool):  # YAML `true` is no number
        return None
    try:
        number: int | float = int(text) if kind == "int" else float(text)
    except ValueError:
        return None
    if name in _PORT_FIELDS:
        return number if 0 <= number <= 65535 else None
    if number == 0 and name in _ZERO_TURNS_OFF:
        return number
    return number if 0 < number < math.inf else None  # also refuses nan


def _from_file(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"config file {path}: cannot read: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"config file {path}: not valid YAML: {exc}"
        raise ConfigError(msg) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        msg = f"config file {path}: the top level must be a mapping of setting: value"
        raise ConfigError(msg)
    values: dict[str, object] = {}
    for key, raw in data.items():
        origin = f"config file {path}: {key}"
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            msg = f"config file {path}: unknown setting {key!r} (known: {known})"
            raise ConfigError(msg)
        if key in _MAPPING_FIELDS:
            if not isinstance(raw, dict):
                msg = f"{origin}: must be a mapping of property: value"
                raise ConfigError(msg)
            values[key] = {str(k): _scalar(v) for k, v in raw.items()}
        else:
            values[key] = _coerce(key, raw, f"config file {path}")
    return values


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, object], dict[str, str], dict[str, str]]:
    values: dict[str, object] = {}
    kafka: dict[str, str] = {}
    registry: dict[str, str] = {}
    for key, raw in env.items():
        if (
            not key.startswith(ENV_PREFIX)
            or key == CONFIG_FILE_ENV
            or key.startswith(TEST_ENV_PREFIX)
        ):
            continue
        if key.startswith(KAFKA_ENV_PREFIX):
            kafka[key[len(KAFKA_ENV_PREFIX) :].lower().replace("_", ".")] = raw
            continue
        if key.startswith(SCHEMA_REGISTRY_ENV_PREFIX):
            registry[key[len(SCHEMA_REGISTRY_ENV_PREFIX) :].lower().replace("_", ".")] = raw
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _FIELDS or name in _MAPPING_FIELDS:
            msg = f"environment: unknown setting {key} (see `import-closure config --help`)"
            raise ConfigError(msg)
        values[name] = _coerce(name, raw, f"environment {key}")
    return values, kafka, registry


def load(
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    **overrides: object,
) -> Settings:
    """Settings from defaults < YAML file < environment < explicit overrides (CLI flags).

    The file is `config_file`, else the path in IMPORT_CLOSURE_CONFIG, else none. Client
    properties are not checked here; callers about to use Kafka run `validate_client_conf`.
    """
    env = os.environ if env is None else env
    if config_file is None and env.get(CONFIG_FILE_ENV):
        config_file = Path(env[CONFIG_FILE_ENV])
    values: dict[str, object] = _from_file(config_file) if config_file else {}
    kafka = dict(Settings().kafka)
    kafka.update(values.pop("kafka", {}))  # type: ignore[call-overload]
    registry: dict[str, str] = dict(values.pop("schema_registry", {}))  # type: ignore[call-overload]
    env_values, env_kafka, env_registry = _from_env(env)
    values.update(env_values)
    kafka.update(env_kafka)
    registry.update(env_registry)
    for name, raw in overrides.items():
        if raw is not None:
            values[name] = _coerce(name, raw, f"option --{name.replace('_', '-')}")
    if not kafka.get("bootstrap.servers"):
        msg = "kafka bootstrap.servers is empty (set IMPORT_CLOSURE_KAFKA_BOOTSTRAP_SERVERS)"
        raise ConfigError(msg)
    if registry and not registry.get("url"):
        msg = (
            "schema_registry settings given without a url (set IMPORT_CLOSURE_SCHEMA_REGISTRY_URL)"
        )
        raise ConfigError(msg)
    settings = Settings(kafka=kafka, schema_registry=registry, **values)  # type: ignore[arg-type]
    _check_shadow(settings)
    return settings


def _check_shadow(settings: Settings) -> None:
    """A shadow topic needs a shadow policy, and must not be a topic that live consumers act on."""
    topic = settings.shadow_topic
    if topic is None:
        return
    if settings.shadow_policy is None:
        msg = "shadow_topic is set but shadow_policy is not (set IMPORT_CLOSURE_SHADOW_POLICY)"
        raise ConfigError(msg)
    live = {
        "input_topic": settings.input_topic,
        "approved_topic": settings.approved_topic,
        "rejected_topic": settings.rejected_topic,
        "dlq_topic": settings.dlq_topic,
    }
    for name, value in live.items():
        if topic == value:
            msg = f"shadow_topic {topic!r} is also the {name}: shadow decisions must not mix with live ones"
            raise ConfigError(msg)


# Keys the worker's guarantees depend on; user extras cannot override them.
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
_CONSUMER_DEFAULTS = {
    # KIP-848: incremental, broker-driven rebalances (Kafka 4 and librdkafka >= 2.10).
    "group.protocol": "consumer",
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
        base.setdefault("partition.assignment.strategy", "cooperative-sticky")
    return _merge(base, _dotted(overrides), _CONSUMER_OWNED[settings.processing_guarantee])


def replay_settings(settings: Settings, run: str) -> Settings:
    """Settings of `replay --name RUN`: its own group `<group_id>.replay.<RUN>`, so the live
    group's offsets never move, and with it its own transactional.id in exactly-once."""
    return dataclasses.replace(settings, group_id=f"{settings.group_id}.replay.{run}")


def replay_consumer_conf(settings: Settings, **overrides: Any) -> ClientConf:
    """The worker's consumer config (for replay_settings) plus partition-EOF events: the
    bounded source learns from them that a partition is read to its end."""
    conf = consumer_conf(settings, **overrides)
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


def registry_conf(settings: Settings) -> dict[str, Any]:
    """confluent-kafka's SchemaRegistryClient config; one clear error for a non-numeric number.

    Credentials in the url (`http://user:secret@host`) move to `basic.auth.user.info`: the HTTP
    library logs every request URL, and the client sends the same auth to each url of a list.
    """
    conf: dict[str, Any] = dict(settings.schema_registry)
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
    "logger": logging.Logger("consumer.config.probe", logging.CRITICAL + 1),  # librdkafka's lines
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
