"""librdkafka's client-level callbacks: errors, logs, statistics and commit results.

Every line librdkafka would print on stderr comes here instead (the `logger` client setting), so
stderr stays pure JSON; repeated failures are throttled (service/throttle.Warnings) to the first
one, then one per interval carrying the number suppressed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from consumer.errors import KafkaClientError
from consumer.kafka import error_kinds as kafka_errors
from consumer.kafka.faults import Faults
from consumer.kafka.messages import partition_keys, partition_names
from consumer.telemetry.health import Health
from consumer.telemetry.metrics import Metrics
from consumer.telemetry.throttle import Warnings, shape

log = logging.getLogger(__name__)
#: librdkafka's own log lines, as JSON with `facility` and `client` fields.
client_log = logging.getLogger("consumer.librdkafka")

#: Stats entries that are not brokers we talk to (the bootstrap placeholder has nodeid -1).
_NO_NODE = -1


class ClientCallbacks:
    """librdkafka's client-level callbacks. Built before the clients and handed to them.

    Callbacks never raise: a fatal client error is recorded in `faults` and the loop raises it.
    What they learn goes to readiness (`health`), the commit-failure counter and the throttled
    warnings.
    """

    def __init__(
        self,
        health: Health,
        metrics: Metrics,
        faults: Faults,
        warnings: Warnings,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._faults = faults
        self._warnings = warnings
        self.logger = LibrdkafkaLog(warnings)

    def clients(self) -> dict[str, object]:
        """The callbacks every client gets (consumer and producer): errors and log lines."""
        return {"error_cb": self.on_error, "logger": self.logger}

    def consumer(self) -> dict[str, object]:
        """A group consumer's: also commit results and statistics (set statistics.interval.ms)."""
        return {**self.clients(), "on_commit": self.on_commit, "stats_cb": self.on_stats}

    def on_error(self, error: KafkaError) -> None:
        """Most client errors are transient (librdkafka reconnects); fatal ones stop the loop."""
        code = error.code()
        if code in kafka_errors.CONNECTION:
            self._health.broker_up = False
        if (problem := kafka_errors.connection_problem(error)) is not None:
            self._health.client_problem = problem
        if kafka_errors.stops_worker(error):
            msg = f"fatal Kafka client error: {kafka_errors.describe(error)}"
            self._faults.record(KafkaClientError(msg))
        # librdkafka logged connection failures itself (see LibrdkafkaLog); ours would repeat them.
        level = logging.DEBUG if code in kafka_errors.CONNECTION else logging.WARNING
        report(self._warnings, level, "kafka client error", error)

    def on_stats(self, stats_json: str) -> None:
        """librdkafka statistics: broker connection state and group membership."""
        stats = json.loads(stats_json)
        brokers = stats.get("brokers", {}).values()
        up = any(b.get("state") == "UP" and b.get("nodeid", _NO_NODE) >= 0 for b in brokers)
        self._health.broker_up = up
        if up:
            self._health.client_problem = None  # a connection got through authentication
        group = stats.get("cgrp")
        if group is not None and group.get("state") == "up":
            # Under KIP-848 a member given no partitions gets no assignment callback; a
            # reachable coordinator that accepts our heartbeats is what membership means.
            self._health.joined = True

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None or error.code() == KafkaError._NO_OFFSET:
            return
        self._metrics.commit_failures.inc()
        suppressed = self._warnings.admit(("commit", error.code()))
        if suppressed is not None:
            log.warning(
                "offset commit failed",
                extra={
                    "detail": error.str(),
                    "partitions": partition_names(partition_keys(partitions)),
                    "suppressed": suppressed,
                },
            )


def report(warnings: Warnings, level: int, event: str, error: KafkaError) -> None:
    """A client error as a throttled warning: one line per kind of error and interval."""
    fields = {"code": error.name(), "detail": error.str()}
    warnings.log(level, event, ("error", error.code()), fields)


class LibrdkafkaLog:
    """librdkafka's `logger`: it calls log(level, "%s [%s] %s", facility, client, text).

    Duck-typed rather than a logging.Logger so nothing global is mutated; throttled by facility
    and the text with its numbers blanked.
    """

    def __init__(self, warnings: Warnings) -> None:
        self._warnings = warnings

    def log(self, level: int, _fmt: str, *args: object) -> None:
        facility, client, text = (str(a) for a in (*args, "", "", "")[:3])
        if not client_log.isEnabledFor(level):
            return
        suppressed = self._warnings.admit(("librdkafka", facility, shape(text)))
        if suppressed is None:
            return
        fields: dict[str, Any] = {"facility": facility, "client": client}
        if suppressed:
            fields["suppressed"] = suppressed
        client_log.log(level, text, extra=fields)
