"""Policy sets: layers evaluated on their own and combined, validation of the set and its layers,
the set's version, and the two bundled policies enforced together as layers."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.core.records import Exemption, Price, Reason, Verdict
from consumer.errors import ConfigError, PolicyError
from consumer.policy import compile_policy, evaluate, load_policy
from consumer.policy.evaluate import scan
from consumer.policy.sets import (
    MAX_LAYERS,
    CompiledSet,
    Unreadable,
    combine,
    is_policy_set,
    load_set,
    parse_set,
)
from consumer.service.policy_watch import load_policy_file
from tests.unit.listings import epoch_ms, make_listing
from tests.unit.policy.test_evaluate import HEADER, allow, reject

POLICIES = Path(__file__).resolve().parents[3] / "consumer" / "data" / "policies"
AKAR = "id-akar-import-closure.yaml"
PERMENDAG = "permendag-31-2023.yaml"
#: The marketplace's closures, then the regulation: the example set of the issue.
INDONESIA_SET = f"""\
policy_set: indonesia-cross-border
version: "2023.09"
description: AKAR closures and Permendag 31/2023, enforced together
layers:
  - path: {AKAR}
  - path: {PERMENDAG}
"""
#: A day after Permendag 31/2023 began (and two years into the AKAR closure).
AFTER_BOTH = epoch_ms("2023-09-27T03:00:00Z")


def write_indonesia_set(folder: Path) -> Path:
    """The two bundled files copied beside a set file naming them; returns the set file."""
    for name in (AKAR, PERMENDAG):
        shutil.copy(POLICIES / name, folder / name)
    path = folder / "indonesia.yaml"
    path.write_text(INDONESIA_SET)
    return path


def policy_text(policy_id: str, rules: list[dict[str, Any]], version: str = "1") -> str:
    header = HEADER.replace("policy: test-policy", f"policy: {policy_id}")
    return header.replace('version: "1"', f'version: "{version}"') + yaml.safe_dump(
        {"rules": rules}
    )


def set_text(*paths: str, set_id: str = "s", version: str = "7") -> str:
    return yaml.safe_dump(
        {"policy_set": set_id, "version": version, "layers": [{"path": p} for p in paths]}
    )


def layered(*layers: list[dict[str, Any]]) -> CompiledSet:
    """A set of small test policies, one per list of rules."""
    paths = [f"l{i}.yaml" for i in range(len(layers))]
    texts = [policy_text(f"p{i}", rules).encode() for i, rules in enumerate(layers)]
    return load_set(set_text(*paths), "<set>", texts)


def review(rule_id: str, **when: Any) -> dict[str, Any]:
    return {"id": rule_id, "effect": "review", "reason": f"V_{rule_id.upper()}", "when": when}


@pytest.fixture
def indonesia(tmp_path: Path) -> CompiledSet:
    policy = load_policy_file(write_indonesia_set(tmp_path))
    assert isinstance(policy, CompiledSet)
    return policy


class TestIndonesianSet:
    def test_loads_both_bundled_files_as_layers_in_order(self, indonesia: CompiledSet) -> None:
        """The set names itself and its layers keep their own ids, versions and timezones."""
        assert indonesia.policy_id == "indonesia-cross-border"
        assert [layer.policy_id for layer in indonesia.layers] == [
            "id-akar-import-closure",
            "permendag-31-2023",
        ]
        assert indonesia.version.startswith("2023.09+")
        assert indonesia.timezone == "Asia/Jakarta"

    def test_cross_border_batik_shirt_under_usd_100_is_rejected_by_both_layers(
        self, indonesia: CompiledSet
    ) -> None:
        """REJECTED with the AKAR closure's reason, then Permendag's minimum price: layer order."""
        shirt = make_listing(
            category_path=("Batik", "Kemeja Batik"),
            price=Price(5_000, "USD"),
            event_time_ms=AFTER_BOTH,
        )
        verdict = indonesia.verdict_of(indonesia.scan(shirt))
        assert verdict.outcome == "REJECTED"
        assert [(r.code, r.rule_id) for r in verdict.reasons] == [
            ("IMPORT_CLOSED_CATEGORY", "akar-fashion-textile"),
            ("CROSS_BORDER_BELOW_MIN_PRICE", "permendag-min-price"),
        ]
        assert verdict.matched_rules == ("akar-fashion-textile", "permendag-min-price")
        assert verdict.cluster == "fashion_textile"

    def test_the_positive_list_does_not_reopen_the_akar_closure(
        self, indonesia: CompiledSet
    ) -> None:
        """Permendag's allow rule (exempts: ["*"]) exempts only its own layer's price rule."""
        permendag = indonesia.layers[1]
        assert permendag.model.rules[0].exempts == ("*",)
        book_coded = make_listing(
            category_path=("Batik", "Kain"),
            hs_code="490199",
            price=Price(500, "USD"),
            event_time_ms=AFTER_BOTH,
        )
        assert evaluate(book_coded, permendag).outcome == "APPROVED"  # alone, it would approve
        verdict = indonesia.verdict_of(indonesia.scan(book_coded))
        assert verdict.outcome == "REJECTED"
        assert [r.rule_id for r in verdict.reasons] == ["akar-fashion-textile"]
        assert verdict.exemptions == (Exemption("permendag-min-price", "permendag-positive-list"),)

    @pytest.mark.parametrize(
        ("overrides", "outcome", "rules"),
        [
            (
                {"category_path": ("Electronics",), "price": Price(5_000, "USD")},
                "REJECTED",
                ["permendag-min-price"],
            ),
            (
                {"category_path": ("Batik",), "price": Price(50_000, "USD")},
                "REJECTED",
                ["akar-fashion-textile"],
            ),
            ({"category_path": ("Electronics",), "price": Price(50_000, "USD")}, "APPROVED", []),
            (
                {"category_path": ("Batik",), "price": Price(5_000, "USD"), "channel": "DOMESTIC"},
                "APPROVED",
                [],
            ),
            (
                {"category_path": ("Batik",), "price": Price(5_000, "USD"), "site": "MY"},
                "APPROVED",
                [],
            ),
        ],
        ids=["cheap-phone", "dear-shirt", "dear-phone", "domestic-shirt", "other-site"],
    )
    def test_each_layer_decides_on_its_own(
        self, indonesia: CompiledSet, overrides: dict[str, Any], outcome: str, rules: list[str]
    ) -> None:
        """A listing only one layer rejects is rejected for that layer's rule alone."""
        listing = make_listing(event_time_ms=AFTER_BOTH, **overrides)
        verdict = indonesia.verdict_of(indonesia.scan(listing))
        assert (verdict.outcome, [r.rule_id for r in verdict.reasons]) == (outcome, rules)

    def test_the_key_is_the_tuple_of_the_layer_keys(self, indonesia: CompiledSet) -> None:
        """One verdict per distinct key, as for a single policy: the set's key is its layers'."""
        listing = make_listing(event_time_ms=AFTER_BOTH, price=Price(5_000, "USD"))
        assert indonesia.scan(listing) == tuple(scan(listing, layer) for layer in indonesia.layers)

    def test_as_of_applies_to_every_layer(self, indonesia: CompiledSet) -> None:
        """Before Permendag began only the AKAR layer rejects; as of after it, both do."""
        before = make_listing(price=Price(5_000, "USD"))  # 2021-08-03
        assert [r.rule_id for r in indonesia.verdict_of(indonesia.scan(before)).reasons] == [
            "akar-fashion-textile"
        ]
        reasons = indonesia.verdict_of(indonesia.scan(before, AFTER_BOTH)).reasons
        assert [r.rule_id for r in reasons] == ["akar-fashion-textile", "permendag-min-price"]


