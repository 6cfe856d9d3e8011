"""A policy file's bytes to plain YAML data, inside limits that keep a hostile file cheap to refuse.

A policy is small hand-written data. Everything YAML offers beyond that, and every way a broken
file could cost unbounded time or memory, is refused with a `where: what` problem:

- files over MAX_POLICY_BYTES, before parsing;
- bytes that are not UTF-8 (the problem names the byte offset), and characters YAML forbids;
- anchors and aliases (`&name`, `*name`): a policy never needs them, and an alias bomb of a few
  hundred bytes expands to billions of items;
- nesting deeper than MAX_DEPTH;
- numbers written with more than MAX_NUMBER_CHARS characters (Python refuses to convert ints past
  4,300 digits; nothing in a policy needs more than a few);
- strings holding lone surrogates (`"\\ud800"`), which are not Unicode characters;
- tags other than the plain YAML types (`!!binary`, `!!set`, `!custom`), and keys that are lists
  or mappings.

Timestamps are not constructed: an unquoted `2021-08-03` stays text, and `parse_instant` reads it
when a field asks for a time, so an impossible date is a problem at its path, not a crash.

Data is built straight from the parser's events, with no node graph in between, by libyaml's
parser when PyYAML has it (ten times faster on a large file) and PyYAML's own otherwise. Plain
scalars resolve as in SafeLoader (null, booleans, ints, floats, strings).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.scanner import Scanner

from consumer.errors import PolicyError
from consumer.policy.problems import MAX_PROBLEMS

#: 5 MiB: the bundled policies are about 5 KB; a file a thousand times larger is not hand-written.
MAX_POLICY_BYTES: Final = 5 * 1024 * 1024
#: Levels of lists and mappings, the top-level mapping being the first. A policy needs five
#: (rules[i].when.price_below); 64 leaves room to spare.
MAX_DEPTH: Final = 64
#: Longest number as written; an fx rate such as 0.000000000062 is 14.
MAX_NUMBER_CHARS: Final = 32

_TAG: Final = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _SEQ, _MAP = f"{_TAG}timestamp", f"{_TAG}seq", f"{_TAG}map"
#: SafeLoader's implicit resolvers without the timestamp one, by first character ("" for the empty
#: scalar; SafeLoader has no wildcard resolvers).
_RESOLVERS: Final[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CONSTRUCT: Final = SafeConstructor()  # only its int and float conversions are used
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


@dataclass(frozen=True, slots=True)
class Document:
    """The parsed YAML and the duplicate keys YAML would silently have overwritten."""

    data: object
    duplicates: tuple[str, ...]
    #: Duplicate keys beyond the MAX_PROBLEMS kept in `duplicates`.
    more_duplicates: int = 0


def parse_document(raw: bytes | str, source: str = "<policy>") -> Document:
    """Bytes (strict UTF-8) or text to YAML data; PolicyError with one problem if it is refused."""
    data = _encoded(raw, source)
    builder = _Builder()
    parser = None
    try:
        parser = _parser(data)  # PyYAML's reader checks every character here
        value = builder.document(parser)
    except _Refused as exc:
        raise PolicyError([f"{exc.where}: {exc.message}"], source) from exc
    except ReaderError as exc:
        where = _line_column(data if _LIBYAML else data.decode("utf-8"), exc.position)
        msg = (
            f"{where}: character U+{exc.character:04X} cannot appear in YAML "
            "(control characters other than tab and line breaks are not allowed)"
        )
        raise PolicyError([msg], source) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        raise PolicyError([f"{where}: YAML syntax error: {exc.problem}"], source) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([f"yaml: {exc}"], source) from exc
    finally:
        if parser is not None:
            parser.dispose()
    return Document(value, tuple(builder.duplicates), builder.more_duplicates)


def parse_instant(text: str) -> date | datetime:
    """A date or datetime as YAML 1.1 spells a timestamp, else ISO 8601; ValueError if invalid.

    YAML's own grammar comes first so unquoted and quoted times mean the same (the loader leaves
    both as text); impossible values such as 2021-02-30 or +99:00 raise ValueError here.
    """
    match = yaml.SafeLoader.timestamp_regexp.match(text)
    if match is None:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    part = match.groupdict()
    year, month, day = int(part["year"]), int(part["month"]), int(part["day"])
    if not part["hour"]:
        return date(year, month, day)
    fraction = int((part["fraction"] or "")[:6].ljust(6, "0"))
    zone: timezone | None = None
    if part["tz_sign"]:
        offset = timedelta(hours=int(part["tz_hour"]), minutes=int(part["tz_minute"] or 0))
        zone = timezone(-offset if part["tz_sign"] == "-" else offset)
    elif part["tz"]:
        zone = UTC
    hms = int(part["hour"]), int(part["minute"]), int(part["second"])
    return datetime(year, month, day, *hms, fraction, tzinfo=zone)


class _Refused(Exception):
    """Raised while building for a construct a policy file may not use; never escapes this module."""

    def __init__(self, mark: Any, message: str, where: str | None = None) -> None:
        """`where` is the mark's line and column unless given (a path, for string problems)."""
        self.where = where or (
            f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        )
        self.message = message
        super().__init__(f"{self.where}: {message}")


