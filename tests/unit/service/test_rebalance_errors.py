"""Exceptions in rebalance callbacks reach the loop as one typed error naming the callback."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import TopicPartition

from consumer.errors import RebalanceError
from consumer.service.worker import _wrap_rebalance_errors


class TestWrapRebalanceErrors:
    def test_any_exception_becomes_rebalance_error_with_its_cause(self) -> None:
        """The message names the callback; the original exception is kept as the cause."""

        def _on_assign(worker: Any, consumer: Any, partitions: Any) -> None:
            raise ValueError("boom")

        wrapped = _wrap_rebalance_errors(_on_assign)
        with pytest.raises(RebalanceError, match="on_assign failed: boom") as info:
            wrapped(None, None, [])  # type: ignore[arg-type]
        assert isinstance(info.value.__cause__, ValueError)

    def test_a_callback_that_succeeds_is_untouched(self) -> None:
        """No exception, no wrapping: the callback runs with its arguments."""
        seen: list[Any] = []

        def _on_revoke(worker: Any, consumer: Any, partitions: Any) -> None:
            seen.append(partitions)

        partitions = [TopicPartition("t", 0)]
        _wrap_rebalance_errors(_on_revoke)(None, None, partitions)  # type: ignore[arg-type]
        assert seen == [partitions]
