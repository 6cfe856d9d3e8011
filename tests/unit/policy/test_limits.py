"""The policy loader's limits: hostile files are refused with located problems, big ones stay fast.

Every case in tests/unit/hostile.py once gave a traceback, a hang or gigabytes of memory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from datetime import date, datetime
from fractions import Fraction
from typing import Any

import pytest
import yaml

from consumer.errors import PolicyError
from consumer.policy import (
    BUNDLED_POLICIES,
    bundled_policy_text,
    compile_policy,
    load_policy,
    yamldoc,
)
from consumer.policy.codes import minor_exponent
from consumer.policy.compile import content_hash
from consumer.policy.load import policy_warnings
from consumer.policy.model import PolicyModel
from consumer.policy.problems import MAX_PROBLEMS
from consumer.policy.yamldoc import MAX_DEPTH, MAX_POLICY_BYTES, parse_instant
from tests.unit.hostile import HEAD, POLICY_CASES, RULE
from tests.unit.listings import epoch_ms

#: What each hostile file is refused with. Where libyaml and PyYAML's own parser word it
#: differently, the pattern allows both.
EXPECTED = {
    "nesting-1000": r"line 3, column \d+: (nested more than 64 levels deep|YAML syntax error: exceeded maximum nesting depth)",
    "nesting-100k": r"line 3, column \d+: (nested more than 64 levels deep|YAML syntax error: exceeded maximum nesting depth)",
    "nesting-mapping": r"line 3, column \d+: nested more than 64 levels deep",
    "latin-1": r"line 2: not UTF-8: byte 0xe9 at byte offset 29 \(invalid continuation byte\)",
    "utf-16": r"\(file\): the file is UTF-16 \(it starts with a byte-order mark\); save it as UTF-8",
    "random-bytes": r"line 2: not UTF-8: byte 0x80 at byte offset 128",
    "nul-byte": r"line 1, column 13: character U\+0000 cannot appear in YAML",
    "control-char": r"line 1, column 13: character U\+0007 cannot appear in YAML",
    "year-zero": r"rules\[0\]\.effective_from: '0000-01-01' is not a date .*\(year 0 is out of range\)",
    "february-30": r"rules\[0\]\.effective_from: '2021-02-30' is not a date .*day is out of range",
    "offset-99-hours": r"rules\[0\]\.effective_from: '2021-08-03T10:00:00\+99:00' is not a date .*offset must be",
    "explicit-timestamp-tag": r"rules\[0\]\.effective_from: '2021-02-30' is not a date",
    "int-5000-digits": r"line 11, column 21: a number of 5000 characters; at most 32 are accepted",
    "hex-int-5000-digits": r"line 2, column 10: a number of 5002 characters",
    "fx-rate-400-digits": r"line 5, column 38: a number of 400 characters",
    "fx-rate-32-digits": r"fx\.rates\.IDR: must be between 1e-15 and 1e15, got 9{32}",
    "fx-rate-1e300": r"fx\.rates\.IDR: must be between 1e-15 and 1e15, got 1e\+300",
    "fx-rate-tiny-float": r"fx\.rates\.IDR: must be a finite number greater than 0, got 0\.0",
    "lone-surrogate": r"(description: contains a lone surrogate|line 6, column 21: YAML syntax error: found invalid Unicode character escape)",
    "surrogate-key": r"(rules\[0\]: contains a lone surrogate|line 7, column 17: YAML syntax error: found invalid Unicode character escape)",
    "alias-bomb": r"line 12, column 13: anchor &a0: anchors and aliases are not allowed in a policy",
    "empty-rules-null": r"rules: expected a list of rules, got nothing",
}


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with libyaml's parser (when PyYAML has it) and with PyYAML's own."""
    if request.param == "libyaml" and not yamldoc._LIBYAML:
        pytest.skip("PyYAML was built without libyaml")
    name: str = request.param
    monkeypatch.setattr(yamldoc, "_LIBYAML", name == "libyaml")
    return name


