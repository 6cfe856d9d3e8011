"""The JSON form of ListingCreated and ListingDecision, for the `check` command and its output.

JSON uses the Avro field names. Times are RFC 3339 UTC strings with milliseconds on output; on
input `event_time` may also be epoch milliseconds. Types are checked by fastavro against the same
reader schema the codec uses, so JSON and Avro accept the same listings.

Input lines are bytes from anywhere, so `json_lines` and `listing_from_json_line` turn every way a
line can be broken (too long, not UTF-8, not JSON, nested past json's recursion limit, a number of
thousands of digits, a lone surrogate) into a DecodeError for that line alone.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Final, cast

from fastavro.validation import ValidationError, ValidationErrorData, validate

from consumer.codec.limits import MAX_VALUE_BYTES, listing_too_large
from consumer.codec.records import decision_record, listing_from_record, listing_record
from consumer.codec.resolution import strip_logical_types
from consumer.codec.schemas import LISTING_CREATED, BundledSchemas
from consumer.core.records import Decision, Listing
from consumer.errors import DecodeError

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
#: The epoch-millisecond range that RFC 3339 (years 0001 to 9999) can print.
_MIN_MS: Final = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
_MAX_MS: Final = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS
#: 1 MiB: a listing is about 1 KB; a longer line is skipped without being held in memory.
MAX_LINE_BYTES: Final = 1024 * 1024
#: A 64-bit integer has at most 19 digits; longer ones are not converted (Python refuses 4,300+).
_MAX_INT_DIGITS: Final = 20
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_PRIMITIVE_NAMES: Final = {
    "null": "null",
    "boolean": "true or false",
    "int": "a 32-bit integer",
    "long": "a 64-bit integer",
    "float": "a number",
    "double": "a number",
    "string": "a string",
}


@functools.cache
def _listing_schema() -> dict[str, Any]:
    """The reader schema without logical types; parsed on first use, the same for every call."""
    return cast(dict[str, Any], strip_logical_types(BundledSchemas.load()[LISTING_CREATED].parsed))


def json_lines(stream: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[bytes | None]:
    """Each line of a binary stream, newline included; None for a line of more than `limit` bytes.

    A long line is read past in `limit`-sized pieces, so memory stays bounded whatever the input.
    """
    while chunk := stream.readline(limit + 1):
        if len(chunk) <= limit or chunk.endswith(b"\n"):
            yield chunk
            continue
        while chunk and not chunk.endswith(b"\n"):
            chunk = stream.readline(limit)
        yield None


def read_listings(stream: IO[bytes]) -> Iterator[tuple[int, Listing | DecodeError]]:
    """(line number, listing or the reason it is invalid) per non-blank line, as `check` reads."""
    for number, line in enumerate(json_lines(stream), start=1):
        if line is not None and not line.strip():
            continue
        try:
            yield number, listing_from_json_line(line)
        except DecodeError as exc:
            yield number, exc


def listing_from_json_line(line: bytes | None) -> Listing:
    """A Listing from one line of JSON Lines (None: a line `json_lines` found too long).

    DecodeError codes: too_long, invalid_utf8, invalid_json, invalid_listing.
    """
    if line is None:
        raise DecodeError("too_long", f"longer than {MAX_LINE_BYTES:,} bytes; skipped")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8: byte 0x{line[exc.start]:02x} at byte offset {exc.start} ({exc.reason})"
        raise DecodeError("invalid_utf8", msg) from exc
    try:
        obj = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        msg = f"not valid JSON: {exc.msg} at column {exc.colno}"
        raise DecodeError("invalid_json", msg) from exc
    except RecursionError as exc:  # what json raises for deep nesting; a listing is 3 levels deep
        raise DecodeError("invalid_json", "not valid JSON: nested too deeply") from exc
    where = _lone_surrogate(obj)
    if where is not None:
        msg = "contains a lone surrogate such as \\ud800, which is not a Unicode character"
        raise _invalid(where, msg)
    return listing_from_json(obj)


def listing_from_json(obj: object) -> Listing:
    """A Listing from a decoded JSON object; DecodeError("invalid_listing", "<field>: <problem>").

    Unknown and missing fields are all reported at once, joined by "; ".
    """
    schema = _listing_schema()
    problems: list[str] = []
    record = _with_defaults(obj, schema, "", problems)
    price = record.get("price")
    if isinstance(price, dict):
        record["price"] = _with_defaults(price, _field_types(schema)["price"], "price.", problems)
    if problems:
        raise DecodeError("invalid_listing", "; ".join(problems))
    record["event_time"] = _event_time_ms(record["event_time"])
    try:
        validate(record, schema, raise_errors=True)
    except ValidationError as exc:
        raise _invalid_from(exc.errors, record) from exc
    listing = listing_from_record(record)
    too_large = listing_too_large(listing, MAX_VALUE_BYTES)  # no wire size: check every length
    if too_large is not None:
        raise DecodeError("too_large", too_large)
    return listing


def listing_to_json(listing: Listing) -> dict[str, Any]:
    """The JSON form `listing_from_json` reads back to an equal Listing."""
    record = listing_record(listing)
    record["event_time"] = format_time(listing.event_time_ms)
    record["category_path"] = list(listing.category_path)
    record["attributes"] = dict(listing.attributes)
    return record


def decision_to_json(decision: Decision) -> dict[str, Any]:
    """Every Decision field under its Avro name; times as RFC 3339 UTC with milliseconds."""
    record = decision_record(decision)
    record["event_time"] = format_time(decision.event_time_ms)
    record["decided_at"] = format_time(decision.decided_at_ms)
    as_of = decision.provenance.as_of_ms
    record["as_of"] = None if as_of is None else format_time(as_of)
    if decision.fx is not None and decision.fx.table_from_ms is not None:
        record["fx"]["table_from"] = format_time(decision.fx.table_from_ms)
    return record


def format_time(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC, e.g. 2021-08-03T10:00:00.000Z."""
    if not _MIN_MS <= ms <= _MAX_MS:
        msg = f"{ms} ms is outside the years 0001 to 9999"
        raise ValueError(msg)
    text = (_EPOCH + ms * _ONE_MS).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def parse_time(text: str) -> int:
    """RFC 3339 date-time to epoch milliseconds (sub-millisecond digits are dropped)."""
    try:
        moment = datetime.fromisoformat(text.upper().replace(" ", "T", 1))
    except ValueError:
        msg = f"{text!r} is not an RFC 3339 date-time"
        raise ValueError(msg) from None
    if moment.tzinfo is None:
        msg = f"{text!r} has no UTC offset (add Z or +07:00)"
        raise ValueError(msg)
    return (moment - _EPOCH) // _ONE_MS


