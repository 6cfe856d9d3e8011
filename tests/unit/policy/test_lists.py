"""Named dated lists: `lists:` versions chosen by time, `{list: NAME}` in any `*_in` key, list files."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.errors import PolicyError
from consumer.policy import (
    CompiledPolicy,
    compile_policy,
    evaluate,
    explain,
    load_policy,
    summarize,
)
from consumer.policy.blocks import EntrySets
from consumer.policy.evaluate import scan, verdict_of
from consumer.policy.lists import MAX_LIST_FILE_BYTES, parse_list_file
from consumer.service.policy_watch import ListFiles, load_policy_file
from tests.unit.listings import epoch_ms, make_listing
from tests.unit.policy.test_evaluate import HEADER

#: A positive list of HS codes reviewed every six months: one version per half year, the second
#: open-ended. Plain dates are 00:00 in Asia/Jakarta (UTC+7).
POSITIVE = [
    {"effective_from": "2023-01-01", "effective_until": "2023-07-01", "entries": ["4901"]},
    {"effective_from": "2023-07-01", "entries": ["4902", "852349"]},
]
#: In the first version only (4901), in the second only (4902), in neither.
BOOK, NEWSPAPER, SHOE = "4901.99.00", "4902.10", "6403.99"


def policy_text(
    rules: list[dict[str, Any]],
    lists: dict[str, Any] | None = None,
    conditions: dict[str, Any] | None = None,
) -> str:
    body: dict[str, Any] = {"lists": {"positive": POSITIVE} if lists is None else lists}
    if conditions is not None:
        body["conditions"] = conditions
    return HEADER + yaml.safe_dump({**body, "rules": rules})


def compiled(rules: list[dict[str, Any]], **kwargs: Any) -> CompiledPolicy:
    return compile_policy(load_policy(policy_text(rules, **kwargs)))


def rule(when: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": "r", "effect": "reject", "reason": "R", "when": when, **more}


def problems(text: str, read_file: Any = None) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(text, "p.yaml", read_file)
    return list(info.value.problems)


IN_LIST = {"hs_code_prefix_in": {"list": "positive"}}


class TestVersionInForce:
    @pytest.mark.parametrize(
        ("hs_code", "at", "matched"),
        [
            (BOOK, "2023-03-01T00:00:00Z", True),
            (BOOK, "2023-08-01T00:00:00Z", False),
            (NEWSPAPER, "2023-03-01T00:00:00Z", False),
            (NEWSPAPER, "2023-08-01T00:00:00Z", True),
            ("8523.49.10", "2030-01-01T00:00:00Z", True),
            (SHOE, "2023-08-01T00:00:00Z", False),
            (BOOK, "2022-12-31T16:59:59.999Z", False),
            (BOOK, "2022-12-31T17:00:00Z", True),
            (NEWSPAPER, "2023-06-30T16:59:59.999Z", False),
            (NEWSPAPER, "2023-06-30T17:00:00Z", True),
        ],
        ids=[
            "first-version-holds-its-entry",
            "first-entry-gone-in-second",
            "second-entry-not-yet",
            "second-version-holds-its-entry",
            "open-ended-version-lasts",
            "in-neither",
            "before-first-version-nothing",
            "first-version-begins-at-midnight-jakarta",
            "until-is-exclusive",
            "next-begins-at-midnight-jakarta",
        ],
    )
    def test_event_time_chooses_the_version(self, hs_code: str, at: str, matched: bool) -> None:
        """The version in force at the listing's event_time, in the policy's zone, is used."""
        policy = compiled([rule(IN_LIST)])
        verdict = evaluate(make_listing(hs_code=hs_code, event_time_ms=epoch_ms(at)), policy)
        assert verdict.outcome == ("REJECTED" if matched else "APPROVED")

    @pytest.mark.parametrize(
        ("as_of", "outcome"),
        [("2023-03-01T00:00:00Z", "REJECTED"), ("2023-08-01T00:00:00Z", "APPROVED")],
        ids=["as-of-first-version", "as-of-second-version"],
    )
    def test_as_of_chooses_the_version(self, as_of: str, outcome: str) -> None:
        """With as_of, the version in force then is used, whatever the event_time."""
        listing = make_listing(hs_code=BOOK, event_time_ms=epoch_ms("2023-08-01T00:00:00Z"))
        assert evaluate(listing, compiled([rule(IN_LIST)]), epoch_ms(as_of)).outcome == outcome

    @pytest.mark.parametrize(
        ("key", "outcome"),
        [("hs_code_prefix_in", "APPROVED"), ("hs_code_prefix_not_in", "REJECTED")],
        ids=["in-fails", "not-in-holds"],
    )
    def test_no_version_in_force_is_an_empty_list(self, key: str, outcome: str) -> None:
        """Before a list's first version, `_in` fails and `_not_in` holds, as for no hs_code."""
        listing = make_listing(hs_code=BOOK, event_time_ms=epoch_ms("2020-01-01T00:00:00Z"))
        policy = compiled([rule({key: {"list": "positive"}})])
        assert evaluate(listing, policy).outcome == outcome

    @pytest.mark.parametrize(
        ("when", "conditions"),
        [
            ({"any": [{"cluster_in": ["electronics"]}, IN_LIST]}, None),
            ({"not": {"hs_code_prefix_not_in": {"list": "positive"}}}, None),
            ({"condition": "positive"}, {"positive": IN_LIST}),
            ({"all": [{"condition": "positive"}]}, {"positive": {"all": [IN_LIST]}}),
        ],
        ids=["inside-any", "inside-not", "in-a-named-condition", "named-inside-all"],
    )
    def test_a_list_works_in_every_block(
        self, when: dict[str, Any], conditions: dict[str, Any] | None
    ) -> None:
        """`{list: NAME}` means the same in all/any/not blocks and named conditions."""
        policy = compiled([rule(when)], conditions=conditions)
        for at, outcome in (
            ("2023-03-01T00:00:00Z", "REJECTED"),
            ("2023-08-01T00:00:00Z", "APPROVED"),
        ):
            listing = make_listing(hs_code=BOOK, event_time_ms=epoch_ms(at))
            assert evaluate(listing, policy).outcome == outcome

    @pytest.mark.parametrize(
        ("key", "entries", "overrides"),
        [
            ("seller_in", ["seller-cn-1"], {}),
            ("seller_not_in", ["someone-else"], {}),
            ("site_in", ["ID"], {}),
            ("seller_country_in", ["CN"], {}),
            ("ship_from_in", ["CN"], {}),
            ("brand_in", ["ACME"], {"brand": "acme"}),
            ("cluster_in", ["fashion"], {}),
            ("cluster_not_in", ["electronics"], {}),
        ],
        ids=lambda value: value if isinstance(value, str) else None,
    )
    def test_every_in_key_takes_a_list(
        self, key: str, entries: list[str], overrides: dict[str, Any]
    ) -> None:
        """Each `*_in` / `*_not_in` key reads a list's entries as it reads an inline list."""
        lists = {"named": [{"effective_from": "2020-01-01", "entries": entries}]}
        policy = compiled([rule({key: {"list": "named"}})], lists=lists)
        assert evaluate(make_listing(**overrides), policy).outcome == "REJECTED"

    def test_a_long_prefix_list_matches_as_a_short_one(self) -> None:
        """Past 32 prefixes the check is a set lookup per length; it decides as startswith does."""
        entries = [f"{n:04d}" for n in range(1000, 1100)] + ["85", "4901"]
        lists = {"long": [{"effective_from": "2020-01-01", "entries": entries}]}
        policy = compiled([rule({"hs_code_prefix_in": {"list": "long"}})], lists=lists)
        for code, outcome in (
            ("4901.99", "REJECTED"),
            ("8517", "REJECTED"),
            ("1050.10", "REJECTED"),
            ("49", "APPROVED"),
            ("4902", "APPROVED"),
            ("8", "APPROVED"),
        ):
            listing = make_listing(hs_code=code)
            assert evaluate(listing, policy).outcome == outcome, code


