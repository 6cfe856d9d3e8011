"""A hand-written reader for ListingCreated v1 bodies: the hot path when writer schema == reader.

fastavro's reader calls fo.read() for every byte of every varint and builds a dict; this reads the
bytes object by index and builds a ListingRow directly, about twice as fast. It also returns the
encoded event_id, event_time and listing_id..site fields as they are in the input, so the decision
encoder copies them instead of encoding them again (they are the decision's fields too).

It is written for one schema: CANONICAL_FINGERPRINT pins it, and AvroCodec uses it only for writers
with that fingerprint (other writers go through fastavro with resolution). It is as strict as the
codec's fastavro path: a negative or unknown union or enum index, a negative length, a varint
longer than 10 bytes or bytes left after the record are `corrupt`; the value ending early is
`truncated`; bad UTF-8 is `invalid_utf8`. tests/unit/test_codec_fastpath.py checks it against
fastavro on arbitrary and mutated values.
"""

from __future__ import annotations

from typing import Final, NoReturn

from consumer.codec.binary import read_long
from consumer.core.records import Channel, ListingRow, PriceRow
from consumer.errors import DecodeError

#: CRC-64-AVRO fingerprint of the ListingCreated schema this reader is written for.
CANONICAL_FINGERPRINT: Final = bytes.fromhex("cb9e155990f95a48")
_CHANNELS: Final[tuple[Channel, Channel]] = ("DOMESTIC", "CROSS_BORDER")
_new_row = tuple.__new__

#: (row, event_id field, event_time field, listing_id + seller_id + site fields), fields as encoded.
ReadListing = tuple[ListingRow, bytes, bytes, bytes]


def read_listing(buf: bytes, pos: int) -> ReadListing:
    """The ListingCreated body that starts at `pos` and ends at the end of `buf`."""
    try:
        return _read(buf, pos)
    except IndexError:
        # buf[pos] past the end: the value stops inside a varint or a union index.
        msg = "value ends inside the record"
        raise DecodeError("truncated", msg) from None
    except UnicodeDecodeError as exc:
        msg = f"string is not UTF-8: {exc.reason} at byte {exc.start}"
        raise DecodeError("invalid_utf8", msg) from None


