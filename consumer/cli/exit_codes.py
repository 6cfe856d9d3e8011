"""The exit codes every command keeps, and the one line a command prints when no broker answers.

0 success; 1 runtime failure (broker refused output, unexpected error); 2 bad usage, bad
configuration, invalid policy or invalid input lines.
"""

from __future__ import annotations

import sys

from consumer.errors import BrokerUnavailable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def broker_unavailable(command: str, exc: BrokerUnavailable) -> int:
    """One line, exit 1: the broker's absence is the whole story, so no log record or traceback."""
    print(f"import-closure: {command}: {exc}", file=sys.stderr)
    return EXIT_FAILURE
