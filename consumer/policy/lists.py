"""Named dated lists (`lists:`): their versions, list files, and the checks a `{list: NAME}` needs.

A list file is read through a `ReadListFile` the shell passes in (the policy package does no I/O):
it returns at most MAX_LIST_FILE_BYTES + 1 bytes, so a huge file costs no more than the limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Final

from consumer.policy.model import ListVersion
from consumer.policy.problems import Problems, kind

#: A list file larger than this is refused: 10 MiB is about a million HS codes, far past any
#: real list, and it bounds what one bad file can cost a reload.
MAX_LIST_FILE_BYTES: Final = 10 * 1024 * 1024
#: Versions of all lists and fx tables together: each one begins a period that compile builds
#: (weekly fx tables for ten years and a list reviewed twice a year fit with room to spare).
MAX_DATED_VERSIONS: Final = 2_000

#: read(path as written in the policy) -> at most MAX_LIST_FILE_BYTES + 1 bytes; OSError if unreadable.
ReadListFile = Callable[[str], bytes]
#: instant(path, value) -> epoch ms, or None after reporting a problem at `path`.
Instant = Callable[[str, object], int | None]

_VERSION_KEYS = {"effective_from", "effective_until", "entries", "file"}


def parse_list_file(raw: bytes) -> tuple[tuple[str, ...], str | None]:
    """Entries of a list file (one per line; `#` to the end of a line is a comment; blank lines
    and surrounding spaces ignored), or a problem: too large, or not UTF-8 (with its line)."""
    if len(raw) > MAX_LIST_FILE_BYTES:
        return (), f"larger than {MAX_LIST_FILE_BYTES:,} bytes (10 MiB); split the list"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        number = raw.count(b"\n", 0, exc.start) + 1
        return (), f"not UTF-8: byte 0x{raw[exc.start]:02x} on line {number}"
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip() if "#" in line else line.strip()
        if entry:
            entries.append(entry)
    return tuple(entries), None


class ListReader:
    """Reads the `lists:` section into the model's lists, reporting problems on `problems`."""

    def __init__(
        self, problems: Problems, instant: Instant, read_file: ReadListFile | None
    ) -> None:
        self.problems = problems
        self.instant = instant
        self.read_file = read_file
        self.lists: dict[str, tuple[ListVersion, ...]] = {}
        #: Every list name declared, valid or not: a use of a broken list adds no second problem.
        self.declared: set[str] = set()
        self.files: list[str] = []
        self.versions = 0
        #: (list name, leaf key) already checked, so a list used many times is checked once.
        self.checked: set[tuple[str, str]] = set()

    def section(self, value: object) -> None:
        data = self.problems.mapping("lists", value)
        for name, body in (data or {}).items():
            path = f"lists.{name}"
            if self.problems.ident(path, name) is None:
                continue
            self.declared.add(name)
            if not isinstance(body, list) or not body:
                got = "an empty list" if body == [] else kind(body)
                self.problems.fail(path, f"expected a non-empty list of versions, got {got}")
                continue
            versions = [self.version(f"{path}[{i}]", raw) for i, raw in enumerate(body)]
            if all(v is not None for v in versions):
                found = tuple(v for v in versions if v is not None)
                self.overlaps(path, found)
                self.lists[name] = found

    def version(self, path: str, raw: object) -> ListVersion | None:
        data = self.problems.mapping(path, raw)
        if data is None:
            return None
        self.versions += 1
        self.problems.keys(path, data, _VERSION_KEYS, required=("effective_from",))
        start = self.instant(f"{path}.effective_from", data.get("effective_from"))
        end = self.instant(f"{path}.effective_until", data.get("effective_until"))
        if start is not None and end is not None and end <= start:
            msg = f"must be after effective_from ({data['effective_from']})"
            self.problems.fail(f"{path}.effective_until", msg)
            return None
        if ("entries" in data) == ("file" in data):
            self.problems.fail(path, "needs exactly one of entries or file")
            return None
        if "entries" in data:
            entries = self.problems.strings(f"{path}.entries", data["entries"])
            file = None
        else:
            file = self.problems.text(f"{path}.file", data["file"])
            entries = None if file is None else self.file(f"{path}.file", file)
        if entries is None or start is None or ("effective_until" in data and end is None):
            return None
        return ListVersion(start, end, entries, file)

    def file(self, path: str, name: str) -> tuple[str, ...] | None:
        if self.read_file is None:
            msg = f"cannot read {name!r}: list files are read only when the policy is a file"
            self.problems.fail(path, msg)
            return None
        self.files.append(name)
        try:
            raw = self.read_file(name)
        except OSError as exc:
            self.problems.fail(path, f"cannot read {name!r}: {exc.strerror or exc}")
            return None
        entries, problem = parse_list_file(raw)
        if problem is not None:
            self.problems.fail(path, f"{name!r}: {problem}")
            return None
        if not entries:
            self.problems.fail(path, f"{name!r} has no entries")
            return None
        return entries

    def overlaps(self, path: str, versions: tuple[ListVersion, ...]) -> None:
        """Versions of one list may not overlap: at any time at most one is in force."""
        order = sorted(range(len(versions)), key=lambda i: versions[i].from_ms)
        for before, after in itertools.pairwise(order):
            until = versions[before].until_ms
            if until is None or until > versions[after].from_ms:
                msg = f"overlaps {path}[{before}]: a version must end before the next begins"
                self.problems.fail(f"{path}[{after}]", msg)

    def reference(
        self, path: str, key: str, raw: dict[Any, Any], check: Callable[[str], str | None] | None
    ) -> str | None:
        """`{list: NAME}` at `path` (a leaf key's value): the name, once its entries pass `check`."""
        self.problems.keys(path, raw, {"list"}, required=("list",))
        if "list" not in raw:
            return None
        name = self.problems.ident(f"{path}.list", raw["list"])
        if name is None:
            return None
        versions = self.lists.get(name)
        if versions is None and name in self.declared:
            return None  # the list itself was reported
        if versions is None:
            names = [known for known in self.lists if len(known) <= 64]
            msg = f"unknown list {name!r}" + self.problems.hint(name, names)
            self.problems.fail(f"{path}.list", msg)
            return None
        if check is not None and (name, key) not in self.checked:
            self.checked.add((name, key))
            for i, version in enumerate(versions):
                for entry in version.entries:
                    if (problem := check(entry)) is not None:
                        where = f"lists.{name}[{i}]"
                        self.problems.fail(f"{path}.list", f"{where}: {problem}")
                        break
        return name
