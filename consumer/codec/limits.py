"""Size limits on one ListingCreated: what a single record may cost the worker.

A listing past any limit is refused with DecodeError("too_large") and dead-lettered, so one hostile
or broken producer cannot grow the worker's memory (caches keyed by category paths) or its CPU
(Unicode normalisation of every path segment). The limits are generous for real marketplaces:
titles are capped at 255 characters by the large ones and category trees are under ten levels deep.
Lengths are counted in characters (code points), which len() gives in O(1). MAX_VALUE_BYTES
also bounds what one consume() batch holds (1,000 values of at most 64 KiB).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Final

from consumer.core.records import Listing, ListingRow

#: A whole Kafka value (header + body); checked before decoding, so a huge value costs nothing.
MAX_VALUE_BYTES: Final = 64 * 1024
#: Segments of category_path, and their characters in all.
MAX_PATH_SEGMENTS: Final = 32
MAX_PATH_CHARS: Final = 4096
#: The title, as the seller wrote it.
MAX_TITLE_CHARS: Final = 2048
#: attributes: entries, and characters of all keys and values together.
MAX_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_CHARS: Final = 8192
#: Every other string: ids, country and currency codes, brand, hs_code.
MAX_FIELD_CHARS: Final = 1024
#: Required short string fields; brand, hs_code and price.currency are checked with them.
SHORT_FIELDS: Final = (
    "event_id",
    "listing_id",
    "seller_id",
    "site",
    "seller_country",
    "ship_from_country",
    "category_id",
)
_short = attrgetter(*SHORT_FIELDS)
_SHORT_NAMES: Final = (*SHORT_FIELDS, "brand", "hs_code", "price.currency")


def listing_too_large(listing: Listing | ListingRow, value_size: int) -> str | None:
    """Why a decoded listing exceeds a limit (the first found), or None.

    `value_size` is the length in bytes of the value it was read from. A string has no more
    characters than bytes, so a value of at most MAX_FIELD_CHARS bytes (most listings) cannot
    break a length limit and only the two counts are checked: two len() calls on the hot path.
    """
    path = listing.category_path
    if len(path) > MAX_PATH_SEGMENTS:
        return f"category_path has {len(path)} segments, more than {MAX_PATH_SEGMENTS}"
    attributes = listing.attributes
    if len(attributes) > MAX_ATTRIBUTES:
        return f"attributes has {len(attributes)} entries, more than {MAX_ATTRIBUTES}"
    if value_size <= MAX_FIELD_CHARS:
        return None
    return _long_string(listing)


def _long_string(listing: Listing | ListingRow) -> str | None:
    chars = sum(map(len, listing.category_path))
    if chars > MAX_PATH_CHARS:
        return f"category_path has {chars} characters, more than {MAX_PATH_CHARS}"
    if len(listing.title) > MAX_TITLE_CHARS:
        return f"title has {len(listing.title)} characters, more than {MAX_TITLE_CHARS}"
    attributes = listing.attributes
    if attributes:
        chars = sum(map(len, attributes)) + sum(map(len, attributes.values()))
        if chars > MAX_ATTRIBUTE_CHARS:
            return f"attributes have {chars} characters, more than {MAX_ATTRIBUTE_CHARS}"
    strings = (
        *_short(listing),
        listing.brand or "",
        listing.hs_code or "",
        listing.price.currency,
    )
    longest = max(strings, key=len)
    if len(longest) > MAX_FIELD_CHARS:
        name = _SHORT_NAMES[strings.index(longest)]
        return f"{name} has {len(longest)} characters, more than {MAX_FIELD_CHARS}"
    return None
