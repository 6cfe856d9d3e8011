"""Totals of acknowledged work for one run: the demo's summary and the worker's last log line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from consumer.core.pipeline import Tally


@dataclass(slots=True)
class RunSummary:
    """Totals of acknowledged work, for the demo's summary and the CLI's last log line."""

    started: float
    #: Monotonic times of the first consumed input and the last acknowledged output: the busy span,
    #: which excludes group join and --until-idle waiting, so events/s measures processing.
    first_input: float = 0.0
    last_ack: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    clusters: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    reviews: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)

    def add(self, t: Tally) -> None:
        for (outcome, cluster), n in t.decisions.items():
            self.outcomes[outcome] += n
            self.clusters[cluster] += n
        for (reason, _rule), n in t.rejections.items():
            self.reasons[reason] += n
        for (reason, _rule), n in t.reviews.items():
            self.reviews[reason] += n
        for code, n in t.dead_letters.items():
            self.outcomes["dead_lettered"] += n
            self.dead_letters[code] += n

    @property
    def events(self) -> int:
        return sum(self.outcomes.values())

    @property
    def busy_seconds(self) -> float:
        return max(0.0, self.last_ack - self.first_input) if self.first_input else 0.0

    @property
    def events_per_second(self) -> float:
        busy = self.busy_seconds
        return self.events / busy if busy > 0 else 0.0

    def count_lines(self, dead_letters: Mapping[str, int] | None = None) -> list[str]:
        """The count tables of a printed summary, one line each. `dead_letters` replaces this
        run's own (replay counts the dead letters it left out, not any it produced). Reviews get
        a line only when there were any, so a policy without review rules prints as it always did."""
        reviews = ["reviews by reason: " + count_table(self.reviews)] if self.reviews else []
        return [
            "by outcome: " + count_table(self.outcomes),
            "by cluster: " + count_table(self.clusters),
            "rejections by reason: " + count_table(self.reasons),
            *reviews,
            "dead letters by error code: "
            + count_table(self.dead_letters if dead_letters is None else dead_letters),
        ]


def count_table(counts: Mapping[str, int]) -> str:
    """`a=3, b=1`: largest count first, ties by name; `none` when empty."""
    if not counts:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
