"""`import-closure check`: decide JSON Lines listings with a policy, without Kafka."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from consumer.cli.exit_codes import EXIT_OK, EXIT_USAGE
from consumer.cli.options import add_as_of, as_of_ms, open_input
from consumer.codec.jsonform import decision_to_json, read_listings
from consumer.core.records import LIVE, Provenance, make_decision
from consumer.errors import DecodeError
from consumer.policy.set_explain import explain_enforced
from consumer.service.policy_watch import load_policy_file


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "check",
        help="decide JSON Lines listings with a policy, without Kafka",
        description="Read ListingCreated events as JSON Lines and print one decision per line.",
    )
    parser.add_argument(
        "file", nargs="?", default="-", help="JSON Lines file, or - for standard input (default)"
    )
    parser.add_argument(
        "--policy",
        type=Path,
        help="policy or policy set YAML, or bundled:NAME (default: the bundled id-akar-import-closure)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print a readable account per listing instead"
    )
    add_as_of(parser)


def handle(args: argparse.Namespace) -> int:
    """Exit 2 when any line was invalid (each is `line N: ...` on stderr); the others are decided."""
    policy = load_policy_file(args.policy)
    stream = open_input(args.file)
    invalid = 0
    now_ms = int(time.time() * 1000)
    as_of = as_of_ms(args.as_of, policy)
    provenance = LIVE if as_of is None else Provenance(as_of_ms=as_of)
    with stream:
        for number, listing in read_listings(stream):
            if isinstance(listing, DecodeError):
                print(f"line {number}: {listing.message}", file=sys.stderr)
                invalid += 1
                continue
            if args.explain:
                print(explain_enforced(listing, policy, as_of))
                print()
                continue
            decision = make_decision(
                listing,
                policy.verdict_of(policy.scan(listing, as_of)),
                policy=policy.policy_id,
                policy_version=policy.version,
                decided_at_ms=now_ms,
                source=None,
                provenance=provenance,
            )
            print(json.dumps(decision_to_json(decision), ensure_ascii=False))
    return EXIT_USAGE if invalid else EXIT_OK