class _PyParser(Reader, Scanner, Parser):
    """PyYAML's pure-Python event parser, for when PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


_LIBYAML: Final = bool(getattr(yaml, "__with_libyaml__", False))


def _parser(data: bytes) -> Any:
    """An object with get_event() and dispose(); constructing it reads nothing yet."""
    if _LIBYAML:
        from yaml._yaml import CParser  # type: ignore[import-not-found,unused-ignore]

        return CParser(data)
    return _PyParser(data.decode("utf-8"))


_NO_KEY: Final = object()


@dataclass(slots=True)
class _Open:
    """A sequence or mapping being built, and for a mapping the key waiting for its value."""

    container: list[Any] | dict[Any, Any]
    mark: Any
    key: Any = _NO_KEY
    key_mark: Any = None


@dataclass(slots=True)
class _Builder:
    """Builds Python data from parser events with an explicit stack, so depth costs no recursion."""

    duplicates: list[str] = field(default_factory=list)
    more_duplicates: int = 0
    stack: list[_Open] = field(default_factory=list)

    def document(self, parser: Any) -> object:
        parser.get_event()  # StreamStart
        event = parser.get_event()
        if isinstance(event, yaml.StreamEndEvent):
            return None
        root: list[object] = []
        while not isinstance(event := parser.get_event(), yaml.DocumentEndEvent):
            value = self.event(event)
            if value is not _NO_KEY:
                root.append(value)
        event = parser.get_event()
        if not isinstance(event, yaml.StreamEndEvent):
            msg = "expected a single document, found a second one ('---')"
            raise _Refused(event.start_mark, msg)
        return root[0] if root else None

    def event(self, event: Any) -> object:
        """Apply one event; a finished top-level value is returned, anything else is _NO_KEY.

        Checks go from the most common event down, by exact type: this runs once per event.
        """
        kind = type(event)
        if kind is yaml.ScalarEvent and event.anchor is None:
            return self.add(self.scalar(event), event.start_mark)
        if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            done = self.stack.pop()
            return self.add(done.container, done.mark)
        if kind is yaml.AliasEvent:
            msg = f"alias *{event.anchor}: anchors and aliases are not allowed in a policy; write the value out"
            raise _Refused(event.start_mark, msg)
        if event.anchor is not None:
            msg = f"anchor &{event.anchor}: anchors and aliases are not allowed in a policy"
            raise _Refused(event.start_mark, msg)
        if len(self.stack) >= MAX_DEPTH:
            msg = f"nested more than {MAX_DEPTH} levels deep; a policy needs a handful"
            raise _Refused(event.start_mark, msg)
        if kind is yaml.SequenceStartEvent:
            _collection_tag(event, _SEQ)
            self.stack.append(_Open([], event.start_mark))
        else:
            _collection_tag(event, _MAP)
            self.stack.append(_Open({}, event.start_mark))
        return _NO_KEY

    def add(self, value: object, mark: Any) -> object:
        if not self.stack:
            return value
        top = self.stack[-1]
        if type(top.container) is list:
            top.container.append(value)
        elif top.key is _NO_KEY:
            if type(value) is list or type(value) is dict:
                raise _Refused(mark, "a mapping key must be a plain value, not a list or mapping")
            top.key, top.key_mark = value, mark
        else:
            if top.key in top.container:
                self.duplicate(f"line {top.key_mark.line + 1}: duplicate key {top.key!r}")
            top.container[top.key] = value  # the last one wins, as in plain YAML
            top.key = _NO_KEY
        return _NO_KEY

    def duplicate(self, problem: str) -> None:
        if len(self.duplicates) < MAX_PROBLEMS:
            self.duplicates.append(problem)
        else:
            self.more_duplicates += 1

    def scalar(self, event: Any) -> object:
        value: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            resolvers = _RESOLVERS.get(value[:1]) if event.implicit[0] else None
            tag = _STR if resolvers is None else _implicit_tag(value, resolvers)
        if tag in (_STR, _TIMESTAMP):
            if not value.isascii() and _SURROGATE.search(value):
                raise _Refused(event.start_mark, _SURROGATE_MESSAGE, where=self.path())
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            boolean = SafeConstructor.bool_values.get(value.lower())
            if boolean is None:
                raise _Refused(event.start_mark, f"{value!r} is not a boolean")
            return boolean
        if tag in (_INT, _FLOAT):
            return _number(tag, value, event.start_mark)
        if tag == f"{_TAG}merge":
            raise _Refused(event.start_mark, "merge keys (<<) are not supported in a policy")
        raise _Refused(event.start_mark, f"the tag {tag} is not supported in a policy")

    def path(self) -> str:
        """Where the scalar being built goes, as `rules[0].when.cluster_in[1]`."""
        parts: list[str] = []
        for frame in self.stack:
            if isinstance(frame.container, list):
                parts.append(f"[{len(frame.container)}]")
            elif frame.key is not _NO_KEY:
                shown = str(frame.key).encode("utf-8", "backslashreplace").decode("utf-8")
                parts.append(f".{shown}" if parts else shown)
        return "".join(parts) or "(top level)"


def _implicit_tag(value: str, resolvers: list[tuple[str, re.Pattern[str]]]) -> str:
    """The tag SafeLoader's resolver gives a plain scalar, except that timestamps stay text."""
    for tag, regexp in resolvers:
        if regexp.match(value):
            return str(tag)
    return _STR


