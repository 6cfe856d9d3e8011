"""The worker's group consumer, which can be built again in place when its membership ends for good.

The worker is a static group member (`group.instance.id`, see kafka/client_conf.py). When such a
member's session expires (its coordinator unreachable for `session.timeout.ms`: a broker lost,
restarting or cut off), librdkafka raises a fatal FENCED_INSTANCE_ID and that consumer can never
consume again. A new consumer with the same instance id rejoins as the same member and, once the
coordinator answers, gets its partitions back without waiting for anyone's session (KIP-345). So
the worker replaces its consumer instead of exiting: its producer, open HTTP port, metrics and
policy stay. Everything that uses the consumer asks this holder for the current one.

A genuine fence (two live replicas with one worker id) would make them take turns fencing each
other: more than MAX_REJOINS within REJOIN_WINDOW seconds stop the worker instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException

log = logging.getLogger(__name__)

#: Rejoins allowed within REJOIN_WINDOW seconds; one more stops the worker.
MAX_REJOINS = 3
REJOIN_WINDOW = 300.0


class GroupMember:
    """Holds the current consumer; `rejoin()` closes it and builds the next one."""

    def __init__(
        self, build: Callable[[], Consumer], monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._build = build
        self._monotonic = monotonic
        self._consumer = build()
        self._rejoined_at: list[float] = []

    def current(self) -> Consumer:
        return self._consumer

    def may_rejoin(self) -> bool:
        """False once MAX_REJOINS rejoins happened within the last REJOIN_WINDOW seconds."""
        now = self._monotonic()
        self._rejoined_at = [t for t in self._rejoined_at if now - t < REJOIN_WINDOW]
        return len(self._rejoined_at) < MAX_REJOINS

    def rejoin(self) -> Consumer:
        """Close the fenced consumer (librdkafka neither commits nor leaves for a fatal one) and
        build its successor; the caller subscribes it."""
        self._rejoined_at.append(self._monotonic())
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.debug("closing the fenced consumer failed", extra={"detail": str(exc)})
        self._consumer = self._build()
        return self._consumer
