"""Seeded listings that exercise every leaf condition of the bundled and test policies.

Used to pin what existing policy files decide (tests/unit/policy/test_old_files.py): the fixture
fixtures/old_decisions.json was written by `python -m tests.unit.policy.generated` from the
evaluator as it was before condition blocks, exemptions and review existed (issue 15, commit
057fd57). It pins that behaviour: regenerate it only from that commit, never from newer code.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

from consumer.core.records import Listing, Price, Verdict
from consumer.policy import compile_policy, evaluate
from consumer.policy import load_policy as _load

FIXTURE = Path(__file__).parent / "fixtures" / "old_decisions.json"
OLD_POLICIES = Path(__file__).parent / "fixtures" / "old_policies"
#: The bundled policies the fixture pins, as they were when it was written.
OLD_BUNDLED = ("id-akar-import-closure", "permendag-31-2023")
COUNT = 3000
SEED = 15

_SITES = ["ID", "ID", "ID", "MY", "SG"]
_COUNTRIES = ["ID", "CN", "MY", "SG", "US", "KR"]
_PATHS = [
    ("Women's Fashion", "Dresses"),
    ("WOMEN'S  FASHION",),
    ("Food & Beverages", "Snacks"),
    ("Groceries", "Food"),
    ("Kerajinan", "Anyaman"),
    ("Home & Living", "Textiles"),
    ("Home & Living", "Furniture"),
    ("Electronics", "Phones"),
    ("Bags",),
    ("Food",),
    ("Fashion", "Bags"),
    (),
]
_CURRENCIES = ["IDR", "IDR", "USD", "CNY", "JPY", "KRW", "EUR", "BHD", "MYR"]
_HS = [None, "4901.99", "490110", "6109 10", "61", "8517", "0901"]
# 2021-07-01 .. 2025-01-01, so rule windows (2021-08-03, 2023-09-26, 2030) are crossed
_T0, _T1 = 1_625_097_600_000, 1_735_689_600_000


def listings(count: int = COUNT, seed: int = SEED) -> list[Listing]:
    """`count` listings from a fixed seed; the same list on every Python this project supports."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        site = rng.choice(_SITES)
        ship_from = site if rng.random() < 0.3 else rng.choice(_COUNTRIES)
        currency = rng.choice(_CURRENCIES)
        amount = rng.choice([1, 10, 99, 100, 101, 1_000, 10**4, 10**5, 10**6, 10**8, 10**9])
        amount = amount * rng.choice([1, 1, 1, 3, 7]) + rng.choice([0, 0, 1, -1])
        attributes = {"condition": rng.choice(["used", "new"])} if rng.random() < 0.3 else {}
        out.append(
            Listing(
                event_id=f"evt-{i}",
                event_time_ms=rng.randrange(_T0, _T1),
                listing_id=f"lst-{i}",
                seller_id=rng.choice(["s1", "s2", "s3"]),
                site=site,
                seller_country=rng.choice(_COUNTRIES),
                ship_from_country=ship_from,
                category_id=rng.choice(["c-1", "c-2", "c-bag", "c-9"]),
                category_path=rng.choice(_PATHS),
                title="t",
                price=Price(amount, currency),
                channel=rng.choice([None, None, "DOMESTIC", "CROSS_BORDER"]),
                brand=rng.choice([None, "acme", " ACME ", "other"]),
                hs_code=rng.choice(_HS),
                attributes=attributes,
            )
        )
    return out


def digest(items: list[Listing]) -> str:
    """Changes when the generator does, so a stale fixture fails loudly instead of comparing noise."""
    return hashlib.sha256(repr(items).encode()).hexdigest()


def shown(verdict: Verdict) -> str:
    """Everything an old-style verdict says, as one comparable line."""
    reasons = ",".join(f"{r.code}/{r.rule_id}/{r.message}" for r in verdict.reasons)
    return f"{verdict.outcome}|{reasons}|{','.join(verdict.matched_rules)}|{verdict.cluster}|{verdict.cross_border}"


def policy_texts() -> dict[str, str]:
    """The bundled files as they were before issue 16 gave them Indonesian messages (kept in
    fixtures/old_policies/; test_old_files checks the bundled files still decide like them) and
    the test policies whose meaning must not change."""
    from tests.unit.policy.test_properties import KITCHEN_SINK

    return {name: old_bundled_text(name) for name in OLD_BUNDLED} | {"kitchen-sink": KITCHEN_SINK}


def old_bundled_text(name: str) -> str:
    """A bundled policy file as it was before issue 16 (English plain-string messages)."""
    return (OLD_POLICIES / f"{name}.yaml").read_text(encoding="utf-8")


def decisions() -> dict[str, object]:
    items = listings()
    """{"digest", "lines": distinct verdict lines, policy name: line index per listing}."""
    lines: dict[str, int] = {}
    out: dict[str, object] = {"seed": SEED, "count": COUNT, "digest": digest(items)}
    for name, text in policy_texts().items():
        compiled = compile_policy(_load(text))
        out[name] = [
            lines.setdefault(shown(evaluate(listing, compiled)), len(lines)) for listing in items
        ]
    out["lines"] = list(lines)
    return out


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(decisions()) + "\n")
    sys.stdout.write(f"wrote {FIXTURE}\n")
