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
from consumer.policy.enforced import Enforced
from consumer.policy.messages import tag_problem
from consumer.policy.set_explain import enforced_languages, explain_enforced
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
    parser.add_argument(
        "--lang",
        type=language_tag,
        metavar="TAG",
        help="reasons' message in this language (e.g. id, en) where the policy writes it, else "
        "in its default language; the decision's messages keep every language",
    )
    add_as_of(parser)


def language_tag(text: str) -> str:
    """--lang's value: a language tag as policies write them; a typo such as EN is exit 2."""
    problem = tag_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def chosen_language(language: str | None, policy: Enforced) -> str | None:
    """--lang as used: a tag the policy has no messages in is said once on stderr and read as
    the default language (a seller's language is data the policy may not cover; failing would
    stop a seller-facing tool for every new language)."""
    if language is None:
        return None
    languages = enforced_languages(policy)
    if language in languages:
        return language
    writes = f"writes messages in {', '.join(languages)}" if languages else "names no languages"
    print(
        f"import-closure: check: warning: --lang {language}: policy {policy.policy_id} {writes}; "
        "printing each reason in its default language",
        file=sys.stderr,
    )
    return None


def handle(args: argparse.Namespace) -> int:
    """Exit 2 when any line was invalid (each is `line N: ...` on stderr); the others are decided."""
    policy = load_policy_file(args.policy)
    language = chosen_language(args.lang, policy)
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
                print(explain_enforced(listing, policy, as_of, language))
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
            record = decision_to_json(decision)
            if language is not None:  # as the Kafka record, but `message` read in --lang
                for shown, reason in zip(record["reasons"], decision.reasons, strict=True):
                    shown["message"] = reason.message_in(language)
            print(json.dumps(record, ensure_ascii=False))
    return EXIT_USAGE if invalid else EXIT_OK
