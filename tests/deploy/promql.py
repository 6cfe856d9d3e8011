"""What a PromQL expression refers to: metric names and label names, for contract checks.

A small lexer, not a parser: enough for the expressions in deploy/ (rules and dashboard).
Strings, durations and numbers are dropped; an identifier followed by "(" is a function or an
aggregation; the rest of the identifiers, outside {...} and by/on(...), are metric names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", re.IGNORECASE
)
_RANGE = re.compile(r"\[[^\[\]]*\]")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:.])(?:0x[0-9a-fA-F]+|\d[\w.]*)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2", "by", "without", "on",
     "ignoring", "group_left", "group_right"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class References:
    metrics: frozenset[str]
    labels: frozenset[str]


def references(expr: str) -> References:
    """Metric and label names used by `expr` (Grafana variables already substituted)."""
    text = _STRING.sub('""', expr)
    labels: set[str] = set()
    for body in _MATCHERS.findall(text):
        labels.update(_MATCHER_LABEL.findall(body))
    text = _MATCHERS.sub(" ", text)
    for body in _GROUPING.findall(text):
        labels.update(name.strip() for name in body.split(",") if name.strip())
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    metrics: set[str] = set()
    for match in _IDENT.finditer(text):
        name = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or name.lower() in _KEYWORDS:
            continue
        metrics.add(name)
    return References(frozenset(metrics), frozenset(labels))
