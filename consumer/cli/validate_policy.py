"""`import-closure validate-policy`: check a policy file and summarise it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from consumer.cli.exit_codes import EXIT_OK
from consumer.policy.set_explain import enforced_warnings, summarize_enforced
from consumer.service.policy_watch import load_policy_file


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "validate-policy",
        help="check a policy file and summarise it",
        description="Exit 0 with a summary, or 2 with every validation error.",
    )
    parser.add_argument("file", type=Path, help="policy or policy set YAML file, or bundled:NAME")


def handle(args: argparse.Namespace) -> int:
    """An invalid policy raises PolicyError, which main prints problem by problem (exit 2)."""
    policy = load_policy_file(args.file)
    print(summarize_enforced(policy))
    for warning in enforced_warnings(policy):  # valid, so exit 0, but worth a second look
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    return EXIT_OK