def _number(tag: str, value: str, mark: Any) -> int | float:
    if len(value) > MAX_NUMBER_CHARS:
        msg = f"a number of {len(value)} characters; at most {MAX_NUMBER_CHARS} are accepted"
        raise _Refused(mark, msg)
    node = yaml.ScalarNode(tag, value)
    try:
        if tag == _INT:
            return int(_CONSTRUCT.construct_yaml_int(node))
        return float(_CONSTRUCT.construct_yaml_float(node))
    except ValueError as exc:  # e.g. `0x_` matches YAML's int pattern but has no digits
        kind = "an integer" if tag == _INT else "a number"
        raise _Refused(mark, f"{value!r} is not {kind}") from exc


def _collection_tag(event: Any, default: str) -> None:
    if event.tag not in (None, "!", default):
        raise _Refused(event.start_mark, f"the tag {event.tag} is not supported in a policy")


def _encoded(raw: bytes | str, source: str) -> bytes:
    """UTF-8 bytes of the file, checked: size, byte-order marks, strict decoding, no surrogates."""
    unit = "bytes" if isinstance(raw, bytes) else "characters"
    if len(raw) > MAX_POLICY_BYTES:
        msg = f"(file): more than {MAX_POLICY_BYTES:,} {unit}; a policy file may have at most 5 MiB"
        raise PolicyError([msg], source)
    if isinstance(raw, str):
        if _SURROGATE.search(raw):
            raise PolicyError([f"(file): {_SURROGATE_MESSAGE}"], source)
        return raw.encode("utf-8")
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            msg = f"(file): the file is {encoding} (it starts with a byte-order mark); save it as UTF-8"
            raise PolicyError([msg], source)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        msg = (
            f"line {line}: not UTF-8: byte 0x{raw[exc.start]:02x} at byte offset {exc.start} "
            f"({exc.reason}); save the file as UTF-8"
        )
        raise PolicyError([msg], source) from exc
    return raw


def _line_column(data: bytes | str, position: int) -> str:
    """`line L, column C` of a byte offset (libyaml) or character offset (PyYAML)."""
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    start = data.rfind(newline, 0, position) + 1
    before = data[start:position]
    width = len(before.decode("utf-8", "replace")) if isinstance(before, bytes) else len(before)
    return f"line {data.count(newline, 0, position) + 1}, column {width + 1}"


_SURROGATE_MESSAGE: Final = (
    "contains a lone surrogate such as \\ud800, which is not a Unicode character "
    "(write the character itself, or \\U0001F600 for characters beyond \\uFFFF)"
)
