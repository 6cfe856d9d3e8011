"""Every policy file written before issue 15 means exactly what it meant.

The bundled files as they were then are kept in fixtures/old_policies/ (issue 16 rewrote the
bundled messages in Indonesian and English, which changes their versions on purpose).

fixtures/old_decisions.json holds what the evaluator before condition blocks, exemptions and review
decided for 3,000 seeded listings (tests/unit/policy/generated.py); the same files must decide
the same now, keep their versions (so decision ids do not move), and old-style files rewritten with
the new keys must decide like the originals.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from functools import cache
from typing import Any

import pytest
import yaml

from consumer.core.records import Listing, Verdict
from consumer.policy import bundled_policy_text, compile_policy, evaluate, load_policy
from tests.unit.policy.generated import (
    FIXTURE,
    OLD_BUNDLED,
    digest,
    listings,
    old_bundled_text,
    policy_texts,
    shown,
)

#: Versions before issue 15; a content hash that moved would change every decision id.
VERSIONS = {
    "id-akar-import-closure": "2021.08+2c0c7158",
    "permendag-31-2023": "2023.09+30468dd5",
    "kitchen-sink": "0+0e0b9adf",
}


@cache
def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


@cache
def _listings() -> list[Listing]:
    return listings()


def _rewritten(text: str, rewrite: str) -> str:
    """The same policy in the new syntax: `explicit` writes exempts: ["*"] on every allow rule,
    `grouped` wraps each `when` in `all: [...]` under a named condition, `scoped` turns each
    allow rule into the `unless` of every reject rule (what the old allow meant, rule by rule)."""
    data = yaml.safe_load(text)
    rules = data["rules"]
    if rewrite == "explicit":
        for rule in rules:
            if rule["effect"] == "allow":
                rule["exempts"] = ["*"]
    elif rewrite == "grouped":
        data["conditions"] = {f"c-{r['id']}": {"all": [r["when"]]} for r in rules}
        for rule in rules:
            rule["when"] = {"condition": f"c-{rule['id']}"}
    elif rewrite == "scoped":
        allows = [r for r in rules if r["effect"] == "allow"]
        if allows and not all(_open_window(r) for r in allows):
            pytest.skip("an allow rule with a window is not a plain unless")
        rules[:] = [r for r in rules if r["effect"] != "allow"]
        if allows:
            for rule in rules:
                rule["unless"] = {"any": [copy.deepcopy(a["when"]) for a in allows]}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _open_window(rule: dict[str, Any]) -> bool:
    return "effective_until" not in rule


def _decision(verdict: Verdict) -> Verdict:
    """What the old evaluator decided: the scoped rewrite has no allow rules left to match."""
    return replace(verdict, matched_rules=(), exemptions=())


class TestOldFiles:
    def test_generator_is_the_one_the_fixture_was_made_with(self) -> None:
        """The seeded listings are the same list the fixture was computed from."""
        assert _fixture()["digest"] == digest(_listings())

    @pytest.mark.parametrize("name", sorted(VERSIONS), ids=sorted(VERSIONS))
    def test_decisions_are_unchanged(self, name: str) -> None:
        """Every listing gets the outcome, reasons, matched rules and cluster it got before."""
        fixture = _fixture()
        compiled = compile_policy(load_policy(policy_texts()[name]))
        lines = fixture["lines"]
        got = [shown(evaluate(listing, compiled)) for listing in _listings()]
        assert got == [lines[i] for i in fixture[name]]

    @pytest.mark.parametrize("name", sorted(VERSIONS), ids=sorted(VERSIONS))
    def test_versions_are_unchanged(self, name: str) -> None:
        """The content hash ignores keys a file does not use, and exempts: ["*"]."""
        assert compile_policy(load_policy(policy_texts()[name])).version == VERSIONS[name]

    @pytest.mark.parametrize("name", OLD_BUNDLED, ids=OLD_BUNDLED)
    def test_bundled_files_in_two_languages_decide_like_before(self, name: str) -> None:
        """Issue 16 gave the bundled files Indonesian messages (the default) with the old English
        as translation: every listing gets the old outcome, codes, rules and cluster, `message`
        is the Indonesian text and message_in("en") the old message."""
        old = compile_policy(load_policy(old_bundled_text(name)))
        new = compile_policy(load_policy(bundled_policy_text(name)))
        for listing in _listings():
            before, after = evaluate(listing, old), evaluate(listing, new)
            assert replace(after, reasons=()) == replace(before, reasons=()), listing
            assert [(r.code, r.rule_id) for r in after.reasons] == [
                (r.code, r.rule_id) for r in before.reasons
            ]
            for was, now in zip(before.reasons, after.reasons, strict=True):
                assert now.message_in("en") == was.message
                assert now.message == dict(now.messages)["id"] != was.message

    @pytest.mark.parametrize(
        ("name", "rewrite"),
        [(n, r) for n in sorted(VERSIONS) for r in ("explicit", "grouped", "scoped")],
        ids=[f"{n}-{r}" for n in sorted(VERSIONS) for r in ("explicit", "grouped", "scoped")],
    )
    def test_new_syntax_decides_like_the_old(self, name: str, rewrite: str) -> None:
        """An old file rewritten with exempts/all/condition/unless decides every listing alike."""
        text = policy_texts()[name]
        old = compile_policy(load_policy(text))
        new = compile_policy(load_policy(_rewritten(text, rewrite)))
        for listing in _listings():
            before, after = evaluate(listing, old), evaluate(listing, new)
            if rewrite == "scoped":
                before, after = _decision(before), _decision(after)
            assert after == before, listing