def problems_of(raw: bytes | str) -> tuple[str, ...]:
    with pytest.raises(PolicyError) as caught:
        load_policy(raw, "hostile.yaml")
    assert caught.value.problems, "a PolicyError must say what is wrong"
    return caught.value.problems


def policy(rules: str = RULE, head: str = HEAD) -> str:
    return head + "rules:\n" + rules


class TestHostileFiles:
    def test_every_case_has_an_expectation(self) -> None:
        """The corpus and the table above name the same cases."""
        assert {name for name, _ in POLICY_CASES} == set(EXPECTED)

    @pytest.mark.parametrize(("name", "raw"), POLICY_CASES, ids=[name for name, _ in POLICY_CASES])
    def test_refused_with_a_located_problem(self, name: str, raw: bytes, parser: str) -> None:
        """Each hostile file is one PolicyError naming where and what, never another exception."""
        problems = problems_of(raw)
        assert any(re.match(EXPECTED[name], p) for p in problems), problems


class TestNesting:
    def test_nesting_up_to_the_limit_is_read(self, parser: str) -> None:
        """MAX_DEPTH levels, the top-level mapping included, are fine (the value is merely wrong)."""
        nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
        problems = problems_of(f"policy: p\nversion: v\nrules: {nested}\n")
        assert problems == ("rules[0]: expected a mapping, got a list",)

    def test_one_level_more_is_refused(self, parser: str) -> None:
        """MAX_DEPTH + 1 levels are refused at the line and column of the first level too many."""
        nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
        assert problems_of(f"policy: p\nversion: v\nrules: {nested}\n") == (
            f"line 3, column {7 + MAX_DEPTH}: nested more than 64 levels deep; a policy needs a handful",
        )


class TestYamlFeatures:
    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            (
                "policy: &p p\nversion: v\nrules: []\n",
                "line 1, column 9: anchor &p: anchors and aliases are not allowed in a policy",
            ),
            (
                "policy: p\nversion: *v\nrules: []\n",
                "line 2, column 10: alias *v: anchors and aliases are not allowed in a policy; write the value out",
            ),
            (
                "policy: p\nversion: !!binary aGVsbG8=\nrules: []\n",
                "line 2, column 10: the tag tag:yaml.org,2002:binary is not supported in a policy",
            ),
            (
                "policy: p\nversion: v\nrules: !!set {a: null}\n",
                "line 3, column 8: the tag tag:yaml.org,2002:set is not supported in a policy",
            ),
            (
                "policy: !custom p\nversion: v\nrules: []\n",
                "line 1, column 9: the tag !custom is not supported in a policy",
            ),
            (
                "policy: p\nversion: !!int abc\nrules: []\n",
                "line 2, column 10: 'abc' is not an integer",
            ),
            ("policy: p\nversion: 0x_\nrules: []\n", "line 2, column 10: '0x_' is not an integer"),
            (
                "policy: p\nversion: !!bool maybe\nrules: []\n",
                "line 2, column 10: 'maybe' is not a boolean",
            ),
            (
                "policy: p\nversion: v\n[a]: b\nrules: []\n",
                "line 3, column 1: a mapping key must be a plain value, not a list or mapping",
            ),
            (
                "policy: p\nversion: v\nrules: []\n---\npolicy: q\n",
                "line 4, column 1: expected a single document, found a second one ('---')",
            ),
            (
                "policy: p\nversion: v\n<<: {description: d}\nrules: []\n",
                "line 3, column 1: merge keys (<<) are not supported in a policy",
            ),
        ],
        ids=[
            "anchor",
            "alias",
            "binary-tag",
            "set-tag",
            "custom-tag",
            "int-tag-on-text",
            "int-without-digits",
            "bool-tag-on-text",
            "list-as-key",
            "second-document",
            "merge-key",
        ],
    )
    def test_refused_construct(self, text: str, problem: str, parser: str) -> None:
        """Only plain YAML data: no anchors, aliases, exotic tags, complex keys or extra documents."""
        assert any(p.startswith(problem) for p in problems_of(text)), problems_of(text)

    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("null", None),
            ("~", None),
            ("yes", True),
            ("Off", False),
            ("0x1F", 31),
            ("017", 15),
            ("1_000", 1000),
            ("1:30", 90),
            ("-1.5e+3", -1500.0),
            ("'yes'", "yes"),
            ("! 12", 12),
            ("!!str 12", "12"),
            ("!!float 1", 1.0),
            ("2021-08-03", "2021-08-03"),
        ],
        ids=[
            "null",
            "tilde",
            "yes",
            "off",
            "hex",
            "octal",
            "underscores",
            "sexagesimal",
            "float",
            "quoted",
            "non-specific-tag",
            "str-tag",
            "float-tag",
            "timestamp-stays-text",
        ],
    )
    def test_plain_scalars_resolve_as_safe_loader_does(
        self, written: str, expected: object, parser: str
    ) -> None:
        """Values mean what they mean to yaml.safe_load, except that timestamps stay text."""
        document = yamldoc.parse_document(f"value: {written}\n")
        assert document.data == {"value": expected}
        assert isinstance(document.data, dict)
        assert type(document.data["value"]) is type(expected)

    def test_quoted_date_version_is_text(self) -> None:
        """An unquoted date is no longer a datetime, so `version: 2021-08-03` is a valid version."""
        model = load_policy(policy().replace('version: "1"', "version: 2021-08-03"))
        assert model.version == "2021-08-03"


