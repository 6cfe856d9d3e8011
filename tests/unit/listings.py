"""Listing builders shared by unit tests: one valid default listing, changed by keyword."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consumer.core.records import Listing, Price

#: A cross-border dress from China on the Indonesian site, a day after the 2021 closure began.
DEFAULTS: dict[str, Any] = {
    "event_id": "evt-1",
    "event_time_ms": 1_627_960_000_000,  # 2021-08-03T03:06:40Z
    "listing_id": "lst-1",
    "seller_id": "seller-cn-1",
    "site": "ID",
    "seller_country": "CN",
    "ship_from_country": "CN",
    "category_id": "c-101",
    "category_path": ("Women's Fashion", "Dresses"),
    "title": "Floral Midi Dress",
    "price": Price(15_000_000, "IDR"),
}


def make_listing(**overrides: Any) -> Listing:
    """DEFAULTS with `overrides` applied; any Listing field may be given."""
    return Listing(**{**DEFAULTS, **overrides})


def epoch_ms(rfc3339: str) -> int:
    """Epoch milliseconds of an RFC 3339 time with offset, e.g. "2021-08-02T17:00:00Z"."""
    return round(datetime.fromisoformat(rfc3339).timestamp() * 1000)


#: The smallest valid ListingCreated in the JSON form `check` reads (optional fields left out).
MINIMAL_JSON: dict[str, Any] = {
    "event_id": "evt-1",
    "event_time": "2021-08-03T10:00:00Z",
    "listing_id": "lst-1",
    "seller_id": "seller-cn-7",
    "site": "ID",
    "seller_country": "CN",
    "ship_from_country": "CN",
    "category_id": "c-101",
    "category_path": ["Women's Fashion", "Dresses"],
    "title": "Gaun Midi Motif Bunga",
    "price": {"amount_minor": 15000000, "currency": "IDR"},
}
