"""`import-closure test-policy`: run test cases against a policy and report what they cover."""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

from consumer.cli.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from consumer.errors import ConfigError, PolicyTestError
from consumer.policy.bundled import bundled_name, bundled_tests, bundled_tests_path
from consumer.policy.casefile import DEFAULT_EVENT_TIME, CaseFile, load_cases
from consumer.policy.enforced import Enforced
from consumer.policy.testing import check_rule_ids, run_tests
from consumer.policy.yamldoc import MAX_POLICY_BYTES
from consumer.service.policy_watch import load_policy_file


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "test-policy",
        help="run test cases against a policy, with coverage, before it goes live",
        description="Decide each case of the test files with the policy and compare the outcome, "
        "the reasons' rule ids, the exempted rules and the matched phrase with what the case "
        "expects. Coverage: rules no case matched, exemptions no case applied, list versions in "
        "force for no case. Exit 0 when every case passes, 1 when one fails (or, with --strict, "
        "something is not covered), 2 when the policy or a test file is invalid.",
        epilog="A test file is YAML: `cases:` a list of {name, listing, as_of (optional), expect: "
        "{outcome, rules, exempted, phrase}}. Listing fields a case leaves out come from a "
        "template: a domestic listing (ID to ID) on site ID by seller-test, category c-test with "
        "no path, title 'test listing', 100,000 IDR, event_id and listing_id test:<name>, "
        f"event_time the case's as_of or {DEFAULT_EVENT_TIME}. See docs/operations.md.",
    )
    parser.add_argument(
        "policy",
        type=Path,
        metavar="POLICY",
        help="policy or policy set YAML, or bundled:NAME (as check --policy)",
    )
    parser.add_argument(
        "tests",
        nargs="*",
        metavar="TESTS",
        type=Path,
        help="test files (YAML); for bundled:NAME, the test file shipped with it by default",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail (exit 1) when coverage finds a gap"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print one line per case, passed ones too"
    )


def handle(args: argparse.Namespace) -> int:
    """An invalid policy raises PolicyError, which main prints line by line (exit 2); every
    invalid test file is reported, each problem as `file: path: problem`, before exit 2."""
    policy = load_policy_file(args.policy)
    now_ms = int(time.time() * 1000)  # what `as_of: now` means
    files: list[CaseFile] = []
    invalid = False
    for load in [partial(_read, path) for path in args.tests] or [partial(_bundled, args.policy)]:
        try:
            cases = load(policy, now_ms)
            check_rule_ids(policy, cases)
        except PolicyTestError as exc:
            for problem in exc.problems:
                print(f"{exc.source}: {problem}", file=sys.stderr)
            invalid = True
            continue
        files.append(cases)
    if invalid:
        return EXIT_USAGE
    report = run_tests(policy, files, strict=args.strict)
    for line in report.lines(verbose=args.verbose):
        print(line)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _read(path: Path, policy: Enforced, now_ms: int) -> CaseFile:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_POLICY_BYTES + 1)  # one byte over: refused as too large
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return load_cases(raw, str(path), policy.tz, now_ms)


def _bundled(given: Path, policy: Enforced, now_ms: int) -> CaseFile:
    name = bundled_name(given)
    if name is None:
        msg = "test-policy: name at least one test file (only bundled:NAME brings its own)"
        raise ConfigError(msg)
    source = f"<bundled {bundled_tests_path(name).removeprefix('data/policies/')}>"
    return load_cases(bundled_tests(name), source, policy.tz, now_ms)
