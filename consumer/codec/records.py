"""Avro records <-> our event records: the field-by-field mapping, kept apart from the wire work.

Timestamps stay epoch milliseconds here (the codec reads and writes with logical types stripped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumer.core.records import Decision, Listing, ListingRow, Price, PriceRow, Reason


def decision_record(d: Decision) -> dict[str, Any]:
    """A Decision shaped as a ListingDecision record (times as epoch ms, source as a plain dict)."""
    s = d.source
    p = d.provenance
    return {
        "decision_id": d.decision_id,
        "event_id": d.event_id,
        "listing_id": d.listing_id,
        "seller_id": d.seller_id,
        "site": d.site,
        "outcome": d.outcome,
        "reasons": [r.as_record() for r in d.reasons],
        "matched_rules": list(d.matched_rules),
        "cluster": d.cluster,
        "cross_border": d.cross_border,
        "policy": d.policy,
        "policy_version": d.policy_version,
        "event_time": d.event_time_ms,
        "decided_at": d.decided_at_ms,
        "source": None
        if s is None
        else {"topic": s.topic, "partition": s.partition, "offset": s.offset},
        "mode": p.mode,
        "replay_run": p.replay_run,
        "as_of": p.as_of_ms,
        "exemptions": [{"rule_id": e.rule_id, "by": e.by} for e in d.exemptions],
        "fx": None
        if d.fx is None
        else {
            "table_from": d.fx.table_from_ms,
            "base": d.fx.base,
            "currency": d.fx.currency,
            "rate": d.fx.rate,
        },
    }


def reason_from_record(r: Mapping[str, Any]) -> Reason:
    """A Reason from a ListingDecision Reason record (older writers resolve to the defaults)."""
    return Reason(r["code"], r["rule_id"], r["message"], tuple(r["messages"].items()), r["phrase"])


def listing_from_record(r: Mapping[str, Any]) -> Listing:
    """A Listing from a record shaped by the ListingCreated reader schema (timestamps as ints)."""
    price = r["price"]
    # Positional, in Listing's field order: this runs once per message.
    return Listing(
        r["event_id"],
        r["event_time"],
        r["listing_id"],
        r["seller_id"],
        r["site"],
        r["seller_country"],
        r["ship_from_country"],
        r["category_id"],
        tuple(r["category_path"]),
        r["title"],
        Price(price["amount_minor"], price["currency"]),
        r["channel"],
        r["brand"],
        r["hs_code"],
        # fastavro hands out the schema's own default {} when the writer had no attributes field;
        # a fresh dict keeps one listing's attributes from being every defaulted listing's.
        r["attributes"] or {},
    )


def row_from_record(r: Mapping[str, Any]) -> ListingRow:
    """A ListingRow from a record shaped by the ListingCreated reader schema (timestamps as ints)."""
    price = r["price"]
    return ListingRow(
        r["event_id"],
        r["event_time"],
        r["listing_id"],
        r["seller_id"],
        r["site"],
        r["seller_country"],
        r["ship_from_country"],
        r["category_id"],
        tuple(r["category_path"]),
        r["title"],
        PriceRow(price["amount_minor"], price["currency"]),
        r["channel"],
        r["brand"],
        r["hs_code"],
        r["attributes"] or {},  # a fresh dict, not the schema's shared default (see above)
    )


def listing_record(listing: Listing) -> dict[str, Any]:
    """The ListingCreated record for a Listing, in schema field order (timestamps as ints)."""
    price = listing.price
    return {
        "event_id": listing.event_id,
        "event_time": listing.event_time_ms,
        "listing_id": listing.listing_id,
        "seller_id": listing.seller_id,
        "site": listing.site,
        "seller_country": listing.seller_country,
        "ship_from_country": listing.ship_from_country,
        "channel": listing.channel,
        "category_id": listing.category_id,
        "category_path": listing.category_path,
        "title": listing.title,
        "brand": listing.brand,
        "price": {"amount_minor": price.amount_minor, "currency": price.currency},
        "hs_code": listing.hs_code,
        "attributes": listing.attributes,
    }
