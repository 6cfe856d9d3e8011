"""JSON log lines on stderr, configured once by the CLI. Fields come from `extra={...}`.

Rule for other libraries' loggers: only our package (`consumer.*`) logs at the configured level.
Every other logger (httpx2/httpx, httpcore2, authlib, urllib3, confluent_kafka, ...) is shown at
WARNING and above only, because some log secrets below that: httpx logs each request's full URL,
userinfo included, at INFO. `libraries=True` (the log_libraries setting) lifts the limit, and
only together with level DEBUG: debugging a library is a deliberate act, never a side effect.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


_OURS = "consumer"


def _ours_or_warning(record: logging.LogRecord) -> bool:
    """A handler filter: records of our package pass; other loggers' only from WARNING up."""
    name = record.name
    return record.levelno >= logging.WARNING or name == _OURS or name.startswith(_OURS + ".")


def configure(
    level: str = "INFO", stream: TextIO | None = None, *, libraries: bool = False
) -> None:
    """Replace the root handlers with one JSON handler; the one process-wide setting we own.

    Other libraries' records below WARNING are dropped unless `libraries` and level is DEBUG.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    if not (libraries and level.upper() == "DEBUG"):
        # On the handler, not on logger levels: it covers loggers whose names we do not know.
        handler.addFilter(_ours_or_warning)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
