"""Rule messages in several languages (issue 16): `message:` maps, `default_language`, the
policy's languages, missing-translation warnings, translated reasons, the version hash, the
generated UNKNOWN_CURRENCY text, explain in a language and the languages of a set's layers.

The default listing (tests/unit/listings.py) is a cross-border dress from China (cluster
fashion) priced IDR 150,000.00.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from consumer.core.records import Price, Reason
from consumer.errors import PolicyError
from consumer.policy import (
    BUNDLED_POLICIES,
    bundled_policy_text,
    compile_policy,
    evaluate,
    explain,
    load_policy,
    summarize,
)
from consumer.policy.bundled import BUNDLED_SETS, load_bundled_set
from consumer.policy.changes import describe_change
from consumer.policy.compile import UNKNOWN_CURRENCY
from consumer.policy.load import policy_warnings
from consumer.policy.messages import tag_problem
from consumer.policy.model import PolicyModel
from consumer.policy.set_explain import enforced_languages, enforced_warnings, explain_enforced
from consumer.policy.sets import load_set
from tests.unit.listings import make_listing
from tests.unit.policy.test_evaluate import HEADER, reject, usd
from tests.unit.policy.test_sets import set_text

ID_TEXT = "Impor lintas negara untuk kategori fesyen ditutup"
EN_TEXT = "Cross-border fashion imports are closed"


def closed(message: object = None, rule_id: str = "closed") -> dict[str, Any]:
    """A reject rule that matches the default listing, with `message` when given."""
    rule = reject(rule_id, cross_border=True, cluster_in=["fashion"])
    if message is not None:
        rule["message"] = message
    return rule


def text_of(rules: list[dict[str, Any]], default_language: str | None = "id") -> str:
    header = (
        HEADER if default_language is None else HEADER + f"default_language: {default_language}\n"
    )
    return header + yaml.safe_dump({"rules": rules}, allow_unicode=True, sort_keys=False)


def problems_in(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(text, "p.yaml")
    return list(caught.value.problems)


def reason_of(rules: list[dict[str, Any]], default_language: str | None = "id") -> Reason:
    compiled = compile_policy(load_policy(text_of(rules, default_language)))
    [reason] = evaluate(make_listing(), compiled).reasons
    return reason


class TestMessageValues:
    def test_a_plain_string_is_the_message_with_no_translations(self) -> None:
        """A string stays what it always was: `message`, and no `messages`."""
        reason = reason_of([closed(EN_TEXT)], default_language=None)
        assert (reason.message, reason.messages) == (EN_TEXT, ())

    def test_a_map_gives_the_default_text_and_every_translation(self) -> None:
        """`message` is the default language's text; `messages` every language, default first."""
        reason = reason_of([closed({"en": EN_TEXT, "id": ID_TEXT})])
        assert reason.message == ID_TEXT
        assert reason.messages == (("id", ID_TEXT), ("en", EN_TEXT))
        assert reason.message_in("en") == EN_TEXT
        assert reason.message_in("id") == ID_TEXT

    def test_languages_are_the_default_then_the_other_tags_sorted(self) -> None:
        """The policy's languages: its default_language, then every tag its maps use, sorted;
        each reason's translations follow that order whatever order its map is written in."""
        rules = [
            closed({"id": "a", "ms": "b"}, "r1"),
            closed({"en-GB": "c", "id": "d", "en": "e"}, "r2"),
        ]
        model = load_policy(text_of(rules))
        assert model.languages == ("id", "en", "en-GB", "ms")
        assert model.rules[1].messages == (("id", "d"), ("en", "e"), ("en-GB", "c"))

    def test_a_policy_of_plain_strings_has_no_languages_without_a_default(self) -> None:
        """No default_language: no languages; with one, that one alone."""
        assert load_policy(text_of([closed(EN_TEXT)], None)).languages == ()
        assert load_policy(text_of([closed(ID_TEXT)], "id")).languages == ("id",)

    def test_a_rule_without_a_message_keeps_the_generated_text(self) -> None:
        """As before languages existed: "rejected by rule ID", no translations."""
        reason = reason_of([closed()])
        assert (reason.message, reason.messages) == ("rejected by rule closed", ())

    @pytest.mark.parametrize("tag", ["id", "en", "en-GB", "es-419", "fil"], ids=str)
    def test_well_formed_tags_are_accepted(self, tag: str) -> None:
        assert tag_problem(tag) is None


