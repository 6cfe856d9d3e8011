"""Avro binary encoding primitives for the hand-written fast paths: zig-zag varints and strings.

Avro writes int and long as zig-zag varints (7 bits a byte, low group first) and a string as its
UTF-8 length as a long, then the bytes. fastavro stays the reference: the property tests in
tests/unit/test_codec_fastpath.py tie everything built from these to it, byte for byte or record
for record.
"""

from __future__ import annotations

from typing import Final

from consumer.errors import DecodeError

LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
#: The longest varint of a 64-bit value.
MAX_VARINT_BYTES: Final = 10
#: Encodings of 0..63, which fit in one byte (zig-zag doubles them).
_SMALL: Final = tuple(bytes((n << 1,)) for n in range(64))


def encode_long(n: int) -> bytes:
    """The zig-zag varint of a 64-bit signed integer; ValueError outside that range."""
    if 0 <= n < 64:
        return _SMALL[n]
    if not LONG_MIN <= n <= LONG_MAX:
        msg = f"{n} does not fit in an Avro long"
        raise ValueError(msg)
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def encode_string(text: str) -> bytes:
    """Length-prefixed UTF-8; UnicodeEncodeError for a lone surrogate, as fastavro raises."""
    data = text.encode()
    return encode_long(len(data)) + data


def encode_bytes_field(data: bytes) -> bytes:
    """A string field from bytes already UTF-8 (copied from a decoded input)."""
    return encode_long(len(data)) + data


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the zig-zag varint at `pos`.

    IndexError when `buf` ends inside it (the caller reports truncation); DecodeError corrupt
    for a varint longer than a 64-bit value can need.
    """
    b = buf[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift >= 7 * MAX_VARINT_BYTES:
            msg = f"varint longer than {MAX_VARINT_BYTES} bytes"
            raise DecodeError("corrupt", msg)
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    if n >> 64:
        msg = "varint does not fit in 64 bits"
        raise DecodeError("corrupt", msg)
    return (n >> 1) ^ -(n & 1), pos
