"""Ends the process when a blocking client call overruns its own timeout by far.

librdkafka's send_offsets_to_transaction() can block past its timeout when the group coordinator
went away during the transaction (librdkafka issues #5456 and #5511, open in 2.16): the worker
would hold its partitions and its open transaction forever, with no way to interrupt the call.
Exiting lets the orchestrator restart it; the restarted worker's init_transactions (same
transactional.id) or the coordinator's timeout aborts what was open, so nothing is lost or
decided twice.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: The exit code of a worker stopped by the watchdog: a runtime failure, like any other.
EXIT_STUCK = 1


def _exit(message: str) -> None:
    log.critical(message)
    sys.stderr.flush()
    os._exit(EXIT_STUCK)  # the main thread is stuck in C; nothing else could stop it


class Watchdog:
    """`guard(what, seconds)` around a call: past `seconds`, `on_overrun` hears one line."""

    def __init__(self, on_overrun: Callable[[str], None] = _exit) -> None:
        self._on_overrun = on_overrun

    @contextmanager
    def guard(self, what: str, seconds: float) -> Iterator[None]:
        message = (
            f"{what} did not return within {seconds:.0f}s (a known librdkafka hang after a "
            f"coordinator outage); exiting so the worker is restarted"
        )
        timer = threading.Timer(seconds, self._on_overrun, (message,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
