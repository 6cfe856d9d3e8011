"""The worker's operational contract as the deploy files rely on it: the one list of names.

Metric names, labels, environment variables, HTTP port and probe paths that deploy/ (Kubernetes,
compose, Prometheus rules, Grafana dashboard) may reference. The deploy tests check every
reference against this module; the worker's own tests compare it with a real /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One exported family. `name` is the family as exposed (counters end in _total)."""

    name: str
    kind: Kind
    labels: tuple[str, ...] = ()
    #: A few realistic values per label, for the synthetic exporter the dashboard test scrapes.
    examples: tuple[tuple[str, ...], ...] = ()


#: Every import_closure_* family the worker exports.
WORKER_METRICS: tuple[Metric, ...] = (
    Metric(
        "import_closure_events_total",
        "counter",
        ("outcome",),
        (("approved",), ("rejected",), ("review",), ("dead_lettered",)),
    ),
    Metric(
        "import_closure_decisions_total",
        "counter",
        ("outcome", "cluster"),
        (
            ("approved", "fashion_textile"),
            ("rejected", "fashion_textile"),
            ("review", "fashion_textile"),
            ("approved", "none"),
        ),
    ),
    Metric(
        "import_closure_rejections_total",
        "counter",
        ("reason", "rule_id"),
        (
            ("IMPORT_CLOSED_CATEGORY", "akar-fashion-textile"),
            ("IMPORT_CLOSED_CATEGORY", "akar-crafts"),
        ),
    ),
    Metric(
        "import_closure_reviews_total",
        "counter",
        ("reason", "rule_id"),
        (("HS_CODE_UNCLASSIFIED", "permendag-31-2023-review-no-hs-code"),),
    ),
    Metric(
        "import_closure_dead_letters_total",
        "counter",
        ("error_code",),
        (("unknown_magic",), ("truncated",)),
    ),
    Metric("import_closure_decision_latency_seconds", "histogram"),
    Metric("import_closure_batch_duration_seconds", "histogram"),
    Metric(
        "import_closure_consumer_lag",
        "gauge",
        ("topic", "partition"),
        (("listing-created", "0"), ("listing-created", "1"), ("listing-created", "2")),
    ),
    Metric(
        "import_closure_group_lag",
        "gauge",
        ("topic", "partition"),
        (("listing-created", "0"), ("listing-created", "1"), ("listing-created", "2")),
    ),
    Metric(
        "import_closure_group_committed_offset",
        "gauge",
        ("topic", "partition"),
        (("listing-created", "0"), ("listing-created", "1"), ("listing-created", "2")),
    ),
    Metric(
        "import_closure_group_end_offset",
        "gauge",
        ("topic", "partition"),
        (("listing-created", "0"), ("listing-created", "1"), ("listing-created", "2")),
    ),
    Metric("import_closure_lag_age_seconds", "gauge"),
    Metric("import_closure_lag_read_failures_total", "counter"),
    Metric("import_closure_in_flight_messages", "gauge"),
    Metric("import_closure_assigned_partitions", "gauge"),
    Metric(
        "import_closure_rebalances_total",
        "counter",
        ("event",),
        (("assigned",), ("revoked",), ("lost",)),
    ),
    Metric("import_closure_commit_failures_total", "counter"),
    Metric(
        "import_closure_transactions_total",
        "counter",
        ("result",),
        (("committed",), ("aborted",)),
    ),
    Metric("import_closure_transaction_duration_seconds", "histogram"),
    Metric(
        "import_closure_policy_info",
        "gauge",
        ("policy", "version", "role"),
        (
            ("id-akar-import-closure", "2021.08+2c0c7158", "live"),
            ("id-akar-import-closure", "2023.10+5d1e2f3a", "shadow"),
        ),
    ),
    Metric(
        "import_closure_policy_reloads_total",
        "counter",
        ("role", "result"),
        (("live", "applied"), ("live", "rejected"), ("shadow", "applied")),
    ),
    Metric(
        "import_closure_policy_last_change_timestamp_seconds",
        "gauge",
        ("role",),
        (("live",), ("shadow",)),
    ),
    Metric(
        "import_closure_policy_file_rejected",
        "gauge",
        ("role",),
        (("live",), ("shadow",)),
    ),
    Metric(
        "import_closure_shadow_decisions_total",
        "counter",
        ("outcome", "cluster"),
        (
            ("approved", "fashion_textile"),
            ("rejected", "fashion_textile"),
            ("review", "fashion_textile"),
            ("rejected", "crafts"),
        ),
    ),
    Metric(
        "import_closure_shadow_disagreements_total",
        "counter",
        ("live", "shadow", "rule_id"),
        (
            ("approved", "rejected", "akar-crafts"),
            ("approved", "review", "permendag-31-2023-review-no-hs-code"),
            ("rejected", "rejected", "none"),
        ),
    ),
    Metric("import_closure_last_progress_timestamp_seconds", "gauge"),
)

