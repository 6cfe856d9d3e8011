"""`import-closure export`: write a bounded range of a topic as JSON Lines (consumer/tools/export.py)."""

from __future__ import annotations

import argparse
import sys

from consumer.cli.exit_codes import EXIT_OK, broker_unavailable
from consumer.cli.options import TIME_HELP, add_common, non_negative_int, positive_int, time_ms
from consumer.config import Settings
from consumer.errors import BrokerUnavailable
from consumer.tools.export import KINDS, RangeSpec, export, kind_of, open_range, reading_codec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "export",
        help="write a bounded range of a topic as JSON Lines",
        description="Decode a topic's records (either wire format) to JSON Lines on stdout: "
        "listings as `check` reads them, decisions as their JSON form, dead letters as key, "
        "value (base64) and headers. Stops at the end offsets seen at start (or --to, --count).",
    )
    add_common(parser)
    parser.add_argument("--topic", required=True, help="topic to read")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        help="what the topic holds (default: told by its name in the settings)",
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from", dest="from_time", metavar="TIME", help=TIME_HELP + " (start)")
    start.add_argument(
        "--from-offset", type=non_negative_int, metavar="N", help="first offset to read"
    )
    parser.add_argument("--to", dest="to_time", metavar="TIME", help=TIME_HELP + " (end)")
    parser.add_argument("--count", type=positive_int, help="stop after N records")
    parser.add_argument(
        "--partition", type=non_negative_int, metavar="P", help="read only partition P"
    )
    parser.add_argument(
        "--with-meta", action="store_true", help="add topic, partition, offset and timestamp"
    )


def handle(settings: Settings, args: argparse.Namespace) -> int:
    """The records on stdout, one count line on stderr; exit 0 also when some did not decode."""
    kind = kind_of(settings, args.topic, args.kind)
    spec = RangeSpec(
        args.topic,
        from_ms=time_ms("--from", args.from_time),
        from_offset=args.from_offset,
        to_ms=time_ms("--to", args.to_time),
        partition=args.partition,
        count=args.count,
    )
    try:
        reader = open_range(settings, spec)
    except BrokerUnavailable as exc:
        return broker_unavailable("export", exc)
    try:
        done = export(reader, kind, reading_codec(settings), sys.stdout, with_meta=args.with_meta)
    finally:
        reader.close()
    print(
        f"exported {done.records} records of {args.topic} ({done.undecodable} undecodable)",
        file=sys.stderr,
    )
    return EXIT_OK
