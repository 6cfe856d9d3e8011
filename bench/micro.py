"""Micro-benchmark of the pure core, no Kafka: evaluations/s and decode+evaluate+encode/s.

    .venv/bin/python bench/micro.py [--count 20000] [--repeats 5] [--policy FILE]

Generates seeded listings, encodes them once, then times (a) evaluate() alone and (b) decide_batch
(decode → evaluate → encode, as the worker runs it) over the whole batch, REPEATS times each, and
prints the median and the spread. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from consumer.codec import AvroCodec
from consumer.events import RawRecord
from consumer.pipeline import decide_batch
from consumer.policy import bundled_policy_text, compile_policy, evaluate, load_policy
from consumer.sample import generate


def _rates(label: str, count: int, repeats: int, work: Callable[[], object]) -> None:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        rates.append(count / (time.perf_counter() - started))
    print(
        f"{label:<34} median {statistics.median(rates):>10,.0f}/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}, {repeats} runs of {count:,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--policy", type=Path, help="policy YAML (default: the bundled one)")
    args = parser.parse_args()
    text = args.policy.read_text() if args.policy else bundled_policy_text()
    policy = compile_policy(load_policy(text))
    codec = AvroCodec()
    listings = list(islice(generate(7), args.count))
    records = [
        RawRecord("bench", 0, n, None, listing.listing_id.encode(), codec.encode_listing(listing))
        for n, listing in enumerate(listings)
    ]
    print(f"policy {policy.policy_id} {policy.version}")
    _rates("evaluate", args.count, args.repeats, lambda: [evaluate(x, policy) for x in listings])
    _rates(
        "decode + evaluate + encode",
        args.count,
        args.repeats,
        lambda: decide_batch(records, codec, policy, 0),
    )


if __name__ == "__main__":
    main()
