"""Faults: the slot where callbacks leave a fatal error for the loop to raise."""

from __future__ import annotations

import pytest

from consumer.errors import DeliveryError, KafkaClientError
from consumer.kafka.faults import Fault, Faults


class TestFaults:
    def test_empty_until_a_fault_is_recorded(self) -> None:
        """No fault: nothing to raise, and the loop turns on."""
        faults = Faults()
        assert faults.first is None
        faults.raise_first()

    @pytest.mark.parametrize(
        "fault",
        [
            DeliveryError("decisions: broker refused output: TOPIC_AUTHORIZATION_FAILED"),
            KafkaClientError("fatal Kafka client error: _FENCED"),
        ],
        ids=["refused-output", "fatal-client-error"],
    )
    def test_a_recorded_fault_is_raised_as_itself(self, fault: Fault) -> None:
        """What a callback recorded reaches the loop unchanged: its type says who must act."""
        faults = Faults()
        faults.record(fault)
        assert faults.first is fault
        with pytest.raises(type(fault)) as raised:
            faults.raise_first()
        assert raised.value is fault

    def test_the_first_fault_wins(self) -> None:
        """Later faults are consequences of the first (a refused output after a fatal client
        error): the cause is what the operator must see."""
        faults = Faults()
        first = KafkaClientError("fatal Kafka client error: _FATAL")
        faults.record(first)
        faults.record(DeliveryError("decisions: broker refused output"))
        assert faults.first is first
