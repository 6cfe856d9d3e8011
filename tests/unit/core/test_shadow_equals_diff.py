"""Shadow disagreements and `diff --format json` count the same changes, by rule, on the same listings.

The shadow side is the live pipeline (Decider with a shadow policy, the shadow topic's
changes-only filter, tally); the diff side is the command line, run in-process.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.cli.main import main
from consumer.codec import AvroCodec, listing_to_json
from consumer.core.pipeline import Decided, Decider, tally
from consumer.core.records import RawRecord
from consumer.core.sample import SampleSpec, generate
from consumer.policy import (
    CompiledPolicy,
    bundled_policy_text,
    compile_policy,
    evaluate,
    load_policy,
)

CODEC = AvroCodec()
NOW_MS = 1_700_000_000_000
#: From 2022 on, an hour apart: about 40% cross-border, all after the 2021 closure.
LISTINGS = list(
    itertools.islice(
        generate(5, SampleSpec(base_time_ms=1_650_000_000_000, step_ms=3_600_000)), 800
    )
)
MIN_PRICE = {
    "id": "min-price",
    "effect": "reject",
    "reason": "CROSS_BORDER_BELOW_MIN_PRICE",
    "message": "Cross-border listings must cost at least USD 100",
    "when": {"cross_border": True, "price_below": {"amount": 100, "currency": "USD"}},
}
FX = {
    "base": "USD",
    "rates": {
        "USD": 1,
        "IDR": 0.0000647,
        "CNY": 0.137,
        "MYR": 0.213,
        "SGD": 0.732,
        "KRW": 0.000741,
    },
}


def live_policy() -> dict[str, Any]:
    """The bundled policy plus a minimum price, so a cheap imported dress matches two rules."""
    doc: dict[str, Any] = yaml.safe_load(bundled_policy_text())
    doc["fx"] = copy.deepcopy(FX)
    doc["rules"].append(copy.deepcopy(MIN_PRICE))
    return doc


def reordered(doc: dict[str, Any]) -> None:
    doc["rules"].reverse()


def reworded(doc: dict[str, Any]) -> None:
    for rule in doc["rules"]:
        rule["message"] = f"{rule['message']} (reworded)"


def really_changed(doc: dict[str, Any]) -> None:
    """Crafts reopened, culinary's rule renamed, cross-border electronics closed."""
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "akar-crafts"]
    culinary = next(r for r in doc["rules"] if r["id"] == "akar-culinary")
    culinary["id"] = "akar-culinary-v2"
    doc["clusters"]["electronics"] = {"category_paths": [["Electronics"]], "category_ids": []}
    electronics = {**copy.deepcopy(doc["rules"][0]), "id": "akar-electronics"}
    electronics["when"] = {"cross_border": True, "cluster_in": ["electronics"]}
    doc["rules"].append(electronics)


def write(path: Path, doc: dict[str, Any]) -> CompiledPolicy:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return compile_policy(load_policy(path.read_text(), str(path)))


def shadow_side(live: CompiledPolicy, candidate: CompiledPolicy) -> dict[str, Any]:
    """What the worker would count and produce with `candidate` in shadow, changes only."""
    records = [
        RawRecord("in", 0, offset, None, None, CODEC.encode_listing(listing), ())
        for offset, listing in enumerate(LISTINGS)
    ]
    results = Decider(CODEC, live, shadow=candidate, shadow_output="changes").decide(
        records, NOW_MS
    )
    decided = [r for r in results if isinstance(r, Decided)]
    assert len(decided) == len(LISTINGS)
    by_rule: Counter[str] = Counter()
    for (_live, _shadow, rule), n in tally(decided).disagreements.items():
        by_rule[rule] += n
    transitions = Counter(
        f"{r.verdict.outcome}->{r.shadow.verdict.outcome}"
        for r in decided
        if r.shadow is not None and r.shadow.value is not None  # on the shadow topic
    )
    return {
        "changed": sum(transitions.values()),
        "transitions": transitions,
        "by_rule": dict(by_rule),
    }


def diff_side(
    live: Path, candidate: Path, listings: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """`import-closure diff --format json`, in-process."""
    args = ["diff", "--policy", str(live), "--candidate", str(candidate), "--format", "json"]
    assert main([*args, str(listings)]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


class TestShadowEqualsDiff:
    @pytest.mark.parametrize(
        ("change", "changes_something"),
        [(reordered, False), (reworded, False), (really_changed, True)],
        ids=["reordered-rules", "reworded-messages", "closed-reopened-and-renamed"],
    )
    def test_shadow_disagreements_by_rule_equal_diffs_changed_by_rule(
        self,
        change: Callable[[dict[str, Any]], None],
        changes_something: bool,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """On the same listings: diff's `changed` is what the changes-only shadow topic gets,
        its `by_rule` what the shadow disagreement metric counts by rule_id, and its transitions
        the shadow topic's; a candidate that only reorders or rewords changes nothing in either."""
        listings = tmp_path / "listings.jsonl"
        listings.write_text("".join(json.dumps(listing_to_json(x)) + "\n" for x in LISTINGS))
        doc = live_policy()
        candidate_doc = copy.deepcopy(doc)
        change(candidate_doc)
        candidate_doc["version"] = "2026.12"
        live = write(tmp_path / "live.yaml", doc)
        candidate = write(tmp_path / "candidate.yaml", candidate_doc)

        shadow = shadow_side(live, candidate)
        report = diff_side(tmp_path / "live.yaml", tmp_path / "candidate.yaml", listings, capsys)

        assert report["listings"] == len(LISTINGS)
        assert report["changed"] == shadow["changed"]
        assert report["by_rule"] == shadow["by_rule"]
        assert {t: n for t, n in report["transitions"].items() if n} == shadow["transitions"]
        assert bool(report["changed"]) is changes_something

    def test_the_listings_exercise_every_case(self) -> None:
        """What the test above relies on: some listings match two rules (so a reorder reorders
        their reasons), and the real change has a listing under each rule it touches."""
        live = compile_policy(load_policy(yaml.safe_dump(live_policy())))
        changed_doc = live_policy()
        really_changed(changed_doc)
        candidate = compile_policy(load_policy(yaml.safe_dump(changed_doc)))
        assert any(len(evaluate(x, live).reasons) > 1 for x in LISTINGS)
        rules = Counter(r.rule_id for x in LISTINGS for r in evaluate(x, live).reasons)
        rules.update(r.rule_id for x in LISTINGS for r in evaluate(x, candidate).reasons)
        touched = {"akar-crafts", "akar-culinary", "akar-culinary-v2", "akar-electronics"}
        assert touched <= rules.keys()
