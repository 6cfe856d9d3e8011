"""Transitional: tools/diff.py, changed on another branch of issue 14, still imports RangeReader
from here. It lives in kafka/range_reader.py; delete this module once diff.py imports it there."""

from consumer.kafka.range_reader import RangeReader

__all__ = ["RangeReader"]