#: prometheus-client's default collectors that deploy/ uses (the worker exports more of them).
PROCESS_METRICS: tuple[Metric, ...] = (
    Metric("process_cpu_seconds_total", "counter"),
    Metric("process_resident_memory_bytes", "gauge"),
    Metric(
        "python_info",
        "gauge",
        ("implementation", "major", "minor", "patchlevel", "version"),
        (("CPython", "3", "11", "7", "3.11.7"),),
    ),
)

#: Series Prometheus makes itself for every target.
SCRAPE_METRICS: frozenset[str] = frozenset({"up", "scrape_duration_seconds"})

#: The Prometheus job label every scrape config and selector uses.
JOB = "import-closure"

HTTP_PORT = 9400
METRICS_PATH = "/metrics"
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"

#: The worker's default (seconds); the pod's grace period must exceed it.
DEFAULT_SHUTDOWN_TIMEOUT = 25
#: Partitions of listing-created that `import-closure topics create` makes by default.
INPUT_PARTITIONS = 6

INPUT_TOPIC = "listing-created"
DECISIONS_TOPIC = "listing-decisions"
DLQ_TOPIC = "listing-created.dlq"

#: Settings the worker reads from IMPORT_CLOSURE_<NAME>.
ENV_SETTINGS: frozenset[str] = frozenset(
    {
        "IMPORT_CLOSURE_CONFIG",
        "IMPORT_CLOSURE_POLICY",
        "IMPORT_CLOSURE_SHADOW_POLICY",
        "IMPORT_CLOSURE_SHADOW_TOPIC",
        "IMPORT_CLOSURE_SHADOW_TOPIC_CHANGES_ONLY",
        "IMPORT_CLOSURE_POLICY_RELOAD_INTERVAL",
        "IMPORT_CLOSURE_GROUP_ID",
        "IMPORT_CLOSURE_INPUT_TOPIC",
        "IMPORT_CLOSURE_APPROVED_TOPIC",
        "IMPORT_CLOSURE_REJECTED_TOPIC",
        "IMPORT_CLOSURE_DLQ_TOPIC",
        "IMPORT_CLOSURE_HTTP_HOST",
        "IMPORT_CLOSURE_HTTP_PORT",
        "IMPORT_CLOSURE_LOG_LEVEL",
        "IMPORT_CLOSURE_SHUTDOWN_TIMEOUT",
        "IMPORT_CLOSURE_WORKER_ID",
        "IMPORT_CLOSURE_SCHEMA_REGISTRY_URL",
    }
)
#: Any librdkafka property passes through as IMPORT_CLOSURE_KAFKA_<NAME> (lowercased, _ -> .).
KAFKA_ENV_PREFIX = "IMPORT_CLOSURE_KAFKA_"

#: Sub-commands the deploy files run.
CLI_COMMANDS: frozenset[tuple[str, ...]] = frozenset(
    {
        ("run",),
        ("topics", "create"),
        ("produce-sample",),
        ("config",),
        ("check",),
        ("validate-policy",),
    }
)


def exposed_series_names() -> frozenset[str]:
    """Every sample name a scrape of the worker yields (histograms as _bucket, _sum, _count)."""
    names: set[str] = set(SCRAPE_METRICS)
    for metric in WORKER_METRICS + PROCESS_METRICS:
        if metric.kind == "histogram":
            names.update(metric.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(metric.name)
    return frozenset(names)


def is_known_env(name: str) -> bool:
    return name in ENV_SETTINGS or (name.startswith(KAFKA_ENV_PREFIX) and name != KAFKA_ENV_PREFIX)


def all_label_names() -> frozenset[str]:
    """Every label a deploy file may name: the contract's, the target's, `le` and `__name__`."""
    names = {"job", "instance", "namespace", "pod", "container", "endpoint", "le", "__name__"}
    for metric in WORKER_METRICS + PROCESS_METRICS:
        names.update(metric.labels)
    return frozenset(names)
