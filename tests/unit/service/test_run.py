"""`run`'s Job and result (consumer/service/run.py)."""

from __future__ import annotations

from consumer.core.summary import RunSummary
from consumer.service.run import RunResult


class TestRunResult:
    def test_the_summary_prints_events_then_the_count_tables(self) -> None:
        """`run --summary`: the first line gives the pace, the rest the count tables."""
        summary = RunSummary(started=0.0, first_input=1.0, last_ack=3.0)
        summary.outcomes.update({"APPROVED": 6, "REJECTED": 2})
        summary.clusters.update({"electronics": 8})
        summary.reasons.update({"import_closed": 2})
        assert RunResult(summary, "").summary_text() == (
            "events: 8 in 2.00s of processing (4 events/s)\n"
            "by outcome: APPROVED=6, REJECTED=2\n"
            "by cluster: electronics=8\n"
            "rejections by reason: import_closed=2\n"
            "dead letters by error code: none"
        )