class TestVerdictKey:
    def test_the_key_says_which_version_decided(self) -> None:
        """The same listing either side of a version change scans to different keys, and each
        key's verdict is evaluate's, so a verdict cache keyed by scan() stays correct."""
        policy = compiled([rule(IN_LIST)])
        before = make_listing(hs_code=BOOK, event_time_ms=epoch_ms("2023-03-01T00:00:00Z"))
        after = make_listing(hs_code=BOOK, event_time_ms=epoch_ms("2023-08-01T00:00:00Z"))
        keys = [scan(before, policy), scan(after, policy)]
        assert keys[0] != keys[1]
        assert [verdict_of(k, policy) for k in keys] == [
            evaluate(before, policy),
            evaluate(after, policy),
        ]

    def test_a_rule_without_lists_is_compiled_once(self) -> None:
        """Periods share the compiled rules that use no list, so cost follows the lists' use."""
        policy = compiled([rule({"cross_border": True}, id="plain"), rule(IN_LIST)])
        assert len(policy.periods) == 3  # before, first version, second version
        assert len({id(p.rules[0]) for p in policy.periods}) == 1
        assert len({id(p.rules[1]) for p in policy.periods}) == 3


class TestCompileCost:
    def test_a_list_version_is_built_once_for_every_period(self) -> None:
        """A rule using a list and a price is compiled per fx table, but the list's set is the
        same object in each: 100 weekly tables do not build a 100,000-entry set 100 times."""
        entries = tuple(f"{n:08d}" for n in range(10_000_000, 10_001_000))
        sets = EntrySets()
        first = sets.get(entries, frozenset)
        assert sets.get(entries, frozenset) is first
        assert sets.get(tuple(entries), frozenset) is first  # tuple() of a tuple is the tuple
        assert sets.get((*entries, "x"), frozenset) is not first

    def test_too_many_dated_versions_is_one_problem(self) -> None:
        """More than 2,000 list versions and fx tables in all are refused with one problem."""
        versions = [
            {"effective_from": f"{2000 + n // 12:04d}-{n % 12 + 1:02d}-01", "entries": ["4901"]}
            for n in range(2_001)
        ]
        for n, version in enumerate(versions[:-1]):
            version["effective_until"] = versions[n + 1]["effective_from"]
        found = problems(policy_text([rule(IN_LIST)], lists={"positive": versions}))
        assert found == ["lists: more than 2,000 list versions and fx tables in all"]