class TestTimestamps:
    @pytest.mark.parametrize(
        "written",
        [
            "2021-08-03",
            "2021-08-03T10:00:00Z",
            "2021-08-03t10:00:00Z",
            "2021-08-03 10:00:00 +07:00",
            "2021-8-3T10:00:00Z",
            "2021-08-03T10:00:00+07",
            "2021-08-03T09:30:00.250999999+07:00",
            "2021-08-03T10:00:00-05:30",
        ],
        ids=[
            "date",
            "utc",
            "lowercase-t",
            "spaces",
            "one-digit-month",
            "hour-offset",
            "long-fraction",
            "negative-offset",
        ],
    )
    def test_parse_instant_agrees_with_pyyaml(self, written: str) -> None:
        """parse_instant gives what PyYAML's timestamp constructor gave for every valid form."""
        reference = yaml.safe_load(f"t: {written}")["t"]
        assert isinstance(reference, date | datetime)
        assert parse_instant(written) == reference

    @pytest.mark.parametrize(
        "written",
        [
            "2021-08-03 10:00:00 +07:00",
            "'2021-08-03 10:00:00 +07:00'",
            "!!timestamp 2021-08-03 10:00:00 +07:00",
        ],
        ids=["unquoted", "quoted", "explicit-tag"],
    )
    def test_quoted_and_unquoted_mean_the_same(self, written: str, parser: str) -> None:
        """The loader leaves times as text, so quoting no longer changes what a time means."""
        text = policy(
            "  - {id: r1, effect: allow, effective_from: " + written + ", when: {site_in: [ID]}}\n"
        )
        assert load_policy(text).rules[0].effective_from_ms == epoch_ms("2021-08-03T03:00:00Z")

    @pytest.mark.parametrize(
        ("written", "reason"),
        [
            ("0000-01-01", "year 0 is out of range"),
            ("2021-02-30", "day is out of range for month"),
            ("2021-13-01", "month must be in 1..12"),
            ("2021-08-03T25:00:00Z", "hour must be in 0..23"),
            ("2021-08-03T10:00:00+24:00", "offset must be a timedelta"),
        ],
        ids=["year-zero", "february-30", "month-13", "hour-25", "offset-24h"],
    )
    def test_impossible_time_is_a_problem_at_its_path(self, written: str, reason: str) -> None:
        """An impossible date is reported at the rule's field with Python's reason."""
        text = policy(
            f"  - {{id: r1, effect: allow, effective_from: {written}, when: {{site_in: [ID]}}}}\n"
        )
        (problem,) = problems_of(text)
        assert problem.startswith(f"rules[0].effective_from: '{written}' is not a date")
        assert reason in problem