def _verdict(outcome: str, *rules: str) -> Verdict:
    reasons = tuple(Reason("R", rule, "m") for rule in rules)
    return Verdict(outcome, reasons, rules, None, True)  # type: ignore[arg-type]


class TestCombine:
    @pytest.mark.parametrize(
        ("layers", "outcome", "reasons"),
        [
            ([_verdict("APPROVED"), _verdict("APPROVED")], "APPROVED", []),
            ([_verdict("APPROVED"), _verdict("REVIEW", "v")], "REVIEW", ["v"]),
            ([_verdict("REVIEW", "v"), _verdict("REJECTED", "r")], "REJECTED", ["r"]),
            ([_verdict("REJECTED", "a"), _verdict("REJECTED", "b")], "REJECTED", ["a", "b"]),
            ([_verdict("REJECTED", "a"), _verdict("APPROVED")], "REJECTED", ["a"]),
        ],
        ids=[
            "all-approve",
            "review-beats-approve",
            "reject-beats-review",
            "both-reject",
            "one-rejects",
        ],
    )
    def test_most_severe_outcome_with_the_reasons_that_give_it(
        self, layers: list[Verdict], outcome: str, reasons: list[str]
    ) -> None:
        """REJECTED > REVIEW > APPROVED; reasons only from layers with that outcome, in layer order."""
        verdict = combine(layers)
        assert (verdict.outcome, [r.rule_id for r in verdict.reasons]) == (outcome, reasons)

    def test_matched_rules_and_exemptions_are_concatenated_in_layer_order(self) -> None:
        """Every layer's matched rules and exemptions are kept, whatever the outcome."""
        policy = layered(
            [reject("a", cross_border=True), allow("ok", cross_border=True)],
            [review("b", cross_border=True)],
        )
        verdict = policy.verdict_of(policy.scan(make_listing()))
        assert verdict.outcome == "REVIEW"
        assert verdict.matched_rules == ("a", "ok", "b")
        assert verdict.exemptions == (Exemption("a", "ok"),)

    def test_each_layer_has_its_own_scope(self) -> None:
        """A layer scoped to another site approves; the other layer still decides."""
        scoped = HEADER + "scope: {sites: [SG]}\n"
        texts = [
            (scoped + yaml.safe_dump({"rules": [reject("sg_only", cross_border=True)]})).encode(),
            policy_text("p1", [reject("everywhere", cross_border=True)]).encode(),
        ]
        policy = load_set(set_text("a.yaml", "b.yaml"), "<set>", texts)
        verdict = policy.verdict_of(policy.scan(make_listing()))
        assert [r.rule_id for r in verdict.reasons] == ["everywhere"]


