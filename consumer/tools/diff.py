"""`import-closure diff`: decide every listing with the live and the candidate policy, report changes.

Input is JSON Lines (a file or standard input, read as `check` reads it) or a bounded range of
a topic (export's reader). An invalid line or undecodable record is reported on stderr as `check`
reports it and counted in `invalid`; the run goes on. The numbers equal two `check` runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO

from consumer.codec import AvroCodec
from consumer.codec.jsonform import read_listings
from consumer.config import Settings
from consumer.core.impact import TRANSITIONS, ImpactReport, Judge, side
from consumer.core.records import Listing, ListingRow
from consumer.errors import DecodeError
from consumer.kafka.range_reader import RangeReader
from consumer.policy.set_explain import explain_enforced
from consumer.tools.export import RangeSpec, open_range, reading_codec

Item = Listing | ListingRow | str  # a listing, or where and why an input was invalid


def lines_input(stream: IO[bytes]) -> Iterator[Item]:
    """Listings of JSON Lines; an invalid line as `line N: <message>`, the way `check` says it."""
    for number, listing in read_listings(stream):
        yield f"line {number}: {listing.message}" if isinstance(listing, DecodeError) else listing


def topic_input(reader: RangeReader, codec: AvroCodec) -> Iterator[Item]:
    """Listings of a topic range; an undecodable record as `topic[p]@offset: code: message`."""
    read = codec.read_listing
    for record in reader.records():
        try:
            yield read(record.value)[0]
        except DecodeError as exc:
            yield f"{record.topic}[{record.partition}]@{record.offset}: {exc}"


def compare(
    items: Iterator[Item],
    judge: Judge,
    errors: IO[str],
    *,
    examples: int = 5,
    changes: IO[str] | None = None,
) -> ImpactReport:
    """Judge each listing; with `changes`, write one JSON line per changed listing as it comes."""
    report = ImpactReport(max_examples=0 if changes is not None else examples)
    add = report.add
    for item in items:
        if isinstance(item, str):
            print(item, file=errors)
            report.invalid += 1
            continue
        old, new, differs = judge.judge(item)
        add(item, old, new, differs)
        if differs and changes is not None:
            line = {
                "listing_id": item.listing_id,
                "event_id": item.event_id,
                "from": side(old),
                "to": side(new),
            }
            changes.write(json.dumps(line, ensure_ascii=False) + "\n")
    return report


def compare_range(
    settings: Settings,
    spec: RangeSpec,
    judge: Judge,
    *,
    examples: int = 5,
    changes: IO[str] | None = None,
) -> ImpactReport:
    """`compare` over a topic range (diff --topic, replay --dry-run); BrokerUnavailable when no
    broker answers, for the caller's one line."""
    reader = open_range(settings, spec)
    try:
        items = topic_input(reader, reading_codec(settings))
        return compare(items, judge, sys.stderr, examples=examples, changes=changes)
    finally:
        reader.close()


def render_json(report: ImpactReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)


def render_text(report: ImpactReport, judge: Judge) -> str:
    """A readable report: counts, transitions, by cluster and rule, examples explained both ways."""
    share = f" ({100 * report.changed / report.listings:.2f}%)" if report.listings else ""
    live, candidate = judge.live, judge.candidate
    lines = [
        f"live:      {live.policy_id} {live.version}",
        f"candidate: {candidate.policy_id} {candidate.version}",
        f"listings read: {report.listings:,}",
        f"invalid lines: {report.invalid:,}",
        f"decisions changed: {report.changed:,}{share}",
        "transitions:",
        *(f"  {t:<20} {report.transitions[t]:>10,}" for t in TRANSITIONS),
        "changed by cluster:",
        *_table(report.by_cluster),
        "changed by rule that makes the difference:",
        *_table(report.by_rule),
    ]
    for n, change in enumerate(report.examples, start=1):
        listing = change.listing
        typed = listing.listing() if isinstance(listing, ListingRow) else listing
        lines += [
            "",
            f"example {n}: listing {typed.listing_id} (event {typed.event_id}): "
            f"{change.old.outcome} -> {change.new.outcome}",
            "-- live:",
            explain_enforced(typed, live, judge.as_of_ms),
            "-- candidate:",
            explain_enforced(typed, candidate, judge.as_of_ms),
        ]
    return "\n".join(lines)


def _table(counts: dict[str, int]) -> list[str]:
    if not counts:
        return ["  none"]
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [f"  {name:<32} {n:>10,}" for name, n in ordered]
