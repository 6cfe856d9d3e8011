"""`check --lang TAG` and `check --explain --lang TAG` with the bundled policies, which write
messages in Indonesian (the default) and English; validate-policy's missing-translation warning.
No broker needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from consumer.cli.main import main
from tests.unit.cli.invoke import POLICIES, run
from tests.unit.listings import MINIMAL_JSON

AKAR_ID = (
    "Impor lintas negara untuk kategori tekstil dan fesyen ditutup untuk melindungi UMKM lokal "
    "(AKAR)"
)
AKAR_EN = (
    "Cross-border textile and fashion imports are closed to protect local small businesses (AKAR)"
)
MIN_PRICE_EN = "Cross-border goods must cost at least USD 100 per unit (Permendag 31/2023)"

#: A cross-border batik shirt at USD 50 after Permendag 31/2023 began: both layers of the
#: bundled set reject it.
SHIRT: dict[str, Any] = {
    **MINIMAL_JSON,
    "event_time": "2023-09-27T03:00:00Z",
    "category_path": ["Batik", "Kemeja"],
    "hs_code": "61051000",
    "price": {"amount_minor": 5000, "currency": "USD"},
}


@pytest.fixture
def listing(tmp_path: Path) -> Path:
    path = tmp_path / "listing.jsonl"
    path.write_text(json.dumps(SHIRT) + "\n")
    return path


def _reasons(out: str) -> list[dict[str, Any]]:
    [decision] = map(json.loads, out.splitlines())
    reasons: list[dict[str, Any]] = decision["reasons"]
    return reasons


class TestCheckLang:
    def test_without_lang_the_decision_is_the_kafka_record(
        self, listing: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`message` in the default language (Indonesian), `messages` every language."""
        assert main(["check", str(listing)]) == 0
        [reason] = _reasons(capsys.readouterr().out)
        assert reason["message"] == AKAR_ID
        assert reason["messages"] == {"id": AKAR_ID, "en": AKAR_EN}

    def test_lang_prints_message_in_that_language_and_keeps_every_translation(
        self, listing: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A seller-facing tool shows `message` as it is; nothing else of the record changes."""
        assert main(["check", "--lang", "en", str(listing)]) == 0
        [reason] = _reasons(capsys.readouterr().out)
        assert reason["message"] == AKAR_EN
        assert reason["messages"] == {"id": AKAR_ID, "en": AKAR_EN}

    def test_lang_reads_every_layer_of_a_set(
        self, listing: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = ["check", "--lang", "en", "--policy", "bundled:indonesia-cross-border"]
        assert main([*args, str(listing)]) == 0
        reasons = _reasons(capsys.readouterr().out)
        assert [r["message"] for r in reasons][:2] == [AKAR_EN, MIN_PRICE_EN]

    def test_a_language_the_policy_lacks_warns_once_and_reads_the_default(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """ms is a well-formed tag the policy has no text in: one stderr line for two
        listings, each reason in the default language, exit 0."""
        two = tmp_path / "two.jsonl"
        two.write_text((json.dumps(SHIRT) + "\n") * 2)
        assert main(["check", "--lang", "ms", str(two)]) == 0
        out, err = capsys.readouterr()
        assert err == (
            "import-closure: check: warning: --lang ms: policy id-akar-import-closure writes "
            "messages in id, en; printing each reason in its default language\n"
        )
        decisions = [json.loads(line) for line in out.splitlines()]
        assert [d["reasons"][0]["message"] for d in decisions] == [AKAR_ID, AKAR_ID]

    def test_a_malformed_tag_is_a_usage_error(self, listing: Path) -> None:
        """EN is a typo, not a language: exit 2 naming the spelling to use."""
        result = run("check", "--lang", "EN", str(listing))
        assert result.returncode == 2
        assert "argument --lang: 'EN' is not a language tag (did you mean 'en'?)" in result.stderr
        assert result.stdout == ""

    def test_explain_prints_reasons_in_that_language(
        self, listing: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["check", "--explain", "--lang", "en", str(listing)]) == 0
        out = capsys.readouterr().out
        assert f"  reason IMPORT_CLOSED_CATEGORY (akar-fashion-textile): {AKAR_EN}" in out
        assert AKAR_ID not in out

    def test_explain_without_lang_prints_the_default_language(
        self, listing: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["check", "--explain", str(listing)]) == 0
        out = capsys.readouterr().out
        assert f"  reason IMPORT_CLOSED_CATEGORY (akar-fashion-textile): {AKAR_ID}" in out


class TestValidatePolicyWarnings:
    def test_a_missing_translation_is_a_warning_on_stderr_and_exit_0(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The AKAR file with one English text removed is valid and says what is missing."""
        text = (POLICIES / "id-akar-import-closure.yaml").read_text()
        path = tmp_path / "akar.yaml"
        path.write_text(text.replace(f"      en: {AKAR_EN}\n", ""))
        assert main(["validate-policy", str(path)]) == 0
        assert capsys.readouterr().err == (
            f"{path}: warning: rules[0].message: no 'en' text, though the policy writes messages "
            "in id, en; readers of that language get the default 'id' text\n"
        )
