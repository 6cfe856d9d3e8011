"""librdkafka's client-level callbacks: errors, logs, statistics and commit results.

Every line librdkafka would print on stderr comes here instead (the `logger` client setting), so
stderr stays pure JSON; repeated failures are throttled to the first one, then one per interval
carrying the number suppressed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from consumer.errors import DeliveryError
from consumer.kafka import error_kinds as kafka_errors
from consumer.service.health import Health
from consumer.service.metrics import Metrics
from consumer.service.throttle import Throttle, shape

log = logging.getLogger(__name__)
#: librdkafka's own log lines, as JSON with `facility` and `client` fields.
client_log = logging.getLogger("consumer.librdkafka")

#: A repeated client error or log line is written at most once per this many seconds.
THROTTLE_INTERVAL = 30.0
#: Stats entries that are not brokers we talk to (the bootstrap placeholder has nodeid -1).
_NO_NODE = -1


class ClientEvents:
    """librdkafka's client-level callbacks. Built before the clients, handed to them and to the Worker.

    Callbacks never raise: a fatal error is recorded in `fatal` and the loop raises it.
    """

    def __init__(
        self, metrics: Metrics, health: Health, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._throttle = Throttle(THROTTLE_INTERVAL, clock)
        self.fatal: BaseException | None = None
        #: Per partition, from the last statistics: (high watermark, committed offset).
        self.partition_stats: dict[tuple[str, int], tuple[int, int]] = {}
        self.logger = LibrdkafkaLog(self._throttle)

    def on_error(self, error: KafkaError) -> None:
        """Most client errors are transient (librdkafka reconnects); fatal ones stop the loop."""
        code = error.code()
        if code in kafka_errors.CONNECTION:
            self._health.broker_up = False
        if code in kafka_errors.AUTHENTICATION:
            self._health.client_problem = f"authentication failed: {kafka_errors.describe(error)}"
        if kafka_errors.stops_worker(error) and self.fatal is None:
            self.fatal = DeliveryError(f"fatal Kafka client error: {kafka_errors.describe(error)}")
        # librdkafka logged connection failures itself (see LibrdkafkaLog); ours would repeat them.
        level = logging.DEBUG if code in kafka_errors.CONNECTION else logging.WARNING
        self.report(level, "kafka client error", error)

    def report(self, level: int, event: str, error: KafkaError) -> None:
        """One log line per kind of error and interval, with the number suppressed since."""
        fields = {"code": error.name(), "detail": error.str()}
        self._log(level, event, ("error", error.code()), fields)

    def throttled(self, event: str, detail: str) -> None:
        """A warning that may repeat every turn during an outage: once per interval."""
        self._log(logging.WARNING, event, ("event", event), {"detail": detail})

    def _log(self, level: int, event: str, kind: object, fields: dict[str, Any]) -> None:
        suppressed = self._throttle.admit(kind)
        if suppressed is None:
            return
        if suppressed:
            fields["suppressed"] = suppressed
        log.log(level, event, extra=fields)

    def on_stats(self, stats_json: str) -> None:
        """librdkafka statistics: broker connection state, group membership, partition offsets."""
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
        for topic, body in stats.get("topics", {}).items():
            for key, p in body.get("partitions", {}).items():
                partition = int(key)
                if partition >= 0:
                    self.partition_stats[(topic, partition)] = (
                        int(p.get("hi_offset", -1)),
                        int(p.get("committed_offset", -1)),
                    )

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None or error.code() == KafkaError._NO_OFFSET:
            return
        self._metrics.commit_failures.inc()
        suppressed = self._throttle.admit(("commit", error.code()))
        if suppressed is not None:
            log.warning(
                "offset commit failed",
                extra={
                    "detail": error.str(),
                    "partitions": partition_names(partitions),
                    "suppressed": suppressed,
                },
            )


class LibrdkafkaLog:
    """librdkafka's `logger`: it calls log(level, "%s [%s] %s", facility, client, text).

    Duck-typed rather than a logging.Logger so nothing global is mutated; throttled by facility
    and the text with its numbers blanked.
    """

    def __init__(self, throttle: Throttle) -> None:
        self._throttle = throttle

    def log(self, level: int, _fmt: str, *args: object) -> None:
        facility, client, text = (str(a) for a in (*args, "", "", "")[:3])
        if not client_log.isEnabledFor(level):
            return
        suppressed = self._throttle.admit(("librdkafka", facility, shape(text)))
        if suppressed is None:
            return
        fields: dict[str, Any] = {"facility": facility, "client": client}
        if suppressed:
            fields["suppressed"] = suppressed
        client_log.log(level, text, extra=fields)


def partition_names(partitions: list[TopicPartition]) -> list[str]:
    """`topic[partition]` labels for log fields."""
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