def _invalid(path: str, problem: str) -> DecodeError:
    return DecodeError("invalid_listing", f"{path}: {problem}")


def _field_types(record: Mapping[str, Any]) -> dict[str, Any]:
    return {str(f["name"]): f["type"] for f in record["fields"]}


def _with_defaults(
    obj: object, record: Mapping[str, Any], prefix: str, problems: list[str]
) -> dict[str, Any]:
    """A copy of `obj` with defaults filled in; unknown and missing fields go to `problems`.

    An unknown field is an error rather than ignored: a typo such as `hs-code` would otherwise
    silently decide the listing as if it had no HS code.
    """
    where = prefix.rstrip(".") or "listing"
    if not isinstance(obj, dict):
        raise _invalid(where, f"expected a JSON object, got {_json_kind(obj)}")
    fields = {str(f["name"]): f for f in record["fields"]}
    problems.extend(f"{prefix}{key}: unknown field" for key in obj if key not in fields)
    out: dict[str, Any] = {}
    missing: list[str] = []
    for name, field in fields.items():
        if name in obj:
            out[name] = obj[name]
        elif "default" in field:
            default = field["default"]
            out[name] = dict(default) if isinstance(default, dict) else default
        else:
            missing.append(f"{prefix}{name}")
    if missing:
        plural = "s" if len(missing) > 1 else ""
        problems.append(f"{', '.join(missing)}: required field{plural} missing")
    return out


class _HugeInt:
    """Stands in for an integer too long to convert, so the field's type check names it."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _bounded_int(text: str) -> int | _HugeInt:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= _MAX_INT_DIGITS else _HugeInt(digits)


def _lone_surrogate(value: object) -> str | None:
    """The path of a string or key holding a lone surrogate, if any; iterative, as JSON nests deep."""
    stack: list[tuple[str, object]] = [("listing", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = key.encode("utf-8", "backslashreplace").decode("utf-8")
                inner_path = name if path == "listing" else f"{path}.{name}"
                if not key.isascii() and _SURROGATE.search(key):
                    return inner_path
                stack.append((inner_path, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
    return None


def _event_time_ms(value: object) -> int:
    if isinstance(value, str):
        try:
            ms = parse_time(value)
        except ValueError as exc:
            raise _invalid("event_time", str(exc)) from exc
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        msg = f"expected an RFC 3339 string or epoch milliseconds, got {_json_kind(value)}"
        raise _invalid("event_time", msg)
    if not _MIN_MS <= ms <= _MAX_MS:
        raise _invalid("event_time", f"{ms} ms is outside the years 0001 to 9999")
    return ms


def _invalid_from(
    errors: tuple[ValidationErrorData, ...], record: Mapping[str, Any]
) -> DecodeError:
    """One message for the first failing field, listing every type its union would have taken."""
    first = errors[0].field
    same = [e for e in errors if e.field == first]
    record_name, _, field = str(first).rpartition(".")
    path = field if record_name == LISTING_CREATED else f"price.{field}"
    holder = record if record_name == LISTING_CREATED else record.get("price", {})
    whole = holder.get(field)
    datum = same[0].datum
    expected = " or ".join(_describe(e.schema) for e in same)
    if datum is not whole and isinstance(whole, list | dict):
        part = "item" if isinstance(whole, list) else "value"
        return _invalid(path, f"each {part} must be {expected}, got {_json_kind(datum)}")
    return _invalid(path, f"expected {expected}, got {_json_kind(datum)}")


def _describe(schema: Any) -> str:
    if isinstance(schema, str):
        return _PRIMITIVE_NAMES.get(schema, schema.rpartition(".")[2])
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "enum":
            return "one of " + ", ".join(schema["symbols"])
        if kind == "array":
            return f"a list of {_plural(schema['items'])}"
        if kind == "map":
            return f"an object of {_plural(schema['values'])}"
        if kind == "record":
            return "an object"
        return _describe(kind)
    return str(schema)


def _plural(schema: Any) -> str:
    if schema == "string":
        return "strings"
    return f"items of type {_describe(schema)}"


def _json_kind(value: object) -> str:
    """How a JSON value looks, short: null, true, 5, "text" or a type name for containers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'"{shown}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, _HugeInt):
        return f"a number of {value.digits:,} digits"
    return type(value).__name__
