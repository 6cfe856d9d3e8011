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

    def test_reviews_get_their_own_line_when_there_were_any(self) -> None:
        """Review reasons are not rejections: their own line, after the rejections, only when a
        listing went to review (a policy without review rules prints as before)."""
        summary = RunSummary(started=0.0)
        tally = Tally()
        tally.decisions[("review", "textile_fashion")] = 3
        tally.reviews[("title_suggests_closed_goods", "review-keywords")] = 3
        tally.decisions[("rejected", "textile_fashion")] = 1
        tally.rejections[("import_closed", "akar-textile")] = 1
        summary.add(tally)
        assert summary.count_lines() == [
            "by outcome: review=3, rejected=1",
            "by cluster: textile_fashion=4",
            "rejections by reason: import_closed=1",
            "reviews by reason: title_suggests_closed_goods=3",
            "dead letters by error code: none",
        ]
