"""`import-closure export`: a bounded range of a topic as JSON Lines, decoded from either wire format.

What a topic holds is told by its name in the settings (input topic: listings; approved or
rejected topic: decisions; dead-letter topic: dead letters), or by --kind for any other name.
Listings print as exactly the JSON form `check` reads, so `export --topic listing-created | check`
works. A record that cannot be decoded prints as `{"error": {"code", "message"}}` with its
position, in its place: never skipped, and `check` refuses that line by number.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final, Literal

from consumer.codec import AvroCodec
from consumer.codec.jsonform import decision_to_json, format_time, listing_to_json
from consumer.config.settings import Settings
from consumer.core.records import RawRecord
from consumer.errors import ConfigError, DecodeError
from consumer.kafka import client_conf
from consumer.kafka.clients import Consumer, QuietClientLog
from consumer.kafka.range_reader import RangeReader
from consumer.kafka.ranges import plan_range
from consumer.kafka.registry import RegistrySchemaSource

Kind = Literal["listing", "decision", "dead-letter"]
KINDS: Final = ("listing", "decision", "dead-letter")


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """--topic, --from/--from-offset, --to, --partition, --count as values."""

    topic: str
    from_ms: int | None = None
    from_offset: int | None = None
    to_ms: int | None = None
    partition: int | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Exported:
    records: int
    undecodable: int


def kind_of(settings: Settings, topic: str, kind: str | None) -> Kind:
    """--kind when given, else what the settings say the topic holds; ConfigError otherwise."""
    if kind is not None:
        return _checked_kind(kind)
    if topic == settings.input_topic:
        return "listing"
    if topic in (settings.approved_topic, settings.rejected_topic):
        return "decision"
    if topic == settings.dlq_topic:
        return "dead-letter"
    msg = (
        f"cannot tell what topic {topic!r} holds (it is none of the configured input, decision "
        f"or dead-letter topics); name it with --kind {'|'.join(KINDS)}"
    )
    raise ConfigError(msg)


def _checked_kind(kind: str) -> Kind:
    if kind == "listing":
        return "listing"
    if kind == "decision":
        return "decision"
    if kind == "dead-letter":
        return "dead-letter"
    raise ConfigError(f"--kind: expected one of {', '.join(KINDS)}, got {kind!r}")


def open_range(settings: Settings, spec: RangeSpec) -> RangeReader:
    """A reader of the range, bounded by the end offsets seen now; joins and commits to no group."""
    conf = client_conf.plain_consumer_conf(
        settings,
        **{
            # assign() only: this id is never joined and nothing is committed under it, so no
            # ACL on it is needed (RangeReader ignores its failed coordinator lookup). The client
            # refuses to build a consumer without one.
            "group.id": f"{settings.group_id}.export",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "logger": QuietClientLog(),
        },
    )
    try:
        consumer = Consumer(conf)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid Kafka client setting: {exc}") from exc
    try:
        bounds = plan_range(
            consumer,
            spec.topic,
            from_ms=spec.from_ms,
            from_offset=spec.from_offset,
            to_ms=spec.to_ms,
            partition=spec.partition,
        )
    except BaseException:
        consumer.close()
        raise
    return RangeReader(consumer, bounds, spec.count)


def reading_codec(settings: Settings) -> AvroCodec:
    """A codec that reads both wire formats; with a registry, Confluent-framed values too.

    Unlike the worker's it registers nothing: reading a topic must not write to the registry.
    """
    if not settings.schema_registry:
        return AvroCodec()
    try:
        return AvroCodec(RegistrySchemaSource(client_conf.registry_conf(settings)))
    except (TypeError, ValueError) as exc:  # what SchemaRegistryClient raises for a bad setting
        raise ConfigError(f"schema registry settings: {exc}") from exc


def json_form(kind: Kind, codec: AvroCodec) -> Callable[[RawRecord], dict[str, Any]]:
    """The record's JSON form for its kind; DecodeError for a listing or decision that does not decode."""
    if kind == "listing":
        return lambda r: listing_to_json(codec.decode_listing(r.value))
    if kind == "decision":
        return lambda r: decision_to_json(codec.decode_decision(r.value))
    return dead_letter_json


def dead_letter_json(record: RawRecord) -> dict[str, Any]:
    """Key and value as base64 (a dead letter is whatever arrived); headers as text when UTF-8."""
    headers: list[dict[str, str | None]] = []
    for name, value in record.headers:
        if value is None:
            headers.append({"key": name, "value": None})
            continue
        try:
            headers.append({"key": name, "value": value.decode("utf-8")})
        except UnicodeDecodeError:
            headers.append({"key": name, "value_base64": _b64(value)})
    return {"key": _b64(record.key), "value": _b64(record.value), "headers": headers}


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def meta(record: RawRecord) -> dict[str, Any]:
    ts = record.timestamp_ms
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": None if ts is None else format_time(ts),
    }


def export(
    reader: RangeReader, kind: Kind, codec: AvroCodec, out: IO[str], *, with_meta: bool = False
) -> Exported:
    """Write each record of the range as one JSON line; undecodable ones say why, in place."""
    form = json_form(kind, codec)
    records = undecodable = 0
    for record in reader.records():
        records += 1
        try:
            obj = form(record)
        except DecodeError as exc:
            undecodable += 1
            obj = {**meta(record), "error": {"code": exc.code, "message": exc.message}}
        else:
            if with_meta:
                obj = {**meta(record), **obj}
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()
    return Exported(records, undecodable)
