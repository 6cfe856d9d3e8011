"""Watchdog: a call that overruns its bound is reported once; one that returns in time is not."""

from __future__ import annotations

import threading

from consumer.delivery.watchdog import Watchdog


class TestWatchdog:
    def test_an_overrunning_call_is_reported_with_its_name(self) -> None:
        """Past the bound, the handler hears one line naming the call (the worker then exits)."""
        heard: list[str] = []
        fired = threading.Event()

        def overrun(message: str) -> None:
            heard.append(message)
            fired.set()

        watchdog = Watchdog(overrun)
        with watchdog.guard("send_offsets_to_transaction", 0.01):
            assert fired.wait(5)  # the "stuck" call: it is the elapsed time under test
        assert len(heard) == 1
        assert heard[0].startswith("send_offsets_to_transaction did not return within")

    def test_a_call_that_returns_in_time_is_not_reported(self) -> None:
        """The timer is cancelled when the call returns."""
        heard: list[str] = []
        with Watchdog(heard.append).guard("commit_transaction", 60):
            pass
        assert heard == []