class TestVersion:
    def test_any_layer_change_changes_the_version(self) -> None:
        """The version is the set's plus a hash over the set and every layer's content."""
        base = layered([reject("a", cross_border=True)], [reject("b", cross_border=True)])
        edited = layered([reject("a", cross_border=True)], [reject("b", cross_border=False)])
        assert base.version.startswith("7+")
        assert base.version != edited.version

    def test_comments_and_layout_do_not_change_it(self) -> None:
        """Like a policy's, the hash covers what the files say, not how they are written."""
        texts = [policy_text("p0", [reject("a", cross_border=True)]).encode()]
        one = load_set(set_text("a.yaml"), "<set>", texts)
        commented = [b"# a comment\n" + texts[0]]
        two = load_set("# set\n" + set_text("a.yaml"), "<set>", commented)
        assert one.version == two.version

    def test_the_set_file_is_in_the_hash(self) -> None:
        """Another set id over the same layers is another version."""
        texts = [policy_text("p0", [reject("a", cross_border=True)]).encode()]
        one = load_set(set_text("a.yaml"), "<set>", texts)
        two = load_set(set_text("a.yaml", set_id="other"), "<set>", texts)
        assert one.version != two.version


_GOOD = policy_text("p0", [reject("a", cross_border=True)]).encode()
_OTHER = policy_text("p1", [reject("b", cross_border=True)]).encode()


