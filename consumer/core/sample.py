"""Seeded ListingCreated generator for produce-sample, the demo, tests and the benchmark.

Pure: the caller supplies the seed and the base event time, so the same arguments give the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from consumer.core.records import Listing, Price
from consumer.policy import bundled_policy_text

# (category_id, path, english noun, indonesian noun): clusters of the default policy and others.
_CATEGORIES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("c-101", ("Women's Fashion", "Dresses"), "Floral Midi Dress", "Gaun Midi Motif Bunga"),
    ("c-102", ("Fashion Wanita", "Atasan"), "Linen Blouse", "Blus Linen"),
    ("c-103", ("Men's Fashion", "Shirts"), "Oxford Shirt", "Kemeja Oxford"),
    ("c-104", ("Muslim Fashion", "Hijab"), "Voile Hijab", "Hijab Voal"),
    ("c-105", ("Batik", "Kain"), "Hand-drawn Batik Cloth", "Kain Batik Tulis"),
    ("c-106", ("Shoes", "Sneakers"), "Canvas Sneakers", "Sepatu Kanvas"),
    ("c-107", ("Tas", "Tas Selempang"), "Sling Bag", "Tas Selempang Kulit"),
    ("c-108", ("Textiles", "Fabric"), "Cotton Fabric 2m", "Kain Katun 2m"),
    ("c-201", ("Food & Beverages", "Snacks"), "Spicy Cassava Chips", "Keripik Singkong Pedas"),
    ("c-202", ("Makanan & Minuman", "Kopi"), "Gayo Arabica Coffee 250g", "Kopi Arabika Gayo 250g"),
    ("c-203", ("Groceries", "Beverages"), "Green Tea Drink", "Minuman Teh Hijau"),
    ("c-204", ("Groceries", "Food"), "Instant Noodles 5-pack", "Mi Instan isi 5"),
    ("c-301", ("Handicrafts", "Woodcraft"), "Carved Teak Bowl", "Mangkuk Ukir Jati"),
    ("c-302", ("Kerajinan Tangan", "Anyaman"), "Rattan Basket", "Keranjang Rotan"),
    ("c-303", ("Home & Living", "Handicrafts"), "Ceramic Vase", "Vas Keramik"),
    ("c-401", ("Electronics", "Phones"), "Smartphone 128GB", "Ponsel Pintar 128GB"),
    ("c-402", ("Electronics", "Audio"), "Wireless Earbuds", "Earbud Nirkabel"),
    ("c-501", ("Books", "Non-fiction"), "History of the Spice Trade", "Sejarah Jalur Rempah"),
    ("c-601", ("Home & Living", "Kitchen"), "Non-stick Frying Pan", "Wajan Anti Lengket"),
    ("c-701", ("Toys", "Building Blocks"), "Building Blocks Set", "Set Balok Susun"),
)
# Foreign sellers and the currency they most often price in.
_FOREIGN = (("CN", "CNY"), ("MY", "MYR"), ("SG", "SGD"), ("KR", "KRW"), ("US", "USD"))
# Typical price ranges in major units per currency, so conversions land on both sides of USD 100.
_PRICE_RANGE = {
    "IDR": (15_000, 3_500_000),
    "CNY": (10, 1_500),
    "MYR": (5, 900),
    "SGD": (2, 300),
    "KRW": (3_000, 400_000),
    "USD": (2, 400),
}
_MINOR_EXPONENT = {"KRW": 0}
_HS_BY_CATEGORY = {"c-501": "490199", "c-101": "620442", "c-201": "200590", "c-401": "851713"}
_BRANDS = (None, None, "Nusantara", "Lumbung", "Xiaomi", "Uniqlo", "Samsung", "Kopi Kita")


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """Knobs for the mix; defaults resemble a marketplace where about 40% of new listings are imported."""

    cross_border_share: float = 0.4
    base_time_ms: int = 1_700_000_000_000
    #: Spacing between consecutive events' event_time, in milliseconds.
    step_ms: float = 1.0


def generate(seed: int, spec: SampleSpec = SampleSpec()) -> Iterator[Listing]:
    """An endless, reproducible stream of realistic listings."""
    rng = random.Random(seed)
    n = 0
    while True:
        yield _listing(rng, seed, n, spec)
        n += 1


def _listing(rng: random.Random, seed: int, n: int, spec: SampleSpec) -> Listing:
    category_id, path, english, indonesian = rng.choice(_CATEGORIES)
    foreign = rng.random() < spec.cross_border_share
    if foreign:
        country, currency = rng.choice(_FOREIGN)
        currency = currency if rng.random() < 0.6 else "IDR"
        ship_from = country
        channel = "CROSS_BORDER" if rng.random() < 0.5 else None
    else:
        country, currency, ship_from = "ID", "IDR", "ID"
        channel = "DOMESTIC" if rng.random() < 0.5 else None
    low, high = _PRICE_RANGE[currency]
    major = rng.uniform(low, high)
    amount_minor = round(major * 10 ** _MINOR_EXPONENT.get(currency, 2))
    title = indonesian if rng.random() < 0.5 else english
    return Listing(
        event_id=f"evt-{seed}-{n}",
        event_time_ms=spec.base_time_ms + int(n * spec.step_ms),
        listing_id=f"lst-{seed}-{n}",
        seller_id=f"seller-{country.lower()}-{rng.randrange(5000)}",
        site="ID",
        seller_country=country,
        ship_from_country=ship_from,
        category_id=category_id,
        category_path=path,
        title=title,
        price=Price(amount_minor=amount_minor, currency=currency),
        channel=channel,  # type: ignore[arg-type]
        brand=rng.choice(_BRANDS),
        hs_code=_HS_BY_CATEGORY.get(category_id) if rng.random() < 0.7 else None,
        attributes={"condition": "new"} if rng.random() < 0.5 else {},
    )


def malformed(rng: random.Random, good_value: bytes) -> bytes:
    """One bad message value of a kind seen in practice; each maps to a distinct decode error code."""
    kind = rng.randrange(6)
    if kind == 0:
        return b""  # empty
    if kind == 1:
        return b'{"listing_id": "json-by-mistake"}'  # unknown magic
    if kind == 2:
        return good_value[: max(11, len(good_value) // 2)]  # truncated body
    if kind == 3:
        return b"\xc3\x01" + rng.randbytes(8) + good_value[10:]  # unknown fingerprint
    if kind == 4:
        return b"\x00\x00\x00\x00\x07" + good_value[10:]  # Confluent framing, no registry
    return good_value[:10] + rng.randbytes(len(good_value) - 10)  # corrupt body


#: The rule candidate_policy_text adds to the bundled policy.
CANDIDATE_RULE = """
  - id: akar-electronics
    effect: reject
    reason: IMPORT_CLOSED_CATEGORY
    message: Cross-border electronics imports are closed
    when:
      cross_border: true
      cluster_in: [electronics]
"""


def candidate_policy_text() -> str:
    """The bundled policy, version 2026.12, that also closes cross-border electronics (about 10% of
    the samples): the one candidate the benchmarks and tests of diff, replay, reload and shadow use."""
    text = bundled_policy_text().replace('version: "2021.08"', 'version: "2026.12"', 1)
    cluster = "  electronics:\n    category_paths: [[Electronics], [Elektronik]]\n"
    return text.replace("clusters:\n", "clusters:\n" + cluster, 1) + CANDIDATE_RULE
