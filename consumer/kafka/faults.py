"""The first fatal error a client callback saw. Callbacks never raise (librdkafka calls them from
inside poll and flush), so they record it here and the loop raises it at its next turn.

Written by librdkafka's error callback (kafka/callbacks.py) and the output delivery callback
(delivery/outputs.py), both on the thread that polls; read by the worker's loop and by a
delivery waiting for acknowledgements, which stops waiting once there is one.
"""

from __future__ import annotations

from consumer.errors import DeliveryError, KafkaClientError

#: What a fault is: the broker refused our output for good, or the client reached a fatal state.
Fault = DeliveryError | KafkaClientError


class Faults:
    """One slot; the first fault wins, later ones are consequences of it."""

    __slots__ = ("_first",)

    def __init__(self) -> None:
        self._first: Fault | None = None

    def record(self, fault: Fault) -> None:
        if self._first is None:
            self._first = fault

    @property
    def first(self) -> Fault | None:
        return self._first

    def raise_first(self) -> None:
        """Raise the recorded fault, if any."""
        if self._first is not None:
            raise self._first
