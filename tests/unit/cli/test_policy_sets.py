"""check, validate-policy and diff given a policy set wherever they take a policy file (in
process through main, and once as a subprocess). No broker needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumer.cli.main import main
from tests.unit.cli.invoke import POLICIES, run
from tests.unit.listings import MINIMAL_JSON
from tests.unit.policy.test_sets import write_indonesia_set

#: A cross-border batik shirt at USD 50 after Permendag 31/2023 began; a USD 500 phone; the
#: shirt again with a positive-list (book) HS code.
_LISTINGS: list[dict[str, Any]] = [
    {
        **MINIMAL_JSON,
        "event_id": "evt-shirt",
        "listing_id": "shirt",
        "event_time": "2023-09-27T03:00:00Z",
        "category_path": ["Batik", "Kemeja"],
        "price": {"amount_minor": 5000, "currency": "USD"},
    },
    {
        **MINIMAL_JSON,
        "event_id": "evt-phone",
        "listing_id": "phone",
        "event_time": "2023-09-27T03:00:00Z",
        "category_path": ["Electronics", "Phones"],
        "price": {"amount_minor": 50000, "currency": "USD"},
    },
    {
        **MINIMAL_JSON,
        "event_id": "evt-book-coded",
        "listing_id": "book-coded",
        "event_time": "2023-09-27T03:00:00Z",
        "category_path": ["Batik", "Kain"],
        "hs_code": "490199",
        "price": {"amount_minor": 500, "currency": "USD"},
    },
]


@pytest.fixture
def set_path(tmp_path: Path) -> Path:
    return write_indonesia_set(tmp_path)


@pytest.fixture
def listings(tmp_path: Path) -> Path:
    path = tmp_path / "listings.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in _LISTINGS))
    return path


def _decisions(out: str) -> dict[str, dict[str, Any]]:
    return {d["listing_id"]: d for d in map(json.loads, out.splitlines())}


class TestCheck:
    def test_decides_with_the_set_and_names_it(
        self, set_path: Path, listings: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """policy/policy_version name the set; reasons come from both layers in layer order."""
        assert main(["check", "--policy", str(set_path), str(listings)]) == 0
        decisions = _decisions(capsys.readouterr().out)
        shirt = decisions["shirt"]
        assert (shirt["policy"], shirt["outcome"]) == ("indonesia-cross-border", "REJECTED")
        assert shirt["policy_version"].startswith("2023.09+")
        assert [r["rule_id"] for r in shirt["reasons"]] == [
            "akar-fashion-textile",
            "permendag-min-price",
        ]
        assert decisions["phone"]["outcome"] == "APPROVED"
        book = decisions["book-coded"]
        assert [r["rule_id"] for r in book["reasons"]] == ["akar-fashion-textile"]
        assert book["exemptions"] == [
            {"rule_id": "permendag-min-price", "by": "permendag-positive-list"}
        ]

    def test_explain_shows_each_layer_then_the_set_outcome(
        self, set_path: Path, listings: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each layer's account under its place in the set, then the combined outcome."""
        assert main(["check", "--explain", "--policy", str(set_path), str(listings)]) == 0
        out = capsys.readouterr().out
        assert "policy set indonesia-cross-border version 2023.09+" in out
        assert "== layers[0] (id-akar-import-closure.yaml)" in out
        assert "== layers[1] (permendag-31-2023.yaml)" in out
        assert "set outcome: REJECTED" in out
        assert "exempted permendag-min-price by allow rule permendag-positive-list" in out

    def test_as_of_a_date_uses_the_first_layers_timezone(
        self, set_path: Path, listings: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Before Permendag began (as of 2023-09-25 in Asia/Jakarta) only AKAR rejects the shirt."""
        args = ["check", "--as-of", "2023-09-25", "--policy", str(set_path), str(listings)]
        assert main(args) == 0
        shirt = _decisions(capsys.readouterr().out)["shirt"]
        assert [r["rule_id"] for r in shirt["reasons"]] == ["akar-fashion-textile"]


class TestValidatePolicy:
    def test_summarises_each_layer(
        self, set_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The set's id and version, each layer's id and own version, then each layer's summary."""
        assert main(["validate-policy", str(set_path)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("policy set: indonesia-cross-border\nversion: 2023.09+")
        assert "  layers[0] (id-akar-import-closure.yaml): id-akar-import-closure 2021.08+" in out
        assert "  layers[1] (permendag-31-2023.yaml): permendag-31-2023 2023.09+" in out
        assert "akar-crafts" in out
        assert "permendag-min-price" in out

    def test_warnings_name_their_layer(
        self, set_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An allow rule without exempts is warned about under its layer's place."""
        layer = set_path.parent / "permendag-31-2023.yaml"
        layer.write_text(layer.read_text().replace('    exempts: ["*"]', "    # no exempts"))
        assert main(["validate-policy", str(set_path)]) == 0
        err = capsys.readouterr().err
        assert (
            f"{set_path}: warning: layers[1] (permendag-31-2023.yaml): rules[0]: allow rule" in err
        )

    @pytest.mark.parametrize(
        ("breakage", "message"),
        [
            ("missing", "layers[1] (permendag-31-2023.yaml): no such file"),
            ("duplicate-id", "layers[1] (permendag-31-2023.yaml).rules[1].id: duplicate rule id"),
            ("invalid", "layers[0] (id-akar-import-closure.yaml): timezone: unknown time zone"),
        ],
        ids=["missing-layer", "duplicate-rule-id", "invalid-layer"],
    )
    def test_a_broken_set_exits_2_with_path_named_problems(
        self, set_path: Path, capsys: pytest.CaptureFixture[str], breakage: str, message: str
    ) -> None:
        """One line per problem on stderr, each naming the layer."""
        folder = set_path.parent
        if breakage == "missing":
            (folder / "permendag-31-2023.yaml").unlink()
        elif breakage == "duplicate-id":
            layer = folder / "permendag-31-2023.yaml"
            layer.write_text(
                layer.read_text().replace("id: permendag-min-price", "id: akar-crafts")
            )
        else:
            layer = folder / "id-akar-import-closure.yaml"
            layer.write_text(layer.read_text().replace("Asia/Jakarta", "Asia/Jakarte"))
        assert main(["validate-policy", str(set_path)]) == 2
        assert message in capsys.readouterr().err


class TestDiff:
    def test_a_set_as_candidate_against_the_akar_policy(
        self, set_path: Path, listings: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Adding the Permendag layer changes the shirt (one more reason), not the others."""
        args = ["diff", "--candidate", str(set_path), "--format", "json", str(listings)]
        assert main(args) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["listings"], report["changed"]) == (3, 1)
        assert report["transitions"]["REJECTED->REJECTED"] == 1
        assert report["by_rule"] == {"permendag-min-price": 1}

    def test_a_set_as_live_policy_in_the_text_report(
        self, set_path: Path, listings: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The text report names the set and explains its examples layer by layer."""
        candidate = POLICIES / "id-akar-import-closure.yaml"
        args = ["diff", "--policy", str(set_path), "--candidate", str(candidate), str(listings)]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "live:      indonesia-cross-border 2023.09+" in out
        assert "== layers[1] (permendag-31-2023.yaml)" in out


class TestSubprocess:
    def test_check_with_a_set_as_the_command_line_runs_it(
        self, set_path: Path, listings: Path
    ) -> None:
        """The installed entry point, end to end."""
        result = run("check", "--policy", str(set_path), str(listings))
        assert result.returncode == 0, result.stderr
        assert _decisions(result.stdout)["shirt"]["policy"] == "indonesia-cross-border"


class TestTitlePhrasesThroughCheck:
    def test_check_and_explain_name_the_phrase_of_the_bundled_title_screen(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`check --policy bundled:indonesia-cross-border`: a batik shirt listed under
        Electronics > Accessories is REVIEW with the phrase in the JSON reason; --explain says
        which phrase matched for which rule."""
        shirt = {
            **MINIMAL_JSON,
            "event_time": "2024-05-03T03:00:00Z",
            "category_path": ["Electronics", "Accessories"],
            "title": "Kemeja Batik Tulis Pria",
            "hs_code": "62052000",
            "price": {"amount_minor": 15000, "currency": "USD"},
        }
        path = tmp_path / "shirt.jsonl"
        path.write_text(json.dumps(shirt) + "\n")
        assert main(["check", "--policy", "bundled:indonesia-cross-border", str(path)]) == 0
        [decision] = map(json.loads, capsys.readouterr().out.splitlines())
        assert decision["outcome"] == "REVIEW"
        assert [(r["code"], r["phrase"]) for r in decision["reasons"]] == [
            ("IMPORT_CLOSED_GOODS_IN_TITLE", "batik")
        ]
        args = ["check", "--explain", "--policy", "bundled:indonesia-cross-border", str(path)]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "== layers[2] (akar-title-keywords.yaml)" in out
        assert "phrase 'batik' found)" in out
        assert "-> matched (phrase 'batik')" in out
        assert (
            "set outcome: REVIEW\n  reason IMPORT_CLOSED_GOODS_IN_TITLE (akar-closed-goods-in-title)"
            in out
        )
        assert (
            out.count("sebelum produk ditayangkan [phrase 'batik']") == 2
        )  # the layer's and the set's