class TestMessageErrors:
    def test_a_map_without_the_default_language_text_is_an_error(self) -> None:
        """The default language's text is the decision's `message`: it must be there."""
        problems = problems_in(text_of([closed({"en": EN_TEXT})]))
        assert problems == ["rules[0].message: no 'id' text (the policy's default_language)"]

    def test_a_map_needs_a_default_language(self) -> None:
        """Without default_language no text can be the decision's `message`."""
        problems = problems_in(text_of([closed({"id": ID_TEXT, "en": EN_TEXT})], None))
        assert problems == [
            "rules[0].message: a message in several languages needs a top-level "
            "default_language (e.g. id)"
        ]

    @pytest.mark.parametrize(
        ("tag", "hint"),
        [
            ("EN", " (did you mean 'en'?)"),
            ("en_GB", " (did you mean 'en-GB'?)"),
            ("en-gb", " (did you mean 'en-GB'?)"),
            ("english", ""),
            ("e", ""),
            ("en-GB-x-private", ""),
        ],
        ids=["upper", "underscore", "lower-region", "word", "one-letter", "private-use"],
    )
    def test_a_malformed_tag_is_an_error_at_its_path(self, tag: str, hint: str) -> None:
        """The path names the tag; a tag with a canonical spelling gets it as a hint."""
        problems = problems_in(text_of([closed({"id": ID_TEXT, tag: EN_TEXT})]))
        assert problems == [
            f"rules[0].message.{tag}: {tag!r} is not a language tag{hint}: use a lowercase 2-3 "
            "letter language, optionally with an uppercase region, such as 'id', 'en' or 'en-GB'"
        ]

    def test_more_than_64_languages_is_an_error_at_the_first_one_too_many(self) -> None:
        """A bound on the languages keeps every reason's map and every check small."""
        tags = [f"{a}{b}" for a in "abcdefghij" for b in "abcdefg"][:65]
        texts = {"id": ID_TEXT} | {tag: "t" for tag in tags if tag != "id"}
        problems = problems_in(text_of([closed(texts)]))
        assert problems == [
            f"rules[0].message.{tags[-1]}: more than 64 languages in the policy's messages"
        ]

    def test_a_malformed_default_language_is_an_error(self) -> None:
        """default_language: Indonesian names the path and says what a tag looks like."""
        [problem] = problems_in(text_of([closed(ID_TEXT)], "Indonesian"))
        assert problem.startswith("default_language: 'Indonesian' is not a language tag")

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            (
                {},
                "rules[0].message: expected a string, or a mapping of language tags to "
                "strings, got an empty mapping",
            ),
            (
                ["a"],
                "rules[0].message: expected a string, or a mapping of language tags to "
                "strings, got a list",
            ),
            (
                {"id": ID_TEXT, "en": ""},
                "rules[0].message.en: expected a non-empty string, got a string ('')",
            ),
            (
                {"id": ID_TEXT, "en": 3},
                "rules[0].message.en: expected a non-empty string, got "
                "a number (3; quote it if it is text)",
            ),
        ],
        ids=["empty-map", "list", "empty-text", "number"],
    )
    def test_a_bad_message_value_is_an_error_at_its_path(
        self, message: object, expected: str
    ) -> None:
        assert problems_in(text_of([closed(message)])) == [expected]


class TestMissingTranslations:
    def test_a_message_without_one_of_the_policys_languages_is_a_warning(self) -> None:
        """Rule 1's map lacks en and rule 2's plain string is Indonesian only: both are named;
        the policy is valid (readers of en get the Indonesian text)."""
        rules = [
            closed({"id": ID_TEXT, "en": EN_TEXT}, "r0"),
            closed({"id": ID_TEXT}, "r1"),
            closed(ID_TEXT, "r2"),
            closed(None, "r3"),
        ]
        warnings = policy_warnings(load_policy(text_of(rules)))
        assert warnings == tuple(
            f"rules[{i}].message: no 'en' text, though the policy writes messages in id, en; "
            "readers of that language get the default 'id' text"
            for i in (1, 2)
        )

    def test_several_missing_languages_are_named_in_one_warning(self) -> None:
        rules = [closed({"id": "a", "en": "b", "ms": "c"}, "r0"), closed("d", "r1")]
        [warning] = policy_warnings(load_policy(text_of(rules)))
        assert warning.startswith("rules[1].message: no 'en', 'ms' text")
        assert "readers of those languages get the default 'id' text" in warning

    def test_a_policy_in_one_language_has_no_such_warning(self) -> None:
        rules = [closed({"id": ID_TEXT}, "r0"), closed(ID_TEXT, "r1")]
        assert policy_warnings(load_policy(text_of(rules))) == ()


