"""A hand-written ListingDecision encoder that writes the verdict's part once per distinct verdict.

A decision's bytes, in schema field order, are:

    decision_id event_id listing_id seller_id site | outcome reasons matched_rules cluster
    cross_border policy policy_version | event_time decided_at source | mode replay_run as_of
    | exemptions fx

The second part is fixed by the verdict and the policy, so `verdict_part` is encoded once per
distinct verdict and cached by the caller, and so is the last (`exemptions_part`: exemptions and
fx, fields added after the provenance); the provenance (`trailer`) is fixed per writer; per event only the ids, times and source are written around them (most of them copied as the input encoded them, see listing_reader). fastavro stays
the reference: tests/unit/test_codec_fastpath.py decodes what this writes with fastavro and
compares the records, for arbitrary decisions.
"""

from __future__ import annotations

import hashlib
from binascii import hexlify
from typing import Final

from consumer.codec.binary import INT_MAX, INT_MIN, encode_long, encode_string
from consumer.core.records import (
    DECISION_ID_NAMESPACE,
    LIVE,
    Decision,
    Exemption,
    FxUsed,
    Provenance,
    Verdict,
)
from consumer.errors import DecodeError

#: Outcome symbols by index, as zig-zag varints.
_OUTCOMES: Final = {"APPROVED": b"\x00", "REJECTED": b"\x02", "REVIEW": b"\x04"}
#: DecisionMode symbols by index, as zig-zag varints.
_MODES: Final = {"LIVE": b"\x00", "SHADOW": b"\x02", "REPLAY": b"\x04"}
#: A decision id is 36 ASCII characters; its length prefix is always this byte.
_ID_LENGTH: Final = encode_long(36)
_NAMESPACE: Final = DECISION_ID_NAMESPACE.bytes
_NULL: Final = b"\x00"
_BRANCH_1: Final = b"\x02"
_END_OF_ARRAY: Final = b"\x00"


class DecisionWriter:
    """Encodes ListingDecision values framed with `header` for one policy id and version.

    `trailer` is the encoded provenance (mode, replay_run, as_of), the same for every decision
    of this writer, so the hot path appends it as one more constant.
    """

    __slots__ = ("_id_suffix", "_policy", "header", "provenance", "trailer")

    def __init__(
        self,
        header: bytes,
        policy_id: str,
        policy_version: str,
        provenance: Provenance = LIVE,
    ) -> None:
        self.header = header
        self._policy = encode_string(policy_id) + encode_string(policy_version)
        self._id_suffix = f"|{policy_version}".encode()
        self.provenance = provenance
        self.trailer = provenance_fields(provenance)

    def verdict_part(self, verdict: Verdict) -> bytes:
        """outcome .. policy_version; DecodeError for a value outside the schema."""
        return verdict_fields(verdict) + self._policy

    @staticmethod
    def exemptions_part(verdict: Verdict) -> bytes:
        """The exemptions and fx fields, the last of the decision; DecodeError outside them."""
        return exemption_fields(verdict.exemptions) + fx_field(verdict.fx)

    def decision_id_field(self, event_id: str) -> bytes:
        """The encoded decision_id: decision_id_for(event_id, version), as a string field.

        uuid5 by hand (SHA-1 of namespace + name, version and variant bits set), written as the
        36 ASCII bytes of its canonical form with their length prefix.
        """
        digest = bytearray(
            hashlib.sha1(_NAMESPACE + event_id.encode() + self._id_suffix).digest()[:16]
        )
        digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = hexlify(digest)
        return b"%b%b-%b-%b-%b-%b" % (_ID_LENGTH, h[:8], h[8:12], h[12:16], h[16:20], h[20:])

    def encode(self, decision: Decision) -> bytes:
        """Any Decision, assembled from the same pieces the hot path uses (tests, API edge)."""
        s = decision.source
        try:
            return b"".join(
                (
                    self.header,
                    encode_string(decision.decision_id),
                    encode_string(decision.event_id),
                    encode_string(decision.listing_id),
                    encode_string(decision.seller_id),
                    encode_string(decision.site),
                    verdict_fields(
                        Verdict(
                            decision.outcome,
                            decision.reasons,
                            decision.matched_rules,
                            decision.cluster,
                            decision.cross_border,
                        )
                    ),
                    encode_string(decision.policy),
                    encode_string(decision.policy_version),
                    encode_long(decision.event_time_ms),
                    encode_long(decision.decided_at_ms),
                    _NULL
                    if s is None
                    else source_prefix(s.topic, s.partition) + encode_long(s.offset),
                    provenance_fields(decision.provenance),
                    exemption_fields(decision.exemptions),
                    fx_field(decision.fx),
                )
            )
        except (UnicodeEncodeError, ValueError) as exc:
            raise encode_error(exc) from exc