class TestValidation:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("policy_set: s\nversion: '1'\nlayers: []\n", r"layers: expected a non-empty list"),
            ("policy_set: s\nlayers: [{path: a.yaml}]\n", r"version: missing required key"),
            (
                "policy_set: 's s'\nversion: '1'\nlayers: [{path: a.yaml}]\n",
                r"policy_set: 's s' is not an id",
            ),
            ("policy_set: s\nversion: '1'\nlayers: [a.yaml]\n", r"layers\[0\]: expected a mapping"),
            (
                "policy_set: s\nversion: '1'\nlayers: [{file: a.yaml}]\n",
                r"layers\[0\].file: unknown key",
            ),
            (
                "policy_set: s\nversion: '1'\nrules: []\nlayers: [{path: a}]\n",
                r"rules: unknown key",
            ),
            (set_text("a.yaml", "a.yaml"), r"layers\[1\].path: 'a.yaml' is already layers\[0\]"),
            (
                set_text(*[f"{i}.yaml" for i in range(MAX_LAYERS + 1)]),
                r"33 layers; a set has at most 32",
            ),
        ],
        ids=[
            "no-layers",
            "no-version",
            "bad-id",
            "path-not-mapping",
            "unknown-layer-key",
            "unknown-key",
            "same-path-twice",
            "too-many-layers",
        ],
    )
    def test_a_bad_set_file_names_each_problem_by_path(self, text: str, message: str) -> None:
        """The set file is validated like a policy file: `where: what`."""
        with pytest.raises(PolicyError, match=message):
            parse_set(text, "set.yaml")

    @pytest.mark.parametrize(
        ("layers", "message"),
        [
            (
                [_GOOD, Unreadable("no such file: /x/b.yaml")],
                r"layers\[1\] \(b.yaml\): no such file: /x/b.yaml",
            ),
            (
                [_GOOD, b"policy: p1\nversion: '1'\nrules: [{id: x}]\n"],
                r"layers\[1\] \(b.yaml\): rules\[0\].effect: missing required key",
            ),
            (
                [_GOOD, set_text("c.yaml").encode()],
                r"layers\[1\] \(b.yaml\): is a policy set, and sets do not nest",
            ),
            (
                [_GOOD, _GOOD],
                r"layers\[1\] \(b.yaml\).rules\[0\].id: duplicate rule id 'a' \(first at layers\[0\] \(a.yaml\).rules\[0\].id\)",
            ),
            (
                [_OTHER, _OTHER.replace(b"- effect", b"- id: b2\n  effect", 0)],
                r"duplicate rule id 'b'",
            ),
        ],
        ids=[
            "missing-layer",
            "invalid-layer",
            "nested-set",
            "duplicate-rule-ids",
            "duplicate-ids-other-file",
        ],
    )
    def test_a_bad_layer_is_one_error_prefixed_with_its_place(
        self, layers: list[bytes | Unreadable], message: str
    ) -> None:
        """Each layer's problems name the layer, `layers[1] (path): `, then the usual path."""
        with pytest.raises(PolicyError, match=message):
            load_set(set_text("a.yaml", "b.yaml"), "set.yaml", layers)

    def test_a_thousand_layers_fail_at_once_without_reading_any(self, tmp_path: Path) -> None:
        """The limit is checked on the set file; no layer file is opened (none exists here)."""
        path = tmp_path / "big.yaml"
        path.write_text(set_text(*[f"layer-{i}.yaml" for i in range(1000)]))
        started = time.perf_counter()
        with pytest.raises(PolicyError, match=r"1,000 layers; a set has at most 32") as raised:
            load_policy_file(path)
        assert time.perf_counter() - started < 1.0
        assert len(raised.value.problems) == 1

    @pytest.mark.parametrize(
        ("layer", "message"),
        [
            (
                "set.yaml",
                r"layers\[0\] \(set.yaml\): is the set file itself; a set cannot include itself",
            ),
            ("./set.yaml", r"layers\[0\] \(./set.yaml\): is the set file itself"),
            ("missing.yaml", r"layers\[0\] \(missing.yaml\): no such file: .*missing.yaml"),
            ("folder", r"layers\[0\] \(folder\): not a regular file"),
            ("inner.yaml", r"layers\[0\] \(inner.yaml\): is a policy set, and sets do not nest"),
        ],
        ids=["itself", "itself-dot-path", "missing-file", "a-directory", "a-set-as-layer"],
    )
    def test_hostile_layer_files_give_one_path_named_error(
        self, tmp_path: Path, layer: str, message: str
    ) -> None:
        """Read from disk: nothing hangs, and the error says which layer and why."""
        (tmp_path / "folder").mkdir()
        (tmp_path / "inner.yaml").write_text(set_text("set.yaml"))
        path = tmp_path / "set.yaml"
        path.write_text(set_text(layer))
        with pytest.raises(PolicyError, match=message) as raised:
            load_policy_file(path)
        assert len(raised.value.problems) == 1

    def test_one_file_under_two_spellings_is_read_once_and_refused(self, tmp_path: Path) -> None:
        """`a.yaml` and `./sub/../a.yaml` are one file: not parsed twice, named as a repeat."""
        (tmp_path / "sub").mkdir()
        (tmp_path / "a.yaml").write_bytes(_GOOD)
        path = tmp_path / "set.yaml"
        path.write_text(set_text("a.yaml", "./sub/../a.yaml"))
        message = r"layers\[1\] \(./sub/../a.yaml\): is the same file as layers\[0\]"
        with pytest.raises(PolicyError, match=message):
            load_policy_file(path)

    def test_a_layer_path_the_os_refuses_is_one_error(self, tmp_path: Path) -> None:
        """A NUL byte (a valid YAML escape) in a layer path: the OS refuses it, no exception."""
        path = tmp_path / "set.yaml"
        path.write_text(set_text("bad\x00name.yaml"))
        message = r"layers\[0\] \(bad\x00name.yaml\): cannot resolve"
        with pytest.raises(PolicyError, match=message) as raised:
            load_policy_file(path)
        assert len(raised.value.problems) == 1

    def test_an_unreadable_set_file_is_a_config_error(self, tmp_path: Path) -> None:
        """As for a policy file: the path and why."""
        with pytest.raises(ConfigError, match="cannot read"):
            load_policy_file(tmp_path / "nope.yaml")


class TestDetection:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (set_text("a.yaml"), True),
            (HEADER + "rules: []\n", False),
            (HEADER + "description: mentions policy_set in passing\nrules: []\n", False),
            ("{policy_set: s, version: '1', layers: [{path: a}]}", True),
            ("policy_set: [unclosed", False),
        ],
        ids=["set", "policy", "word-in-a-value", "flow-style-set", "broken-yaml"],
    )
    def test_a_set_is_a_mapping_with_a_top_level_policy_set_key(
        self, text: str, expected: bool
    ) -> None:
        """Detected by the key, not the word; broken YAML is left to load_policy to report."""
        assert is_policy_set(text) is expected
        assert is_policy_set(text.encode()) is expected


class TestSinglePolicy:
    def test_a_policy_is_its_own_only_layer_and_scans_as_before(self) -> None:
        """CompiledPolicy satisfies the same protocol; its key is evaluate.scan's, unchanged."""
        policy = compile_policy(load_policy(_GOOD))
        listing = make_listing()
        assert policy.layers == (policy,)
        assert policy.scan(listing) == scan(listing, policy)
        assert policy.verdict_of(policy.scan(listing)) == evaluate(listing, policy)