class TestVersion:
    BASE = [closed({"id": ID_TEXT, "en": EN_TEXT})]

    def _version(self, rules: list[dict[str, Any]], default_language: str | None = "id") -> str:
        return compile_policy(load_policy(text_of(rules, default_language))).version

    def test_changing_a_translation_changes_the_version(self) -> None:
        """A decision's translations come from the policy version: a new text is a new version."""
        edited = [closed({"id": ID_TEXT, "en": EN_TEXT + "."})]
        assert self._version(edited) != self._version(self.BASE)

    def test_adding_a_translation_changes_the_version(self) -> None:
        added = [closed({"id": ID_TEXT, "en": EN_TEXT, "ms": "Import ditutup"})]
        assert self._version(added) != self._version(self.BASE)

    def test_the_order_a_map_is_written_in_does_not(self) -> None:
        """A map is a mapping: writing en before id says the same thing."""
        swapped = [closed({"en": EN_TEXT, "id": ID_TEXT})]
        assert self._version(swapped) == self._version(self.BASE)

    def test_naming_a_default_language_changes_the_version(self) -> None:
        """The same plain strings declared Indonesian say something new."""
        plain = [closed(ID_TEXT)]
        assert self._version(plain, "id") != self._version(plain, None)

    def test_the_reload_summary_names_a_translated_rule_and_a_new_default(self) -> None:
        """describe_change: a translation is a rule change; default_language is named."""
        old = load_policy(text_of(self.BASE))
        new = load_policy(text_of([closed({"id": ID_TEXT, "en": "Closed"})]))
        assert describe_change(old, new).rules_changed == ("closed",)
        plain = [closed(EN_TEXT)]
        change = describe_change(
            load_policy(text_of(plain, None)), load_policy(text_of(plain, "en"))
        )
        assert change.other == ("default_language",)


class TestUnknownCurrency:
    """The UNKNOWN_CURRENCY reason's text is generated: Indonesian and English are written."""

    def _reason(self, default_language: str | None, tags: tuple[str, ...] = ()) -> Reason:
        message = {tag: f"text {tag}" for tag in (default_language, *tags)} if tags else None
        rule = reject("cheap", price_below=usd(100))
        if message is not None:
            rule["message"] = message
        compiled = compile_policy(load_policy(text_of([rule], default_language)))
        listing = make_listing(price=Price(100, "EUR"))  # EUR has no rate: fail closed
        [reason] = evaluate(listing, compiled).reasons
        assert reason.code == UNKNOWN_CURRENCY
        return reason

    def test_without_languages_the_text_is_english_alone(self) -> None:
        """A policy with no default_language decides exactly as before issue 16."""
        reason = self._reason(None)
        assert reason.message == (
            "price currency 'EUR' has no fx rate in the policy, so rule cheap fails closed"
        )
        assert reason.messages == ()

    def test_an_indonesian_policy_gets_indonesian_with_an_english_translation(self) -> None:
        reason = self._reason("id", ("en",))
        assert reason.message == (
            "mata uang harga 'EUR' tidak memiliki kurs dalam kebijakan, sehingga aturan cheap "
            "tetap berlaku karena harganya tidak dapat diperiksa"
        )
        assert [tag for tag, _ in reason.messages] == ["id", "en"]
        assert reason.message_in("en").startswith("price currency 'EUR' has no fx rate")

    def test_only_the_policys_languages_are_generated(self) -> None:
        """An English-only policy gets no Indonesian it did not ask for."""
        reason = self._reason("en")
        assert reason.messages == (("en", reason.message),)
        assert reason.message.startswith("price currency 'EUR'")

    def test_a_default_language_without_a_generated_text_reads_english(self) -> None:
        """Malay (ms) is not written here: `message` is English and ms readers get it."""
        reason = self._reason("ms", ("en",))
        assert reason.message.startswith("price currency 'EUR'")
        assert reason.messages == (("en", reason.message),)


