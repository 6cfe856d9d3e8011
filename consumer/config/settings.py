"""Settings from defaults < YAML file < IMPORT_CLOSURE_* environment < options: loading and checking.

Settings exists so that cli builds every object from one frozen, validated value. Redaction is
in consumer.redaction; the librdkafka and Schema Registry dicts are built in consumer.client_conf.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from consumer.config.redaction import redact, redact_conf
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
        metadata=_doc(
            "policy or policy set YAML file, or bundled:NAME",
            shown="bundled id-akar-import-closure",
        ),
    )
    policy_reload_interval: float = field(
        default=10.0,
        metadata=_doc("seconds between checks of the policy files for a change (0: only SIGHUP)"),
    )
    shadow_policy: Path | None = field(
        default=None,
        metadata=_doc("candidate policy or set evaluated beside the live one; never enforced"),
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
    lag_interval: float = field(
        default=5.0,
        metadata=_doc(
            "seconds between reads of the group's committed and end offsets (the lag metrics)"
        ),
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
    properties are not checked here; callers about to use Kafka run
    `client_conf.validate_client_conf`.
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


def replay_settings(settings: Settings, run: str) -> Settings:
    """Settings of `replay --name RUN`: its own group `<group_id>.replay.<RUN>`, so the live
    group's offsets never move, and with it its own transactional.id in exactly-once: always the
    derived `<group_id>.replay.<RUN>-<worker_id>`, as a configured one is the live worker's, which
    a replay would fence."""
    return dataclasses.replace(
        settings, group_id=f"{settings.group_id}.replay.{run}", transactional_id=None
    )
