"""The problem list of one policy load, and the generic shape checks that append to it.

Every check appends `path: message` and carries on, so an operator fixes a file in one go. The
list is capped and "did you mean" hints have a budget, so a generated file with a million
mistakes costs seconds, not minutes, and prints a screenful, not a million lines.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

#: Problems listed per load; the rest are counted in one closing "... and N more" line.
MAX_PROBLEMS: Final = 100
#: Candidate comparisons "did you mean" may spend per load: enough for every hint in a
#: hand-written file, bounded for a generated one (20,000 clusters x 5,000 unknown names, each
#: compared with every cluster, took minutes).
HINT_BUDGET: Final = 50_000
#: Words and candidates longer than this get no hint: difflib's cost grows with both lengths.
HINT_MAX_LEN: Final = 64

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def kind(value: object) -> str:
    """How a YAML value looks, for "expected X, got Y"; long strings are shortened."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'}; YAML reads yes/no/on/off as booleans, quote it)"
    if isinstance(value, int | float):
        return f"a number ({value}; quote it if it is text)"
    if isinstance(value, str):
        shown = repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
        return f"a string ({shown})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Problems:
    """Collects `path: message` problems: the first MAX_PROBLEMS kept, `total` counting all."""

    def __init__(self, problems: Iterable[str] = (), more: int = 0) -> None:
        self.problems: list[str] = list(problems)[:MAX_PROBLEMS]
        self.total = len(self.problems) + more
        self.hint_budget = HINT_BUDGET

    def fail(self, path: str, message: str) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{path}: {message}")

    def listed(self) -> list[str]:
        """The problems to show, with one closing line counting those left out."""
        more = self.total - len(self.problems)
        if more <= 0:
            return list(self.problems)
        tail = f"... and {more:,} more problems (only the first {MAX_PROBLEMS} are listed)"
        return [*self.problems, tail]

    def hint(self, word: str, candidates: Sequence[str]) -> str:
        """` (did you mean 'x'?)` or "": none once problems are no longer shown or the budget is spent."""
        if self.total >= MAX_PROBLEMS or len(word) > HINT_MAX_LEN:
            return ""
        if len(candidates) > self.hint_budget:
            return ""
        self.hint_budget -= len(candidates)
        close = difflib.get_close_matches(word, candidates, n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""

    def keys(
        self, path: str, data: dict[Any, Any], allowed: set[str], required: Iterable[str]
    ) -> None:
        prefix = f"{path}." if path else ""
        for key in data:
            if key not in allowed:
                more = self.hint(str(key), sorted(allowed))
                expected = ", ".join(sorted(allowed))
                self.fail(f"{prefix}{key}", f"unknown key{more}; expected one of: {expected}")
        for key in required:
            if key not in data:
                self.fail(f"{prefix}{key}", "missing required key")

    def text(self, path: str, value: object, optional: bool = False) -> str | None:
        """A non-empty string; with `optional`, null means not given."""
        if optional and value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {kind(value)}")
            return None
        return value

    def ident(self, path: str, value: object) -> str | None:
        text = self.text(path, value)
        if text is not None and not _ID.fullmatch(text):
            self.fail(path, f"{text!r} is not an id: use letters, digits, '.', '_' and '-'")
            return None
        return text

    def strings(
        self, path: str, value: object, check: Callable[[str], str | None] | None = None
    ) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else kind(value)
            self.fail(path, f"expected a non-empty list, got {got}")
            return None
        out: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                self.fail(path, f"expected non-empty strings, got {kind(item)}")
            elif check is not None and (problem := check(item)) is not None:
                self.fail(path, problem)
            else:
                out.append(item)
        return tuple(out) if len(out) == len(value) else None

    def mapping(self, path: str, value: object) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {kind(value)}")
            return None
        return value