def encode_error(exc: UnicodeEncodeError | ValueError) -> DecodeError:
    """What a value outside the schema raised while encoding, as our error."""
    if isinstance(exc, UnicodeEncodeError):
        return DecodeError("invalid_utf8", f"cannot encode: {exc.reason}")
    return DecodeError("schema_mismatch", f"cannot encode: {exc}")  # a long outside 64 bits


def verdict_fields(verdict: Verdict) -> bytes:
    """outcome, reasons, matched_rules, cluster and cross_border as ListingDecision writes them."""
    try:
        outcome = _OUTCOMES[verdict.outcome]
    except KeyError:
        msg = f"cannot encode: outcome {verdict.outcome!r} is not a symbol of Outcome"
        raise DecodeError("schema_mismatch", msg) from None
    parts = [outcome]
    try:
        if verdict.reasons:  # an array is blocks of count + items, ended by a count of 0
            parts.append(encode_long(len(verdict.reasons)))
            for r in verdict.reasons:
                parts += (encode_string(r.code), encode_string(r.rule_id))
                parts.append(encode_string(r.message))
                if r.messages:  # a map is blocks of count + (key, value) pairs, ended by 0
                    parts.append(encode_long(len(r.messages)))
                    for tag, text in r.messages:
                        parts += (encode_string(tag), encode_string(text))
                parts.append(_END_OF_ARRAY)
                if r.phrase is None:
                    parts.append(_NULL)
                else:
                    parts += (_BRANCH_1, encode_string(r.phrase))
        parts.append(_END_OF_ARRAY)
        if verdict.matched_rules:
            parts.append(encode_long(len(verdict.matched_rules)))
            parts += map(encode_string, verdict.matched_rules)
        parts.append(_END_OF_ARRAY)
        if verdict.cluster is None:
            parts.append(_NULL)
        else:
            parts += (_BRANCH_1, encode_string(verdict.cluster))
    except UnicodeEncodeError as exc:
        raise DecodeError("invalid_utf8", f"cannot encode: {exc.reason}") from exc
    parts.append(b"\x01" if verdict.cross_border else b"\x00")
    return b"".join(parts)


def exemption_fields(exemptions: tuple[Exemption, ...]) -> bytes:
    """The exemptions array as ListingDecision writes it."""
    if not exemptions:
        return _END_OF_ARRAY
    parts = [encode_long(len(exemptions))]
    try:
        for e in exemptions:
            parts += (encode_string(e.rule_id), encode_string(e.by))
    except UnicodeEncodeError as exc:
        raise DecodeError("invalid_utf8", f"cannot encode: {exc.reason}") from exc
    parts.append(_END_OF_ARRAY)
    return b"".join(parts)


def fx_field(fx: FxUsed | None) -> bytes:
    """The nullable fx record as ListingDecision writes it."""
    if fx is None:
        return _NULL
    table_from, rate = fx.table_from_ms, fx.rate
    try:
        return b"".join(
            (
                _BRANCH_1,
                _NULL if table_from is None else _BRANCH_1 + encode_long(table_from),
                encode_string(fx.base),
                encode_string(fx.currency),
                _NULL if rate is None else _BRANCH_1 + encode_string(rate),
            )
        )
    except (UnicodeEncodeError, ValueError) as exc:
        raise encode_error(exc) from exc


def provenance_fields(provenance: Provenance) -> bytes:
    """mode, replay_run and as_of as ListingDecision writes them; DecodeError outside the schema."""
    try:
        mode = _MODES[provenance.mode]
    except KeyError:
        msg = f"cannot encode: mode {provenance.mode!r} is not a symbol of DecisionMode"
        raise DecodeError("schema_mismatch", msg) from None
    run, as_of = provenance.replay_run, provenance.as_of_ms
    try:
        return b"".join(
            (
                mode,
                _NULL if run is None else _BRANCH_1 + encode_string(run),
                _NULL if as_of is None else _BRANCH_1 + encode_long(as_of),
            )
        )
    except (UnicodeEncodeError, ValueError) as exc:
        raise encode_error(exc) from exc


def source_prefix(topic: str, partition: int) -> bytes:
    """The source field up to its offset: union branch SourceRef, topic, partition."""
    if not INT_MIN <= partition <= INT_MAX:
        msg = f"partition {partition} does not fit in an Avro int"
        raise ValueError(msg)
    return _BRANCH_1 + encode_string(topic) + encode_long(partition)