class TestNumbers:
    def test_longest_accepted_number(self, parser: str) -> None:
        """MAX_NUMBER_CHARS characters are converted, one more is refused before conversion."""
        fits = policy().replace("IDR: 0.0000625", "IDR: 0." + "0" * 10 + "1".ljust(20, "0"))
        assert load_policy(fits).fx is not None
        too_long = policy().replace("IDR: 0.0000625", "IDR: 0." + "0" * 31)
        assert problems_of(too_long) == (
            "line 5, column 38: a number of 33 characters; at most 32 are accepted",
        )

    @pytest.mark.parametrize(
        ("amount", "shown"),
        [
            ("0.000000000000001", None),
            ("1000000000000000", None),
            ("0.0000000000000001", "1e-16"),
            ("1000000000000001", "1000000000000001"),
        ],
        ids=["smallest", "largest", "below-smallest", "above-largest"],
    )
    def test_amounts_and_rates_have_a_sane_range(self, amount: str, shown: str | None) -> None:
        """1e-15 to 1e15, so thresholds and explanations stay ordinary numbers."""
        text = policy(
            "  - {id: r1, effect: reject, reason: R, when: "
            f"{{price_below: {{amount: {amount}, currency: USD}}}}}}\n"
        )
        if shown is None:
            assert compile_policy(load_policy(text)).rules[0].prices
        else:
            assert problems_of(text) == (
                f"rules[0].when.price_below.amount: must be between 1e-15 and 1e15, got {shown}",
            )


