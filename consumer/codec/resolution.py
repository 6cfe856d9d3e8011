"""Schema work done once per writer schema: stripped and strict copies, and what resolution needs.

- strip_logical_types: the same wire format without logicalType, so timestamps stay ints.
- strict_schema: a copy on which fastavro's reader refuses negative enum and union indexes.
- mismatch / projection: whether a writer can be read as the reader at all, and whether it can be
  read alone with defaults filled in afterwards (cheaper than fastavro's field-by-field resolution).
"""

from __future__ import annotations

import copy
from typing import Any, Final, cast

from fastavro import parse_schema

from consumer.codec.schemas import ParsedSchema

#: Keys fastavro adds to a parsed schema; dropped before a stripped copy is parsed again.
_PARSED_MARKERS: Final = frozenset({"__fastavro_parsed", "__named_schemas"})


def strip_logical_types(schema: ParsedSchema) -> ParsedSchema:
    """A parsed copy of `schema` without logicalType annotations: same wire format, plain values."""
    return parse_schema(_strip(schema))


class _StrictUnion(list[Any]):
    """A union's branches, for fastavro's reader only: a negative branch index raises.

    fastavro's reader (Cython) turns a negative index into `index + len(union)` before looking the
    branch up, so index -1 silently reads as the last branch. It asks for the length only for a
    negative index, so refusing to give one turns exactly those into an error, and non-negative
    lookups stay at C speed. Nothing else asks a reader-side union for its length
    (tests/unit/test_codec_avro.py pins this behaviour).
    """

    __slots__ = ()

    def __len__(self) -> int:
        msg = "negative union branch index"
        raise IndexError(msg)


def strict_schema(schema: ParsedSchema) -> ParsedSchema:
    """A copy of a parsed schema for reading only, on which fastavro refuses negative indexes.

    fastavro looks up `symbols[index]` and `union[index]` with the index it read, so a corrupt
    negative index silently picks a symbol or branch from the end (enum bytes 01 read as the
    last symbol). Here enum symbols become {index: symbol} dicts (a dict lookup costs what a list
    index does) and unions a _StrictUnion; both then raise, and the codec reports the value as
    corrupt. Only fit for the writer side of a read: resolution and encoding need the ordinary
    schema.
    """
    copied = copy.deepcopy(schema)
    seen: set[int] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return _StrictUnion(walk(item) for item in node)
        if not isinstance(node, dict) or id(node) in seen:
            return node
        seen.add(id(node))
        kind = node.get("type")
        if kind == "enum":
            node["symbols"] = dict(enumerate(node["symbols"]))
        elif kind in ("record", "error"):
            for field in node["fields"]:
                field["type"] = walk(field["type"])
        elif kind == "array":
            node["items"] = walk(node["items"])
        elif kind == "map":
            node["values"] = walk(node["values"])
        return node

    walked = walk(copied)
    if isinstance(copied, dict):
        for named in copied.get("__named_schemas", {}).values():
            walk(named)
    return cast(ParsedSchema, walked)


def _strip(node: Any) -> Any:
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: value if key == "default" else _strip(value)
        for key, value in node.items()
        if key != "logicalType" and key not in _PARSED_MARKERS
    }


def mismatch(writer: ParsedSchema, reader: ParsedSchema) -> str | None:
    """Why `writer` can never be read as `reader`, for what is cheap to see up front; else None.

    Catches a different record (e.g. a decision on the listings topic) and a field whose logical
    type differs (timestamp-micros read as millis would be silently wrong once annotations are gone).
    fastavro finds the rest when it reads.
    """
    if not isinstance(writer, dict) or not isinstance(reader, dict):
        return None
    if writer.get("type") != reader.get("type"):
        return f"{_kind(writer)} cannot be read as {_kind(reader)}"
    w_name = str(writer.get("name", writer.get("type")))
    r_name = str(reader.get("name", reader.get("type")))
    # Avro matches record names unqualified, and a reader alias names a writer it accepts.
    r_names = {str(n).rsplit(".", 1)[-1] for n in [r_name, *reader.get("aliases", ())]}
    if w_name.rsplit(".", 1)[-1] not in r_names:
        return f"{w_name} cannot be read as {r_name}"
    writer_logical = _logical_types(writer)
    for field, logical in _logical_types(reader).items():
        other = writer_logical.get(field)
        if other is not None and other != logical:
            return f"field {field} is {other} in the writer but {logical} in the reader"
    return None


def projection(writer: ParsedSchema, reader: ParsedSchema) -> tuple[tuple[str, Any], ...] | None:
    """Reader fields to default if `writer` can be read alone and projected onto `reader`; else None.

    Allowed when every reader field is in the writer with the same canonical type (so no
    promotion, no enum or union change, no nested evolution), or is missing from the writer and
    has a default whose JSON form is already its Python value. Aliases need fastavro's resolution.
    """
    if not isinstance(writer, dict) or not isinstance(reader, dict):
        return None
    if writer.get("type") != "record" or reader.get("type") != "record":
        return None
    written = {f["name"]: f for f in writer["fields"]}
    missing: list[tuple[str, Any]] = []
    for field in reader["fields"]:
        if field.get("aliases"):
            return None
        other = written.get(field["name"])
        if other is None:
            if "default" not in field or not _plain_default(field["default"]):
                return None
            missing.append((field["name"], field["default"]))
        elif _shape(other["type"]) != _shape(field["type"]):
            return None
    return tuple(missing)


def _shape(node: Any) -> Any:
    """What of a (sub)schema decides its bytes, like the canonical form but needing no name lookup.

    A named type referenced by name in one schema and defined inline in the other compares
    unequal, which only sends that writer down fastavro's full resolution.
    """
    if isinstance(node, list):
        return [_shape(item) for item in node]
    if not isinstance(node, dict):
        return node
    shaped = {key: node[key] for key in ("type", "name", "symbols", "size") if key in node}
    for key in ("items", "values"):
        if key in node:
            shaped[key] = _shape(node[key])
    if "fields" in node:
        shaped["fields"] = [(f["name"], _shape(f["type"])) for f in node["fields"]]
    return shaped


def _plain_default(default: Any) -> bool:
    """Defaults that need no conversion from JSON (bytes and fixed defaults do)."""
    return default is None or default in ({}, []) or isinstance(default, bool | int | float)


def _kind(schema: dict[str, Any]) -> str:
    """'record a.b.Name', or just 'array' for an unnamed type."""
    return " ".join(str(schema[key]) for key in ("type", "name") if key in schema)


def _logical_types(record: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for field in record.get("fields", ()):
        kind = field.get("type")
        if isinstance(kind, dict) and "logicalType" in kind:
            found[str(field["name"])] = str(kind["logicalType"])
    return found
