"""Micro-benchmark of the pure core, no Kafka: each stage of decide_batch in µs per event.

    .venv/bin/python bench/micro.py [--count 20000] [--repeats 7] [--policy FILE]
        [--text-phrases N]

Generates seeded listings, encodes them once, then times each stage over the whole batch REPEATS
times, rounds interleaved so a noisy neighbour hurts every stage alike, and prints the median and
the minimum CPU time (time.process_time) per event:

- decode: codec.read_listing (value -> ListingRow + the copied fields), the hot path's decoder
- evaluate: scan (the policy's rules -> VerdictKey) and the verdict-cache lookup
- encode: the decision's bytes from the cached verdict part and the per-event fields
- text matching (with a policy that has title_contains_any): normalising a title and scanning it
  with the policy's automaton, once per event; --text-phrases N runs on bench/text_policy.py's
  policy (the default one plus a rule of N phrases) and also times evaluate on the default policy
- decide_batch: all of it as the worker calls it, plus Decided and headers
- for reference: fastavro's schemaless_reader / schemaless_writer, evaluate() building a Verdict,
  and the decode -> evaluate -> make_decision -> encode_decision chain of typed records.

Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from itertools import islice
from pathlib import Path

from fastavro import schemaless_reader, schemaless_writer

from consumer.codec import LISTING_CREATED, AvroCodec, BundledSchemas
from consumer.codec.binary import encode_long
from consumer.codec.decision_writer import source_prefix
from consumer.codec.records import decision_record
from consumer.codec.resolution import strip_logical_types
from consumer.core.pipeline import Verdicts, decide_batch, tally
from consumer.core.records import Provenance, RawRecord, SourceRef, make_decision
from consumer.core.sample import generate
from consumer.policy import CompiledPolicy, evaluate
from consumer.policy.evaluate import scan
from consumer.service.policy_watch import load_policy_file


def text_policy(count: int) -> Path:
    """bench/text_policy.py's policy with `count` phrases, in a fresh temporary folder."""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("text_policy.py")),
            "--phrases",
            str(count),
            "--out",
            tempfile.mkdtemp(prefix="text-policy-"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--policy", type=Path, help="policy YAML (default: the bundled one)")
    parser.add_argument(
        "--shadow", type=Path, help="also time decide_batch + tally with this shadow policy"
    )
    parser.add_argument(
        "--text-phrases", type=int, help="the default policy plus a rule of N title phrases"
    )
    args = parser.parse_args()
    if args.text_phrases:
        args.policy = text_policy(args.text_phrases)
    enforced = load_policy_file(args.policy)  # the bundled one without --policy; list files read
    if not isinstance(enforced, CompiledPolicy):
        parser.error("--policy: the stages are measured on one policy file, not a policy set")
    policy = enforced
    codec = AvroCodec()
    listings = list(islice(generate(7), args.count))
    records = [
        RawRecord(
            "bench",
            n % 6,
            1_000_000 + n,
            None,
            listing.listing_id.encode(),
            codec.encode_listing(listing),
            (("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),),
        )
        for n, listing in enumerate(listings)
    ]
    values = [codec.encode_listing(listing) for listing in listings]
    read = codec.read_listing
    decoded = [read(v) for v in values]
    rows = [d[0] for d in decoded]
    verdicts = Verdicts.of(codec, policy)
    keys = [scan(row, policy) for row in rows]
    entries = [verdicts.entries.get(k) or verdicts.add(k) for k in keys]
    writer = verdicts.writer
    now_ms = 1_700_000_000_000

    def decode() -> None:
        for v in values:
            read(v)

    def evaluate_stage() -> None:
        get = verdicts.entries.get
        for row in rows:
            get(scan(row, policy))

    def encode() -> None:
        join = b"".join
        header = writer.header
        decision_id = writer.decision_id_field
        decided = encode_long(now_ms)
        source = source_prefix("bench", 0)
        for (row, event_id, event_time, ids), entry, r in zip(
            decoded, entries, records, strict=True
        ):
            join(
                (
                    header,
                    decision_id(row.event_id),
                    event_id,
                    ids,
                    entry.part,
                    event_time,
                    decided,
                    source,
                    encode_long(r.offset),
                )
            )

    reader_schema = strip_logical_types(BundledSchemas.load()[LISTING_CREATED].parsed)
    decision_schema = codec._decision_schema
    typed = [
        make_decision(
            listing,
            evaluate(listing, policy),
            policy=policy.policy_id,
            policy_version=policy.version,
            decided_at_ms=now_ms,
            source=SourceRef("bench", 0, n),
        )
        for n, listing in enumerate(listings)
    ]

    def fastavro_read() -> None:
        for v in values:
            stream = BytesIO(v)
            stream.seek(10)
            schemaless_reader(stream, reader_schema, None)

    def fastavro_write() -> None:
        for d in typed:
            record = decision_record(d)
            if record["source"] is not None:
                record["source"] = ("id.marketplace.importclosure.v1.SourceRef", record["source"])
            stream = BytesIO()
            schemaless_writer(stream, decision_schema, record)

    def typed_chain() -> None:
        for r in records:
            listing = codec.decode_listing(r.value)
            decision = make_decision(
                listing,
                evaluate(listing, policy),
                policy=policy.policy_id,
                policy_version=policy.version,
                decided_at_ms=now_ms,
                source=SourceRef(r.topic, r.partition, r.offset),
            )
            codec.encode_decision(decision)

    stages: dict[str, Callable[[], object]] = {
        "decode (read_listing)": decode,
        "evaluate (scan + verdict lookup)": evaluate_stage,
        "encode (spliced decision bytes)": encode,
        "decide_batch (all of it)": lambda: decide_batch(records, codec, policy, now_ms, verdicts),
        "decide_batch + tally": lambda: tally(
            decide_batch(records, codec, policy, now_ms, verdicts)
        ),
        "ref: fastavro schemaless_reader": fastavro_read,
        "ref: evaluate() -> Verdict": lambda: [evaluate(x, policy) for x in listings],
        "ref: fastavro schemaless_writer": fastavro_write,
        "ref: typed chain (Listing..Decision)": typed_chain,
    }
    if policy.text is not None:
        text = policy.text

        def text_stage() -> None:
            for row in rows:
                text.scan(row.title)

        stages["text matching (normalise + scan)"] = text_stage
    if args.text_phrases:
        plain = load_policy_file(None)
        assert isinstance(plain, CompiledPolicy)
        plain_verdicts = Verdicts.of(codec, plain)

        def plain_evaluate() -> None:
            get, add = plain_verdicts.entries.get, plain_verdicts.add
            for row in rows:
                key = scan(row, plain)
                get(key) or add(key)

        plain_evaluate()
        stages["ref: evaluate, same policy without phrases"] = plain_evaluate
        stages["ref: decide_batch without phrases"] = lambda: decide_batch(
            records, codec, plain, now_ms, plain_verdicts
        )
    if args.shadow:
        candidate = load_policy_file(args.shadow)
        shadow = Verdicts.of(codec, candidate, Provenance(mode="SHADOW"))
        for output in ("none", "all"):
            stages[f"decide_batch + tally, shadow {output}"] = functools.partial(
                lambda o: tally(
                    decide_batch(
                        records, codec, policy, now_ms, verdicts, shadow=shadow, shadow_output=o
                    )
                ),
                output,
            )
    print(
        f"policy {policy.policy_id} {policy.version}; {args.count:,} events, {args.repeats} rounds"
    )
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(args.repeats):
        for name, work in stages.items():
            started = time.process_time()
            work()
            times[name].append((time.process_time() - started) / args.count * 1e6)
    for name, spent in times.items():
        median = statistics.median(spent)
        print(
            f"  {name:<38} median {median:6.2f} µs/event  (min {min(spent):.2f})"
            f"  = {1e6 / median:>9,.0f}/s per CPU-second"
        )


if __name__ == "__main__":
    main()
