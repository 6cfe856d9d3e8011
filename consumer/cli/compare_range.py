"""diff's compare over a bounded topic range, which `diff --topic` and `replay --dry-run` share.

Its natural home is beside `compare` in consumer/tools/diff.py; it sits here so that neither
command module imports the other.
"""

from __future__ import annotations

import sys
from typing import IO

from consumer.config import Settings
from consumer.core.impact import ImpactReport, Judge
from consumer.tools.diff import compare, topic_input
from consumer.tools.export import RangeSpec, open_range, reading_codec


def compare_range(
    settings: Settings,
    spec: RangeSpec,
    judge: Judge,
    *,
    examples: int = 5,
    changes: IO[str] | None = None,
) -> ImpactReport:
    """diff's compare over a topic range (diff --topic, replay --dry-run); BrokerUnavailable when
    no broker answers, for the caller's one line."""
    reader = open_range(settings, spec)
    try:
        items = topic_input(reader, reading_codec(settings))
        return compare(items, judge, sys.stderr, examples=examples, changes=changes)
    finally:
        reader.close()