class TestListFiles:
    def test_a_file_is_read_relative_to_the_policy(self, tmp_path: Path) -> None:
        """One entry per line; `#` comments, blank lines and surrounding spaces ignored."""
        (tmp_path / "lists").mkdir()
        (tmp_path / "lists" / "positive.txt").write_text(
            "# Kepmendag 1998/2023 (illustrative)\n4901  # books\n\n  4902\n"
        )
        lists = {"positive": [{"effective_from": "2023-01-01", "file": "lists/positive.txt"}]}
        (tmp_path / "p.yaml").write_text(policy_text([rule(IN_LIST)], lists=lists))
        policy = load_policy_file(tmp_path / "p.yaml")
        assert isinstance(policy, CompiledPolicy)
        assert policy.model.lists[0][1][0].entries == ("4901", "4902")
        assert policy.model.source_files == ("lists/positive.txt",)
        listing = make_listing(hs_code=NEWSPAPER, event_time_ms=epoch_ms("2023-08-01T00:00:00Z"))
        assert evaluate(listing, policy).outcome == "REJECTED"

    def test_100000_entries_load_quickly(self, tmp_path: Path) -> None:
        """A 100,000-entry list file loads and compiles in well under a second (5 s bound here,
        for slow shared machines; the time is printed)."""
        (tmp_path / "big.txt").write_text(
            "".join(f"{n:08d}\n" for n in range(10_000_000, 10_100_000))
        )
        lists = {"positive": [{"effective_from": "2023-01-01", "file": "big.txt"}]}
        (tmp_path / "p.yaml").write_text(policy_text([rule(IN_LIST)], lists=lists))
        started = time.perf_counter()
        policy = load_policy_file(tmp_path / "p.yaml")
        elapsed = time.perf_counter() - started
        print(f"100,000-entry list file: loaded and compiled in {elapsed * 1000:.0f} ms")
        assert elapsed < 5
        assert isinstance(policy, CompiledPolicy)
        listing = make_listing(hs_code="10099999.1", event_time_ms=epoch_ms("2023-08-01T00:00:00Z"))
        assert evaluate(listing, policy).outcome == "REJECTED"

    def test_the_reader_reads_no_more_than_the_limit(self, tmp_path: Path) -> None:
        """A huge list file costs one byte past the limit to refuse, not its whole size."""
        (tmp_path / "huge.txt").write_bytes(b"1234\n" * (MAX_LIST_FILE_BYTES // 5 + 1000))
        read = ListFiles(tmp_path / "p.yaml")("huge.txt")
        assert len(read) == MAX_LIST_FILE_BYTES + 1

    @pytest.mark.parametrize(
        ("raw", "problem"),
        [
            (b"4901\n" * (MAX_LIST_FILE_BYTES // 5 + 1), "larger than 10,485,760 bytes"),
            (b"4901\n4902\n49\xff03\n", "not UTF-8: byte 0xff on line 3"),
        ],
        ids=["over-10-mib", "invalid-utf8-names-its-line"],
    )
    def test_a_hostile_file_is_one_problem(self, raw: bytes, problem: str) -> None:
        """Too large or not UTF-8: one problem, no entries."""
        entries, found = parse_list_file(raw)
        assert entries == ()
        assert found is not None
        assert problem in found


def _file_lists(file: str) -> dict[str, Any]:
    return {"positive": [{"effective_from": "2023-01-01", "file": file}]}


class TestValidation:
    @pytest.mark.parametrize(
        ("lists", "rules", "files", "expected"),
        [
            (
                None,
                [
                    rule(
                        {
                            "any": [
                                {"cross_border": True},
                                {"hs_code_prefix_in": {"list": "postive"}},
                            ]
                        }
                    )
                ],
                {},
                "rules[0].when.any[1].hs_code_prefix_in.list: unknown list 'postive' "
                "(did you mean 'positive'?)",
            ),
            (
                _file_lists("x.txt"),
                [rule(IN_LIST)],
                {},
                "lists.positive[0].file: cannot read 'x.txt': No such file or directory",
            ),
            (
                _file_lists("big.txt"),
                [rule(IN_LIST)],
                {"big.txt": b"1" * (MAX_LIST_FILE_BYTES + 1)},
                "lists.positive[0].file: 'big.txt': larger than 10,485,760 bytes",
            ),
            (
                _file_lists("bad.txt"),
                [rule(IN_LIST)],
                {"bad.txt": b"4901\n\xc3\x28\n"},
                "lists.positive[0].file: 'bad.txt': not UTF-8: byte 0xc3 on line 2",
            ),
            (
                _file_lists("empty.txt"),
                [rule(IN_LIST)],
                {"empty.txt": b"# nothing yet\n\n"},
                "lists.positive[0].file: 'empty.txt' has no entries",
            ),
            (
                {
                    "positive": [
                        {"effective_from": "2023-01-01", "entries": ["4901"]},
                        {"effective_from": "2023-06-01", "entries": ["4902"]},
                    ]
                },
                [rule(IN_LIST)],
                {},
                "lists.positive[1]: overlaps lists.positive[0]",
            ),
            (
                {
                    "positive": [
                        {"effective_from": "2023-07-01", "entries": ["4902"]},
                        {
                            "effective_from": "2023-01-01",
                            "effective_until": "2023-07-02",
                            "entries": ["4901"],
                        },
                    ]
                },
                [rule(IN_LIST)],
                {},
                "lists.positive[0]: overlaps lists.positive[1]",
            ),
            (
                {"": [{"effective_from": "2023-01-01", "entries": ["4901"]}]},
                [rule({"cross_border": True})],
                {},
                "lists.: expected a non-empty string",
            ),
            (
                {"positive": [{"effective_from": "2023-01-01", "entries": ["4901"], "file": "x"}]},
                [rule(IN_LIST)],
                {},
                "lists.positive[0]: needs exactly one of entries or file",
            ),
            (
                {"positive": [{"entries": ["4901"]}]},
                [rule(IN_LIST)],
                {},
                "lists.positive[0].effective_from: missing required key",
            ),
            (
                {"positive": []},
                [rule({"cross_border": True})],
                {},
                "lists.positive: expected a non-empty list of versions, got an empty list",
            ),
            (
                {"positive": [{"effective_from": "2023-01-01", "entries": ["49x"]}]},
                [rule(IN_LIST)],
                {},
                "rules[0].when.hs_code_prefix_in.list: lists.positive[0]: "
                "HS code prefix '49x' must be 2 to 10 digits",
            ),
            (
                {"named": [{"effective_from": "2023-01-01", "entries": ["fashon"]}]},
                [rule({"cluster_in": {"list": "named"}})],
                {},
                "rules[0].when.cluster_in.list: lists.named[0]: unknown cluster 'fashon'",
            ),
            (
                None,
                [rule({"hs_code_prefix_in": {"name": "positive"}})],
                {},
                "rules[0].when.hs_code_prefix_in.name: unknown key",
            ),
        ],
        ids=[
            "unknown-list-names-its-path",
            "missing-file",
            "file-over-10-mib",
            "invalid-utf8",
            "file-without-entries",
            "overlapping-versions",
            "overlap-found-whatever-the-order",
            "empty-list-name",
            "entries-and-file",
            "no-effective-from",
            "no-versions",
            "bad-entry-for-its-key",
            "unknown-cluster-in-a-list",
            "list-ref-with-another-key",
        ],
    )
    def test_problem_names_its_path(
        self,
        lists: dict[str, Any] | None,
        rules: list[dict[str, Any]],
        files: dict[str, bytes],
        expected: str,
    ) -> None:
        """Every problem with a list says where it is, and what is wrong."""

        def read(name: str) -> bytes:
            if name not in files:
                raise FileNotFoundError(2, "No such file or directory", name)
            return files[name]

        found = problems(policy_text(rules, lists=lists), read)
        assert any(p.startswith(expected) for p in found), found

    def test_a_file_needs_a_policy_file(self) -> None:
        """Policy text given without a reader (a test, a bundled policy) cannot name list files."""
        found = problems(policy_text([rule(IN_LIST)], lists=_file_lists("x.txt")))
        assert found == [
            "lists.positive[0].file: cannot read 'x.txt': "
            "list files are read only when the policy is a file"
        ]


class TestVersionHash:
    def _version(self, tmp_path: Path, content: str, name: str = "positive.txt") -> str:
        (tmp_path / name).write_text(content)
        (tmp_path / "p.yaml").write_text(policy_text([rule(IN_LIST)], lists=_file_lists(name)))
        return load_policy_file(tmp_path / "p.yaml").version

    def test_editing_a_list_file_changes_the_version(self, tmp_path: Path) -> None:
        """The entries are hashed into the policy version, so decisions name the list they used."""
        assert self._version(tmp_path, "4901\n") != self._version(tmp_path, "4901\n4902\n")

    @pytest.mark.parametrize(
        ("first", "second"),
        [("4901\n", "# reviewed 2023-07\n4901   # books\n\n"), ("4901\n", "4901\n")],
        ids=["comments-and-layout", "same-content"],
    )
    def test_layout_and_file_name_do_not(self, tmp_path: Path, first: str, second: str) -> None:
        """Comments, blank lines and the file's name do not change the version; entries do."""
        assert self._version(tmp_path, first, "a.txt") == self._version(tmp_path, second, "b.txt")

    def test_inline_entries_and_a_file_hash_alike(self, tmp_path: Path) -> None:
        """Moving a list's entries into a file does not change what the policy says."""
        inline = compiled(
            [rule(IN_LIST)],
            lists={"positive": [{"effective_from": "2023-01-01", "entries": ["4901"]}]},
        )
        assert self._version(tmp_path, "4901\n") == inline.version


class TestExplain:
    def test_explain_names_the_list_not_its_entries(self) -> None:
        """`check --explain` shows which list a condition reads and how many entries are in force."""
        listing = make_listing(hs_code=BOOK, event_time_ms=epoch_ms("2023-03-01T00:00:00Z"))
        text = explain(listing, compiled([rule(IN_LIST)]))
        assert re.search(
            r"hs_code_prefix_in \{list: positive\} \(1 entry in force\): held", text
        ), text

    def test_summary_lists_each_version(self) -> None:
        """`validate-policy` shows every list version's window and entry count."""
        text = summarize(compiled([rule(IN_LIST)]))
        assert "lists (1):\n  positive:\n" in text
        assert "2023-01-01T00:00+07:00 .. 2023-07-01T00:00+07:00: 1 entry" in text
        assert "2023-07-01T00:00+07:00 .. open: 2 entries" in text
        assert "when hs_code_prefix_in {list: positive}" in text