class TestSizeAndEncoding:
    def test_file_of_exactly_the_limit_is_read(self) -> None:
        """MAX_POLICY_BYTES bytes are fine (a valid policy padded with a comment)."""
        head = policy().encode()
        raw = head + b"#" + b"x" * (MAX_POLICY_BYTES - len(head) - 2) + b"\n"
        assert len(raw) == MAX_POLICY_BYTES
        assert load_policy(raw).policy_id == "hostile"

    @pytest.mark.parametrize("kind", [bytes, str], ids=["bytes", "text"])
    def test_one_byte_more_is_refused_before_parsing(self, kind: type) -> None:
        """Over the limit is refused by its length alone: the rest is not even YAML."""
        raw = b"\x00" * (MAX_POLICY_BYTES + 1)
        unit = "bytes" if kind is bytes else "characters"
        source = raw if kind is bytes else raw.decode()
        assert problems_of(source) == (
            f"(file): more than 5,242,880 {unit}; a policy file may have at most 5 MiB",
        )

    def test_utf8_byte_order_mark_is_accepted(self, parser: str) -> None:
        """Editors on Windows write a UTF-8 BOM; YAML allows it."""
        assert load_policy(b"\xef\xbb\xbf" + policy().encode()).policy_id == "hostile"

    def test_non_utf8_byte_names_line_and_offset(self) -> None:
        """The first byte that is not UTF-8 is named by value, line and byte offset."""
        raw = policy().encode().replace(b"reason: CLOSED", b"reason: CLOS\xc9D")
        offset = raw.index(b"\xc9")
        assert problems_of(raw) == (
            f"line 7: not UTF-8: byte 0xc9 at byte offset {offset} (invalid continuation byte); save the file as UTF-8",
        )

    def test_lone_surrogate_in_text_is_refused(self) -> None:
        """Text handed in directly (not read from a file) may not hold surrogates either."""
        assert problems_of(policy().replace("hostile", "host\ud800ile"))[0].startswith(
            "(file): contains a lone surrogate"
        )

    def test_lone_surrogate_escape_names_its_path(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PyYAML's own parser accepts a \\ud800 escape; the loader then names where it is."""
        monkeypatch.setattr(yamldoc, "_LIBYAML", False)
        text = policy('  - {id: r1, effect: allow, when: {seller_in: [a, "b\\udc00"]}}\n')
        assert problems_of(text)[0].startswith(
            "rules[0].when.seller_in[1]: contains a lone surrogate"
        )


class TestProblemCap:
    def test_problems_beyond_the_cap_are_counted(self) -> None:
        """A file with 500 mistakes lists the first MAX_PROBLEMS and counts the rest."""
        rules = "".join(
            f"  - {{id: r{i}, effect: allow, when: {{site_in: [XX]}}}}\n" for i in range(500)
        )
        problems = problems_of(policy(rules))
        assert len(problems) == MAX_PROBLEMS + 1
        assert problems[0].startswith("rules[0].when.site_in: ")
        assert problems[-1] == "... and 400 more problems (only the first 100 are listed)"

    def test_duplicate_keys_are_capped_too(self) -> None:
        """Duplicate keys are problems like any other: listed up to the cap, then counted."""
        text = policy().replace("clusters:\n", "clusters:\n" + "  dup: {category_ids: [a]}\n" * 300)
        problems = problems_of(text)
        assert problems[0] == "line 5: duplicate key 'dup'"
        assert problems[-1] == "... and 199 more problems (only the first 100 are listed)"

    def test_hints_still_given_in_a_small_file(self) -> None:
        """The budget leaves "did you mean" to every mistake of a hand-written file."""
        rules = "".join(
            f"  - {{id: r{i}, effect: allow, when: {{cluster_in: [fashon]}}}}\n" for i in range(50)
        )
        problems = problems_of(policy(rules))
        assert len(problems) == 50
        assert all(
            p.endswith("unknown cluster 'fashon' (did you mean 'fashion'?)") for p in problems
        )


def _clusters(count: int) -> str:
    return "clusters:\n" + "".join(f"  c{i}: {{category_paths: [[C{i}]]}}\n" for i in range(count))


class TestScale:
    """Generated policies near the size limit load in seconds (pytest's runtime is the guard)."""

    def test_many_unknown_cluster_names_against_many_clusters(self) -> None:
        """20,000 clusters x 5,000 unknown names: capped problems, a bounded number of hints."""
        rules = "".join(
            f"- {{id: r{i}, effect: allow, when: {{cluster_in: [nope{i}]}}}}\n"
            for i in range(5_000)
        )
        text = 'policy: big\nversion: "1"\n' + _clusters(20_000) + "rules:\n" + rules
        problems = problems_of(text)
        assert len(problems) == MAX_PROBLEMS + 1
        assert problems[-1] == "... and 4,900 more problems (only the first 100 are listed)"

    def test_fifty_thousand_rules(self) -> None:
        """50,000 rules, half with a price, load and compile."""
        rules = "".join(
            f"- {{id: r{i}, effect: reject, reason: R, when: {{cluster_in: [c{i % 100}], price_below: {{amount: {i + 1}, currency: IDR}}}}}}\n"
            if i % 2
            else f"- {{id: r{i}, effect: allow, when: {{cluster_in: [c{i % 100}]}}}}\n"
            for i in range(50_000)
        )
        text = 'policy: big\nversion: "1"\nfx: {base: USD, rates: {IDR: 0.0000625, JPY: 0.0067}}\n'
        compiled = compile_policy(load_policy(text + _clusters(100) + "rules:\n" + rules))
        assert len(compiled.rules) == 50_000

    def test_hundred_thousand_clusters(self) -> None:
        """100,000 clusters load, compile and index."""
        text = (
            'policy: big\nversion: "1"\n'
            + _clusters(100_000)
            + "rules:\n"
            + RULE.replace("fashion", "c7")
        )
        compiled = compile_policy(load_policy(text))
        assert compiled.taxonomy.cluster_of("x", ("C99999",)) == "c99999"


class TestWarnings:
    def test_empty_rule_list_is_valid_but_warned_about(self) -> None:
        """`rules: []` approves everything: valid, with one warning."""
        model = load_policy(policy(rules="[]\n").replace("rules:\n[]", "rules: []"))
        assert model.rules == ()
        assert policy_warnings(model) == (
            "rules: the policy has no rules, so it approves every listing",
        )

    def test_bundled_policies_have_no_warnings(self) -> None:
        """The shipped examples are warning-free."""
        for name in BUNDLED_POLICIES:
            assert policy_warnings(load_policy(bundled_policy_text(name))) == ()


def _reference_hash(model: PolicyModel) -> str:
    """content_hash as first written, with dataclasses.asdict: the fast path must equal it."""
    import hashlib

    content = dataclasses.asdict(model)
    # issue 15's keys: absent from the hash when unused, so older files keep their versions
    if not content["conditions"]:
        del content["conditions"]
    # issue 15's dated lists and fx tables, absent when unused; list file paths never hashed
    for key in ("lists", "fx_tables", "source_files"):
        assert not content.pop(key), "the reference covers files without lists or fx tables"
    # issue 16: default_language only when named; languages is derived from the rules
    del content["languages"]
    if content["default_language"] is None:
        del content["default_language"]
    for rule in content["rules"]:
        for key in ("unless", "exempts"):
            if rule[key] is None or rule[key] == ("*",):
                del rule[key]
        # issue 16: a message map hashes as a mapping, so its key order means nothing
        if rule["messages"]:
            rule["messages"] = dict(rule["messages"])
        else:
            del rule["messages"]
        for key in ("all_of", "any_of", "not_", "condition", "lists"):
            assert rule["when"].pop(key) is None, "the reference covers leaf blocks only"
        # issue 16's title_contains_any: absent when unused, so older files keep their versions
        assert rule["when"].pop("title_contains_any") is None
    if content["fx"] is not None:
        content["fx"]["rates"] = dict(content["fx"]["rates"])
    for rule in content["rules"]:
        if rule["when"]["attribute_equals"] is not None:
            rule["when"]["attribute_equals"] = dict(rule["when"]["attribute_equals"])
    canonical = json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda value: format(value.normalize(), "f"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class TestCompileFastPaths:
    def _models(self) -> list[PolicyModel]:
        from tests.unit.policy.test_properties import KITCHEN_SINK

        return [
            load_policy(KITCHEN_SINK),
            *(load_policy(bundled_policy_text(n)) for n in BUNDLED_POLICIES),
        ]

    def test_content_hash_equals_the_asdict_reference(self) -> None:
        """The hand-written canonical form hashes exactly as dataclasses.asdict did."""
        for model in self._models():
            assert content_hash(model) == _reference_hash(model)

    def test_thresholds_equal_the_fraction_reference(self) -> None:
        """Integer thresholds equal ceil(limit x 10**exponent / rate) in exact fractions."""
        for model in self._models():
            compiled = compile_policy(model)
            rates: dict[str, Fraction] = {}
            if model.fx is not None:
                rates = {code: Fraction(rate) for code, rate in model.fx.rates}
                rates[model.fx.base] = Fraction(1)
            for rule, compiled_rule in zip(model.rules, compiled.rules, strict=True):
                for check in compiled_rule.prices:
                    money = getattr(rule.when, check.key)
                    limit = Fraction(money.amount) * rates[money.currency]
                    expected: dict[str, Any] = {
                        code: math.ceil(limit * 10 ** minor_exponent(code) / rate)
                        for code, rate in rates.items()
                    }
                    assert dict(check.thresholds) == expected
