"""OffsetLedger: nothing is committable past unacknowledged work."""

from __future__ import annotations

import pytest

from consumer.delivery.ledger import OffsetLedger, OffsetRegressionError


def _ack_all(chunk) -> None:
    for _ in range(chunk.remaining):
        chunk.ack()


class TestOffsetLedger:
    def test_nothing_committable_until_every_output_is_acknowledged(self) -> None:
        """A chunk with one unacknowledged output holds its partition back."""
        ledger: OffsetLedger[None] = OffsetLedger()
        chunk = ledger.open("t", 0, 10, 12, 3, None)
        chunk.ack()
        chunk.ack()
        assert ledger.pop_done() == ({}, [])
        chunk.ack()
        offsets, finished = ledger.pop_done()
        assert offsets == {("t", 0): 13}
        assert finished == [chunk]

    def test_later_done_chunk_waits_for_earlier_one(self) -> None:
        """Out-of-order acknowledgements never let the commit jump over undelivered work."""
        ledger: OffsetLedger[None] = OffsetLedger()
        first = ledger.open("t", 0, 0, 4, 5, None)
        second = ledger.open("t", 0, 5, 9, 5, None)
        _ack_all(second)
        assert ledger.pop_done()[0] == {}
        _ack_all(first)
        assert ledger.pop_done()[0] == {("t", 0): 10}

    def test_partitions_are_independent(self) -> None:
        """A slow partition does not hold back another."""
        ledger: OffsetLedger[str] = OffsetLedger()
        ledger.open("t", 0, 0, 0, 1, "slow")
        fast = ledger.open("t", 1, 7, 7, 1, "fast")
        fast.ack()
        offsets, finished = ledger.pop_done()
        assert offsets == {("t", 1): 8}
        assert [c.payload for c in finished] == ["fast"]

    @pytest.mark.parametrize(("first", "last"), [(4, 6), (3, 3)], ids=["overlapping", "repeated"])
    def test_refuses_chunk_that_goes_backwards(self, first: int, last: int) -> None:
        """Re-tracking an offset already tracked is a bug and raises, naming the partition."""
        ledger: OffsetLedger[None] = OffsetLedger()
        ledger.open("t", 2, 0, 5, 6, None)
        with pytest.raises(OffsetRegressionError, match=r"t\[2\]: chunk starts at"):
            ledger.open("t", 2, first, last, 1, None)

    def test_forget_drops_unfinished_work_and_allows_reassignment(self) -> None:
        """After revocation the partition may come back and restart from an earlier offset."""
        ledger: OffsetLedger[None] = OffsetLedger()
        ledger.open("t", 0, 0, 9, 10, None)
        dropped = ledger.forget([("t", 0)])
        assert [c.remaining for c in dropped] == [10]
        assert ledger.in_flight() == 0
        ledger.open("t", 0, 0, 9, 10, None)  # no regression error
        assert ledger.pending()

    def test_in_flight_counts_unacknowledged_outputs_per_partition(self) -> None:
        """in_flight sums what is still waiting for the broker, optionally for some partitions."""
        ledger: OffsetLedger[None] = OffsetLedger()
        a = ledger.open("t", 0, 0, 2, 3, None)
        ledger.open("t", 1, 0, 1, 2, None)
        a.ack()
        assert ledger.in_flight() == 4
        assert ledger.in_flight([("t", 0)]) == 2
        assert ledger.in_flight([("t", 9)]) == 0
