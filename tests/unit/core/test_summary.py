"""RunSummary's count tables: the one format of the `run --summary` and `replay` count lines."""

from __future__ import annotations

from collections import Counter

import pytest

from consumer.core.pipeline import Tally
from consumer.core.summary import RunSummary, count_table


class TestCountTable:
    @pytest.mark.parametrize(
        ("counts", "expected"),
        [
            ({}, "none"),
            ({"APPROVED": 3}, "APPROVED=3"),
            ({"b": 1, "a": 5, "c": 1}, "a=5, b=1, c=1"),
        ],
        ids=["empty", "one", "largest-first-then-by-name"],
    )
    def test_counts_print_largest_first_ties_by_name(
        self, counts: dict[str, int], expected: str
    ) -> None:
        """The biggest share first, so the line reads as a ranking; `none` rather than nothing."""
        assert count_table(counts) == expected


class TestCountLines:
    def test_four_tables_one_line_each(self) -> None:
        """Outcomes, clusters, rejection reasons and dead-letter codes, in that order."""
        summary = RunSummary(started=0.0)
        tally = Tally()
        tally.dead_letters["corrupt"] = 2
        summary.add(tally)
        assert summary.count_lines() == [
            "by outcome: dead_lettered=2",
            "by cluster: none",
            "rejections by reason: none",
            "dead letters by error code: corrupt=2",
        ]

    def test_dead_letters_counted_elsewhere_replace_the_runs_own(self) -> None:
        """replay publishes no dead letters; it prints those it left out instead."""
        summary = RunSummary(started=0.0)
        lines = summary.count_lines(dead_letters=Counter({"truncated": 4}))
        assert lines[-1] == "dead letters by error code: truncated=4"