def _read(buf: bytes, pos: int) -> ReadListing:
    # Each string is read the same way, written out in line because a call per string would
    # cost as much as the reading: a one-byte length (0..63) or else _length, a check that the
    # bytes are there, then the decode.
    size = len(buf)
    start = pos
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    event_id = buf[pos:end].decode()
    pos = end
    event_id_end = pos
    # event_time: a long of 6 bytes for today's epoch milliseconds
    n = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift >= 70:
            read_long(buf, event_id_end)  # raises: longer than a 64-bit varint
    if n >> 64:
        read_long(buf, event_id_end)  # raises: does not fit in 64 bits
    event_time = (n >> 1) ^ -(n & 1)
    listing_start = pos
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    listing_id = buf[pos:end].decode()
    pos = end
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    seller_id = buf[pos:end].decode()
    pos = end
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    site = buf[pos:end].decode()
    pos = end
    site_end = pos
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    seller_country = buf[pos:end].decode()
    pos = end
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    ship_from_country = buf[pos:end].decode()
    pos = end
    # channel: union [null, Channel]
    b = buf[pos]
    if b == 0:
        channel: Channel | None = None
        pos += 1
    elif b == 2 and buf[pos + 1] in (0, 2):
        channel = _CHANNELS[buf[pos + 1] >> 1]
        pos += 2
    else:
        channel, pos = _channel_slow(buf, pos)
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    category_id = buf[pos:end].decode()
    pos = end
    # category_path: array of strings in blocks, ended by a count of 0
    path: list[str] = []
    b = buf[pos]
    if b & 0x81:  # a count of 64 or more, or negative (a block with its byte size)
        count, pos = _count(buf, pos)
    else:
        count = b >> 1
        pos += 1
    while count:
        for _ in range(count):
            b = buf[pos]
            if b & 0x81:  # not a one-byte non-negative length
                n, pos = _length(buf, pos)
            else:
                n = b >> 1
                pos += 1
            end = pos + n
            if end > size:
                _truncated(end, size)
            segment = buf[pos:end].decode()
            pos = end
            path.append(segment)
        b = buf[pos]
        if b & 0x81:  # a count of 64 or more, or negative (a block with its byte size)
            count, pos = _count(buf, pos)
        else:
            count = b >> 1
            pos += 1
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    title = buf[pos:end].decode()
    pos = end
    b = buf[pos]
    if b == 0:
        brand: str | None = None
        pos += 1
    elif b == 2:
        pos += 1
        b = buf[pos]
        if b & 0x81:  # not a one-byte non-negative length
            n, pos = _length(buf, pos)
        else:
            n = b >> 1
            pos += 1
        end = pos + n
        if end > size:
            _truncated(end, size)
        brand_ = buf[pos:end].decode()
        pos = end
        brand = brand_
    else:
        brand, pos = _optional_string(buf, pos, size)
    # price: record {amount_minor: long, currency: string}
    amount, pos = read_long(buf, pos)
    b = buf[pos]
    if b & 0x81:  # not a one-byte non-negative length
        n, pos = _length(buf, pos)
    else:
        n = b >> 1
        pos += 1
    end = pos + n
    if end > size:
        _truncated(end, size)
    currency = buf[pos:end].decode()
    pos = end
    b = buf[pos]
    if b == 0:
        hs_code: str | None = None
        pos += 1
    elif b == 2:
        pos += 1
        b = buf[pos]
        if b & 0x81:  # not a one-byte non-negative length
            n, pos = _length(buf, pos)
        else:
            n = b >> 1
            pos += 1
        end = pos + n
        if end > size:
            _truncated(end, size)
        hs_code_ = buf[pos:end].decode()
        pos = end
        hs_code = hs_code_
    else:
        hs_code, pos = _optional_string(buf, pos, size)
    # attributes: map of strings in blocks; a repeated key keeps the last value, as in fastavro
    attributes: dict[str, str] = {}
    b = buf[pos]
    if b & 0x81:  # a count of 64 or more, or negative (a block with its byte size)
        count, pos = _count(buf, pos)
    else:
        count = b >> 1
        pos += 1
    while count:
        for _ in range(count):
            key, pos = _string(buf, pos, size)
            attributes[key], pos = _string(buf, pos, size)
        b = buf[pos]
        if b & 0x81:  # a count of 64 or more, or negative (a block with its byte size)
            count, pos = _count(buf, pos)
        else:
            count = b >> 1
            pos += 1
    if pos != size:
        msg = f"{size - pos} unread bytes after the record"
        raise DecodeError("corrupt", msg)
    row = _new_row(
        ListingRow,
        (
            event_id,
            event_time,
            listing_id,
            seller_id,
            site,
            seller_country,
            ship_from_country,
            category_id,
            tuple(path),
            title,
            _new_row(PriceRow, (amount, currency)),
            channel,
            brand,
            hs_code,
            attributes,
        ),
    )
    return (
        row,
        buf[start:event_id_end],
        buf[event_id_end:listing_start],
        buf[listing_start:site_end],
    )


def _string(buf: bytes, pos: int, size: int) -> tuple[str, int]:
    n, pos = _length(buf, pos)
    end = pos + n
    if end > size:
        _truncated(end, size)
    return buf[pos:end].decode(), end


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = read_long(buf, pos)
    if n < 0:
        msg = f"negative length {n}"
        raise DecodeError("corrupt", msg)
    return n, pos


def _count(buf: bytes, pos: int) -> tuple[int, int]:
    """A block's item count; a negative count is followed by the block's size in bytes."""
    count, pos = read_long(buf, pos)
    if count < 0:
        _size, pos = read_long(buf, pos)
        count = -count
    return count, pos


def _optional_string(buf: bytes, pos: int, size: int) -> tuple[str | None, int]:
    """A union [null, string]."""
    b = buf[pos]
    if b == 0:
        return None, pos + 1
    if b == 2:
        return _string(buf, pos + 1, size)
    index, pos = read_long(buf, pos)  # a non-minimal or an invalid index
    if index == 0:
        return None, pos
    if index != 1:
        _bad_index("union branch", index)
    return _string(buf, pos, size)


def _channel_slow(buf: bytes, pos: int) -> tuple[Channel | None, int]:
    """The channel union when its index is not one byte 00 or 02 (non-minimal or invalid)."""
    index, pos = read_long(buf, pos)
    if index == 0:
        return None, pos
    if index != 1:
        _bad_index("union branch", index)
    return _enum_slow(buf, pos)


def _enum_slow(buf: bytes, pos: int) -> tuple[Channel, int]:
    index, pos = read_long(buf, pos)
    if not 0 <= index < len(_CHANNELS):
        _bad_index("enum Channel symbol", index)
    return _CHANNELS[index], pos


def _bad_index(what: str, index: int) -> NoReturn:
    msg = f"{what} index {index} is not in the schema"
    raise DecodeError("corrupt", msg)


def _truncated(end: int, size: int) -> NoReturn:
    msg = f"value ends inside the record: a string needs {end - size} more bytes"
    raise DecodeError("truncated", msg)
