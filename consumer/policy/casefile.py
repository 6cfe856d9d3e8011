"""Policy test files (`import-closure test-policy`): YAML `cases:` read into Case records.

A case is a listing, an optional as_of and what the policy must say about it. The listing is the
JSON form `check` reads, with every field it leaves out taken from LISTING_TEMPLATE, so a case
writes only what it is about. Parsing is as strict as a policy's (consumer.policy.yamldoc):
duplicate and unknown keys are problems, and every problem names its path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final, get_args

from consumer.codec.jsonform import format_time, listing_from_json
from consumer.core.records import Listing, Outcome
from consumer.errors import DecodeError, PolicyError, PolicyTestError
from consumer.policy.load import parse_as_of
from consumer.policy.problems import Problems, kind
from consumer.policy.yamldoc import parse_document

#: When a case gives neither `as_of` nor `event_time`: after every bundled rule and list version
#: began, and fixed, so a test never changes its result with the day it runs.
DEFAULT_EVENT_TIME: Final = "2024-01-01T00:00:00Z"

#: The listing a case starts from: a domestic listing on the Indonesian site with no cluster,
#: brand, HS code or attribute, priced 100,000 IDR. `event_id` and `listing_id` are
#: `test:<case name>`; `event_time` is the case's as_of when it has one, else DEFAULT_EVENT_TIME.
#: A field the case gives replaces the template's whole (`price` too).
LISTING_TEMPLATE: Final[Mapping[str, Any]] = {
    "seller_id": "seller-test",
    "site": "ID",
    "seller_country": "ID",
    "ship_from_country": "ID",
    "category_id": "c-test",
    "category_path": [],
    "title": "test listing",
    "price": {"amount_minor": 10_000_000, "currency": "IDR"},
}

OUTCOMES: Final = tuple(get_args(Outcome))

_FILE_KEYS = {"cases", "description"}
_CASE_KEYS = {"name", "listing", "as_of", "expect"}
_EXPECT_KEYS = {"outcome", "rules", "exempted", "phrase"}


@dataclass(frozen=True, slots=True)
class Expect:
    """What a case asserts; None means "not checked"."""

    outcome: Outcome
    #: The reasons' rule ids, in order (an empty tuple: no reason).
    rules: tuple[str, ...] | None = None
    #: The ids of the rules exempted (Verdict.exemptions' rule_id), in any order.
    exempted: tuple[str, ...] | None = None
    #: A phrase a text rule among the reasons matched (Reason.phrase).
    phrase: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """One case of a test file; `where` is its path (`cases[3]`) for messages."""

    name: str
    listing: Listing
    expect: Expect
    as_of_ms: int | None = None
    where: str = "cases[0]"

    @property
    def time_ms(self) -> int:
        """The time rule windows and list versions are checked against for this case."""
        return self.listing.event_time_ms if self.as_of_ms is None else self.as_of_ms


@dataclass(frozen=True, slots=True)
class CaseFile:
    """A valid test file: its name as given (for messages) and its cases in file order."""

    source: str
    cases: tuple[Case, ...]
    description: str | None = None


def load_cases(raw: bytes | str, source: str, tz: tzinfo, now_ms: int) -> CaseFile:
    """Read a test file; PolicyTestError listing every problem by its path.

    `tz` (the policy's zone) places a plain-date `as_of` at 00:00 there, as `check --as-of` does;
    `now_ms` is what `as_of: now` means.
    """
    try:
        document = parse_document(raw, source)
    except PolicyError as exc:
        raise PolicyTestError(exc.problems, source) from None
    problems = Problems(document.duplicates, document.more_duplicates)
    data = document.data
    if not isinstance(data, dict):
        problems.fail("(top level)", f"expected a mapping with cases:, got {kind(data)}")
        raise PolicyTestError(problems.listed(), source)
    problems.keys("", data, _FILE_KEYS, required=("cases",))
    description = problems.text("description", data.get("description"), optional=True)
    raw_cases = data.get("cases")
    cases: list[Case] = []
    if "cases" in data and (not isinstance(raw_cases, list) or not raw_cases):
        got = "an empty list" if raw_cases == [] else kind(raw_cases)
        problems.fail("cases", f"expected a non-empty list of cases, got {got}")
    elif isinstance(raw_cases, list):
        first: dict[str, str] = {}
        for i, item in enumerate(raw_cases):
            case = _case(problems, f"cases[{i}]", item, tz, now_ms, first)
            if case is not None:
                cases.append(case)
    if problems.total:
        raise PolicyTestError(problems.listed(), source)
    return CaseFile(source, tuple(cases), description)


def _case(
    problems: Problems, where: str, raw: object, tz: tzinfo, now_ms: int, first: dict[str, str]
) -> Case | None:
    data = problems.mapping(where, raw)
    if data is None:
        return None
    before = problems.total
    problems.keys(where, data, _CASE_KEYS, required=("name", "listing", "expect"))
    name = problems.text(f"{where}.name", data["name"]) if "name" in data else None
    if name is not None:
        if name in first:
            problems.fail(f"{where}.name", f"duplicate case name {name!r} (first at {first[name]})")
        first.setdefault(name, where)
    as_of = _as_of(problems, f"{where}.as_of", data.get("as_of"), tz, now_ms)
    expect = _expect(problems, f"{where}.expect", data["expect"]) if "expect" in data else None
    listing = None
    if name is not None and "listing" in data:
        listing = _listing(problems, f"{where}.listing", data["listing"], name, as_of)
    if problems.total > before or name is None or expect is None or listing is None:
        return None
    return Case(name, listing, expect, as_of, where)


def _as_of(problems: Problems, where: str, value: object, tz: tzinfo, now_ms: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.fail(where, f"expected now, a date or an RFC 3339 datetime, got {kind(value)}")
        return None
    try:
        return parse_as_of(value, tz, now_ms)
    except ValueError as exc:
        problems.fail(where, str(exc))
        return None


def _expect(problems: Problems, where: str, raw: object) -> Expect | None:
    data = problems.mapping(where, raw)
    if data is None:
        return None
    before = problems.total
    problems.keys(where, data, _EXPECT_KEYS, required=("outcome",))
    outcome = data.get("outcome")
    if "outcome" in data and outcome not in OUTCOMES:
        problems.fail(
            f"{where}.outcome", f"expected one of {', '.join(OUTCOMES)}, got {kind(outcome)}"
        )
    rules = _ids(problems, f"{where}.rules", data["rules"]) if "rules" in data else None
    exempted = _ids(problems, f"{where}.exempted", data["exempted"]) if "exempted" in data else None
    phrase = problems.text(f"{where}.phrase", data["phrase"]) if "phrase" in data else None
    if problems.total > before or outcome not in OUTCOMES:
        return None
    return Expect(outcome, rules, exempted, phrase)  # type: ignore[arg-type]  # checked above


def _ids(problems: Problems, where: str, value: object) -> tuple[str, ...] | None:
    """A list of rule ids; an empty list is an assertion too (no reason, nothing exempted)."""
    if value == []:
        return ()
    return problems.strings(where, value)


def _template() -> dict[str, Any]:
    """A copy of LISTING_TEMPLATE, lists and mappings included, so no case shares them."""
    return copy.deepcopy(dict(LISTING_TEMPLATE))


def _listing(
    problems: Problems, where: str, raw: object, name: str, as_of: int | None
) -> Listing | None:
    data = problems.mapping(where, raw)
    if data is None:
        return None
    event_time: object = DEFAULT_EVENT_TIME if as_of is None else format_time(as_of)
    filled = {
        "event_id": f"test:{name}",
        "listing_id": f"test:{name}",
        "event_time": event_time,
        **_template(),
        **data,
    }
    try:
        return listing_from_json(filled)
    except DecodeError as exc:
        for problem in exc.message.split("; "):  # each `field: what`, or one whole problem
            field, sep, what = problem.partition(": ")
            problems.fail(f"{where}.{field}" if sep else where, what if sep else problem)
        return None