class TestSummary:
    def test_validate_policy_names_the_languages_default_first(self) -> None:
        rules = [closed({"id": ID_TEXT, "en": EN_TEXT, "ms": "Ditutup"})]
        summary = summarize(load_policy(text_of(rules))).splitlines()
        assert "languages: id (default), en, ms" in summary

    def test_a_policy_without_languages_has_no_such_line(self) -> None:
        summary = summarize(load_policy(text_of([closed(EN_TEXT)], None)))
        assert "languages:" not in summary


class TestExplainInALanguage:
    def test_reason_lines_read_in_the_language_asked_for(self) -> None:
        compiled = compile_policy(load_policy(text_of([closed({"id": ID_TEXT, "en": EN_TEXT})])))
        listing = make_listing()
        assert f"  reason R_CLOSED (closed): {ID_TEXT}" in explain(listing, compiled)
        assert f"  reason R_CLOSED (closed): {EN_TEXT}" in explain(listing, compiled, None, "en")

    def test_a_rule_without_that_language_reads_in_the_default(self) -> None:
        rules = [closed({"id": ID_TEXT, "en": EN_TEXT}, "r0"), closed(ID_TEXT, "r1")]
        compiled = compile_policy(load_policy(text_of(rules)))
        out = explain(make_listing(), compiled, None, "en")
        assert f"  reason R_R0 (r0): {EN_TEXT}" in out
        assert f"  reason R_R1 (r1): {ID_TEXT}" in out


class TestLayerLanguages:
    """Each layer keeps its own default language and translations."""

    def _set(self, *layers: tuple[str | None, list[dict[str, Any]]]) -> Any:
        paths = [f"l{i}.yaml" for i in range(len(layers))]
        texts = [
            text_of(rules, language).replace("policy: test-policy", f"policy: p{i}").encode()
            for i, (language, rules) in enumerate(layers)
        ]
        return load_set(set_text(*paths), "<set>", texts)

    def test_each_layers_reasons_carry_its_own_languages(self) -> None:
        """An Indonesian layer and an English one: each reason's `message` is its layer's
        default, and --lang (message_in) reads each in the language asked for where it can."""
        policy = self._set(
            ("id", [closed({"id": ID_TEXT, "en": EN_TEXT}, "r0")]),
            ("en", [closed({"en": "Closed here too", "ms": "Ditutup juga"}, "r1")]),
        )
        reasons = policy.verdict_of(policy.scan(make_listing())).reasons
        assert [r.message for r in reasons] == [ID_TEXT, "Closed here too"]
        assert [r.message_in("en") for r in reasons] == [EN_TEXT, "Closed here too"]
        assert enforced_languages(policy) == ("id", "en", "ms")
        out = explain_enforced(make_listing(), policy, None, "en")
        assert f"  reason R_R0 (r0): {EN_TEXT}" in out.split("set outcome:")[1]

    def test_layers_with_different_default_languages_are_warned_about(self) -> None:
        policy = self._set(
            ("id", [closed(ID_TEXT, "r0")]),
            (None, [closed("plain", "r1")]),
            ("en", [closed(EN_TEXT, "r2")]),
        )
        assert enforced_warnings(policy) == (
            "layers: the layers' default languages differ (layers[0] (l0.yaml) id, "
            "layers[2] (l2.yaml) en), so the reasons of one decision may mix languages in "
            "`message`; read `messages` (or check --lang) for one language",
        )

    def test_layers_that_agree_are_not(self) -> None:
        policy = self._set(("id", [closed(ID_TEXT, "r0")]), (None, [closed("plain", "r1")]))
        assert enforced_warnings(policy) == ()


class TestBundledPolicies:
    """Sellers on the Indonesian site read Indonesian; English is the translation."""

    @staticmethod
    def _models() -> list[PolicyModel]:
        singles = [load_policy(bundled_policy_text(name)) for name in BUNDLED_POLICIES]
        layers = [layer.model for name in BUNDLED_SETS for layer in load_bundled_set(name).layers]
        return singles + layers

    def test_every_bundled_policy_and_layer_writes_indonesian_and_english(self) -> None:
        """Every rule message of every bundled file is a map with both texts (so no warning)."""
        for model in self._models():
            assert (model.default_language, model.languages) == ("id", ("id", "en")), (
                model.policy_id
            )
            for rule in model.rules:
                assert [tag for tag, _ in rule.messages] == ["id", "en"], rule.id
                assert rule.message == rule.messages[0][1] != rule.messages[1][1]
