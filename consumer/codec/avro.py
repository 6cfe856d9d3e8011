"""AvroCodec: framed Avro bytes to Listing and Decision and back, with fastavro and parsed schemas.

Everything expensive happens once: schemas are parsed in __init__, and each writer schema met on the
wire (by fingerprint or registry id) is paired with our reader schema the first time it is seen.

Timestamps stay integers of epoch milliseconds. The schemas the codec hands to fastavro are copies
with the logicalType annotations removed: the bytes on the wire are the same, and no datetime is
built and taken apart again for every message.

The worker's hot path (read_listing, decision_writer) reads values of the bundled ListingCreated
schema with the hand-written listing_reader and writes decisions with decision_writer; fastavro
reads every other writer schema, and stays the reference the property tests compare them with.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any, Final, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from consumer.codec.binary import encode_long, encode_string
from consumer.codec.decision_writer import DecisionWriter
from consumer.codec.framing import (
    CONFLUENT_HEADER_SIZE,
    SINGLE_OBJECT_HEADER_SIZE,
    ConfluentHeader,
    confluent_header,
    read_header,
    schema_fingerprint,
    single_object_header,
)
from consumer.codec.limits import MAX_VALUE_BYTES, listing_too_large
from consumer.codec.listing_reader import CANONICAL_FINGERPRINT, ReadListing, read_listing
from consumer.codec.records import (
    decision_record,
    listing_record,
    reason_from_record,
    row_from_record,
)
from consumer.codec.resolution import mismatch, projection, strict_schema, strip_logical_types
from consumer.codec.schemas import (
    LISTING_CREATED,
    LISTING_DECISION,
    NAMESPACE,
    BundledSchemas,
    ParsedSchema,
    SchemaSource,
)
from consumer.core.records import (
    LIVE,
    Decision,
    Exemption,
    FxUsed,
    Listing,
    ListingRow,
    Provenance,
    SourceRef,
)
from consumer.errors import DecodeError

#: Union branch name for the source record, so fastavro writes it without trying each branch.
_SOURCE_REF: Final = f"{NAMESPACE}.SourceRef"
#: Longest excerpt of a library message kept in ours; resolution errors can print whole schemas.
_DETAIL_LIMIT: Final = 160


class _Plan:
    """How to read values of one writer schema, or why it cannot be done.

    `reader` is None when the writer's fields can be read as they are and projected onto ours:
    then `defaults` lists the reader fields the writer lacks, filled in after the read. `same`
    says the writer is the reader schema itself (the hand-written listing reader may read it).
    """

    __slots__ = ("defaults", "error", "label", "reader", "same", "writer")

    def __init__(
        self,
        label: str,
        writer: ParsedSchema,
        reader: ParsedSchema | None,
        *,
        defaults: tuple[tuple[str, Any], ...] = (),
        error: str | None = None,
        same: bool = False,
    ) -> None:
        self.same = same
        self.label = label
        self.writer = writer
        self.reader = reader
        self.defaults = defaults
        self.error = error


class _Reader:
    """Reads framed values written with any known writer schema into dicts shaped by one reader."""

    __slots__ = (
        "_by_fingerprint",
        "_by_id",
        "_max_bytes",
        "_reader",
        "_reader_annotated",
        "_reader_fingerprint",
        "_source",
        "_strict_reader",
    )

    def __init__(
        self,
        reader: ParsedSchema,
        known_writers: Mapping[bytes, ParsedSchema],
        source: SchemaSource | None,
        known_ids: Mapping[int, ParsedSchema],
        max_bytes: int | None = None,
    ) -> None:
        self._reader_annotated = reader
        self._reader = strip_logical_types(reader)
        self._strict_reader = strict_schema(self._reader)
        self._max_bytes = max_bytes
        self._reader_fingerprint = schema_fingerprint(reader)
        self._source = source
        self._by_fingerprint = {
            fp: self._plan(f"fingerprint {fp.hex()}", schema)
            for fp, schema in known_writers.items()
        }
        self._by_id = {i: self._plan(f"schema id {i}", schema) for i, schema in known_ids.items()}

    def _plan(self, label: str, writer: ParsedSchema) -> _Plan:
        error = mismatch(writer, self._reader_annotated)
        if error is not None:
            return _Plan(label, writer, self._reader, error=error)
        if schema_fingerprint(writer) == self._reader_fingerprint:
            # Same schema: read with the writer alone, no resolution at all.
            return _Plan(label, self._strict_reader, None, same=True)
        stripped = strip_logical_types(writer)
        defaults = projection(stripped, self._reader)
        if defaults is not None:
            # fastavro resolves field by field on every read (about 40% slower); reading with
            # the writer alone and filling defaults gives the same record when this is allowed.
            return _Plan(label, strict_schema(stripped), None, defaults=defaults)
        return _Plan(label, strict_schema(stripped), self._reader)

    def _plan_for_id(self, schema_id: int) -> _Plan:
        if self._source is None:
            msg = f"schema id {schema_id}: Confluent-framed value, but no schema registry is configured"
            raise DecodeError("unknown_schema_id", msg)
        plan = self._plan(f"schema id {schema_id}", self._source.writer_schema(schema_id))
        self._by_id[schema_id] = plan
        return plan

    def same(self, fingerprint: bytes) -> bool:
        """Whether values with this writer fingerprint are read with the reader schema itself."""
        plan = self._by_fingerprint.get(fingerprint)
        return plan is not None and plan.same

    def locate(self, value: bytes | None) -> tuple[_Plan, int]:
        """How to read `value` and where its body starts; DecodeError when it cannot be read."""
        if value is None:
            raise DecodeError("empty", "value is null (tombstone)")
        if self._max_bytes is not None and len(value) > self._max_bytes:
            msg = f"value has {len(value)} bytes, more than {self._max_bytes}"
            raise DecodeError("too_large", msg)
        header = read_header(value)
        if isinstance(header, ConfluentHeader):
            plan = self._by_id.get(header.schema_id) or self._plan_for_id(header.schema_id)
            offset = CONFLUENT_HEADER_SIZE
        else:
            found = self._by_fingerprint.get(header.fingerprint)
            if found is None:
                msg = f"no known schema has fingerprint {header.fingerprint.hex()}"
                raise DecodeError("unknown_fingerprint", msg)
            plan = found
            offset = SINGLE_OBJECT_HEADER_SIZE
        if plan.error is not None:
            raise DecodeError("schema_mismatch", f"writer {plan.label}: {plan.error}")
        return plan, offset

    def read(self, value: bytes | None) -> dict[str, Any]:
        """The record in `value`; raises DecodeError (or SchemaSourceUnavailable from the source)."""
        plan, offset = self.locate(value)
        return self.read_body(cast(bytes, value), plan, offset)

    @staticmethod
    def read_body(value: bytes, plan: _Plan, offset: int) -> dict[str, Any]:
        """The record from `offset` to the end of `value`, with fastavro."""
        stream = BytesIO(value)
        stream.seek(offset)
        try:
            record = schemaless_reader(stream, plan.writer, plan.reader)
        # Hostile bytes make fastavro raise many types (EOFError, IndexError, UnicodeDecodeError,
        # ValueError, ...); this is the one broad catch, and _read_error maps each to a code.
        except Exception as exc:
            raise _read_error(exc, plan.label) from exc
        left = len(value) - stream.tell()
        if left:
            # A datum is the whole value; leftovers mean the writer schema is not what wrote it.
            msg = f"{left} unread bytes after the record (writer {plan.label})"
            raise DecodeError("corrupt", msg)
        result = cast(dict[str, Any], record)
        for name, default in plan.defaults:
            result[name] = copy.deepcopy(default) if isinstance(default, dict | list) else default
        return result


class AvroCodec:
    """Decodes ListingCreated and encodes ListingDecision (and the reverse, for producers and tests).

    Single-object values are resolved by fingerprint among the bundled schemas plus
    `writer_schemas` (e.g. an older version still in flight); Confluent-framed values through
    `schema_source`. Decisions are written single-object, or Confluent-framed with
    `decision_schema_id` when one is given.
    """

    __slots__ = (
        "_decision_header",
        "_decision_schema",
        "_decisions",
        "_fast_prefix",
        "_listing_header",
        "_listing_schema",
        "_listings",
    )

    def __init__(
        self,
        schema_source: SchemaSource | None = None,
        *,
        decision_schema_id: int | None = None,
        writer_schemas: Iterable[ParsedSchema] = (),
        bundled: BundledSchemas | None = None,
    ) -> None:
        schemas = bundled if bundled is not None else BundledSchemas.load()
        listing = schemas[LISTING_CREATED]
        decision = schemas[LISTING_DECISION]
        known = {fp: s.parsed for fp, s in schemas.by_fingerprint.items()}
        known.update({schema_fingerprint(s): s for s in writer_schemas})
        own_ids = {} if decision_schema_id is None else {decision_schema_id: decision.parsed}
        self._listings = _Reader(listing.parsed, known, schema_source, {}, MAX_VALUE_BYTES)
        self._decisions = _Reader(decision.parsed, known, schema_source, own_ids)
        self._listing_schema = strip_logical_types(listing.parsed)
        self._listing_header = single_object_header(listing.fingerprint)
        # The hand-written reader is written for one schema; any other bundled one uses fastavro,
        # as does a writer given for our fingerprint that differs in a logical type.
        fast = listing.fingerprint == CANONICAL_FINGERPRINT
        self._fast_prefix = (
            self._listing_header if fast and self._listings.same(listing.fingerprint) else None
        )
        self._decision_schema = strip_logical_types(decision.parsed)
        self._decision_header = (
            single_object_header(decision.fingerprint)
            if decision_schema_id is None
            else confluent_header(decision_schema_id)
        )

    def decode_listing(self, value: bytes | None) -> Listing:
        """The listing in a Kafka value; every failure is a DecodeError with a stable code."""
        return self.read_listing(value)[0].listing()

    def read_listing(self, value: bytes | None) -> ReadListing:
        """The hot path's decode: a ListingRow plus its event_id, event_time and listing_id..site
        fields as encoded (the decision writer copies them). Same errors as decode_listing.
        """
        fast = self._fast_prefix
        if (
            value is not None
            and fast is not None
            and value.startswith(fast)
            and len(value) <= MAX_VALUE_BYTES
        ):
            found = read_listing(value, SINGLE_OBJECT_HEADER_SIZE)
        else:
            plan, offset = self._listings.locate(value)
            value = cast(bytes, value)
            if plan.same and self._fast_prefix is not None:
                found = read_listing(value, offset)
            else:
                found = _encoded_fields(
                    row_from_record(self._listings.read_body(value, plan, offset))
                )
        too_large = listing_too_large(found[0], len(value))
        if too_large is not None:
            raise DecodeError("too_large", too_large)
        return found

    def decision_writer(
        self, policy_id: str, policy_version: str, provenance: Provenance = LIVE
    ) -> DecisionWriter:
        """The hand-written encoder of this codec's decision framing, for one policy version
        and one provenance (live, shadow or a replay run)."""
        return DecisionWriter(self._decision_header, policy_id, policy_version, provenance)

    def encode_listing(self, listing: Listing) -> bytes:
        """Single-object ListingCreated, as the sample producer writes it."""
        return self._write(self._listing_header, self._listing_schema, listing_record(listing))

    def encode_listing_confluent(self, listing: Listing, schema_id: int) -> bytes:
        """ListingCreated framed for a registry under `schema_id` (written with our schema)."""
        return self._write(
            confluent_header(schema_id), self._listing_schema, listing_record(listing)
        )

    def encode_decision(self, decision: Decision) -> bytes:
        """ListingDecision bytes ready to produce."""
        record = decision_record(decision)
        if record["source"] is not None:
            # Tuple notation names the union branch, so fastavro need not try each one.
            record["source"] = (_SOURCE_REF, record["source"])
        return self._write(self._decision_header, self._decision_schema, record)

    def decode_decision(self, value: bytes | None) -> Decision:
        """The decision in a value this service produced (for checks and end-to-end tests)."""
        r = self._decisions.read(value)
        s = r["source"]
        return Decision(
            r["decision_id"],
            r["event_id"],
            r["listing_id"],
            r["seller_id"],
            r["site"],
            r["outcome"],
            tuple(map(reason_from_record, r["reasons"])),
            tuple(r["matched_rules"]),
            r["cluster"],
            r["cross_border"],
            r["policy"],
            r["policy_version"],
            r["event_time"],
            r["decided_at"],
            None if s is None else SourceRef(s["topic"], s["partition"], s["offset"]),
            Provenance(r["mode"], r["replay_run"], r["as_of"]),
            tuple(Exemption(x["rule_id"], x["by"]) for x in r["exemptions"]),
            None
            if (fx := r["fx"]) is None
            else FxUsed(fx["table_from"], fx["base"], fx["currency"], fx["rate"]),
        )

    @staticmethod
    def _write(header: bytes, schema: ParsedSchema, record: dict[str, Any]) -> bytes:
        stream = BytesIO()
        stream.write(header)
        try:
            schemaless_writer(stream, schema, record)
        except UnicodeEncodeError as exc:
            raise DecodeError("invalid_utf8", f"cannot encode: {_detail(exc)}") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            # What fastavro raises for a value outside its schema (wrong type, bad symbol, > 64 bits).
            raise DecodeError("schema_mismatch", f"cannot encode: {_detail(exc)}") from exc
        return stream.getvalue()


def _encoded_fields(row: ListingRow) -> ReadListing:
    """What read_listing returns, for a row fastavro decoded: the copied fields encoded anew."""
    try:
        return (
            row,
            encode_string(row.event_id),
            encode_long(row.event_time_ms),
            encode_string(row.listing_id) + encode_string(row.seller_id) + encode_string(row.site),
        )
    except UnicodeEncodeError as exc:  # a lone surrogate cannot come from UTF-8, but be sure
        raise DecodeError("invalid_utf8", f"cannot encode: {exc.reason}") from exc


def _read_error(exc: Exception, label: str) -> DecodeError:
    """Map what fastavro raised on a body to our code; the message names the writer schema."""
    detail = f"{_detail(exc)} (writer {label})"
    if isinstance(exc, UnicodeDecodeError):
        return DecodeError("invalid_utf8", f"string is not UTF-8: {detail}")
    if isinstance(exc, SchemaResolutionError):
        return DecodeError("schema_mismatch", f"cannot resolve against the reader: {detail}")
    if isinstance(exc, EOFError) and not str(exc).startswith("Expected -"):
        return DecodeError("truncated", f"value ends inside the record: {detail}")
    # A negative length ("Expected -3 bytes"), a bad union or enum index, an over-long varint.
    return DecodeError("corrupt", f"not a valid Avro body: {type(exc).__name__}: {detail}")


def _detail(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."
