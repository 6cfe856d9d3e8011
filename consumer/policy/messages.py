"""Rule messages in several languages: language tags, reading `message:` maps, the policy's
languages, missing-translation warnings, and the generated texts the policy does not write.

A policy names its `default_language`; a `message:` is a plain string (in that language) or a
map of language tags to texts. The policy's languages are the default and every tag a message
map uses, so a seller-facing tool knows which languages it can ask for without a second list
in the file to keep in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from consumer.policy.problems import Problems, kind

#: A language tag as BCP 47 writes the common ones: a lowercase 2-3 letter language, then an
#: optional uppercase region or 3-digit UN M.49 area (`id`, `en`, `en-GB`, `es-419`). The case is
#: fixed so one language has one spelling in a policy and in the decision's `messages` keys.
LANGUAGE_TAG: Final = re.compile(r"[a-z]{2,3}(?:-(?:[A-Z]{2}|[0-9]{3}))?")

#: Texts of the UNKNOWN_CURRENCY reason, the one reason the policy does not write, in the
#: languages this project can write it in; `{currency}` and `{rule}` are filled in.
UNKNOWN_CURRENCY_TEXTS: Final = {
    "en": "price currency {currency!r} has no fx rate in the policy, so rule {rule} fails closed",
    "id": (
        "mata uang harga {currency!r} tidak memiliki kurs dalam kebijakan, sehingga aturan "
        "{rule} tetap berlaku karena harganya tidak dapat diperiksa"
    ),
}

#: Languages per policy. A marketplace writes a handful; the bound keeps a generated file from
#: making every rule's missing-translation check and every reason's map grow without limit.
MAX_LANGUAGES: Final = 64

Messages = tuple[tuple[str, str], ...]


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a language tag a policy may use, or None."""
    if LANGUAGE_TAG.fullmatch(tag):
        return None
    shown = repr(tag) if len(tag) <= 60 else repr(tag[:57]) + "..."
    canonical = _canonical(tag)
    hint = f" (did you mean {canonical!r}?)" if canonical is not None else ""
    return (
        f"{shown} is not a language tag{hint}: use a lowercase 2-3 letter language, optionally "
        "with an uppercase region, such as 'id', 'en' or 'en-GB'"
    )


def _canonical(tag: str) -> str | None:
    """`EN`, `en_gb`, `en-gb` -> the spelling LANGUAGE_TAG accepts, when there is one."""
    language, _, region = tag.replace("_", "-").partition("-")
    fixed = language.lower() + (f"-{region.upper()}" if region else "")
    return fixed if fixed != tag and LANGUAGE_TAG.fullmatch(fixed) else None


class MessageReader:
    """Reads `message:` values into the problems of one policy load; `languages()` afterwards
    is the policy's languages, default first."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.default: str | None = None
        #: Whether the file has a default_language key (valid or not).
        self.declared = False
        #: Every tag a message map used, first use first, and the path of that first use.
        self.used: dict[str, str] = {}

    def default_language(self, value: object) -> str | None:
        if value is None:
            return None
        self.declared = True
        tag = self.problems.text("default_language", value)
        if tag is not None and (problem := tag_problem(tag)) is not None:
            self.problems.fail("default_language", problem)
            return None
        self.default = tag
        return tag

    def message(self, path: str, value: object) -> tuple[str | None, Messages]:
        """(the default language's text, every translation by tag) of one rule's `message`:
        a plain string is (text, ()); a map needs the top-level default_language and its text."""
        if value is None or isinstance(value, str):
            return self.problems.text(path, value, optional=True), ()
        if not isinstance(value, dict) or not value:
            got = "an empty mapping" if value == {} else kind(value)
            msg = f"expected a string, or a mapping of language tags to strings, got {got}"
            self.problems.fail(path, msg)
            return None, ()
        texts: dict[str, str] = {}
        for tag, text in value.items():
            where = f"{path}.{tag}"
            if not isinstance(tag, str) or (problem := tag_problem(tag)) is not None:
                self.problems.fail(where, problem or f"expected a language tag, got {kind(tag)}")
                continue
            if tag not in self.used and len(self.used) == MAX_LANGUAGES:
                msg = f"more than {MAX_LANGUAGES} languages in the policy's messages"
                self.problems.fail(where, msg)
                continue
            checked = self.problems.text(where, text)
            if checked is not None:
                texts[tag] = checked
                self.used.setdefault(tag, where)
        if not self.declared:
            msg = "a message in several languages needs a top-level default_language (e.g. id)"
            self.problems.fail(path, msg)
            return None, ()
        if self.default is None:
            return None, ()  # default_language itself is wrong, and reported
        if self.default not in value:
            self.problems.fail(path, f"no {self.default!r} text (the policy's default_language)")
            return None, ()
        if len(texts) != len(value):
            return None, ()
        return texts[self.default], tuple(texts.items())

    def languages(self) -> tuple[str, ...]:
        """The default language, then the other tags used, sorted: one order for every reason,
        whatever order each map is written in (which changes neither decisions nor the hash)."""
        if self.default is None:
            return ()
        return (self.default, *sorted(tag for tag in self.used if tag != self.default))


def in_order(messages: Messages, languages: Sequence[str]) -> Messages:
    """`messages` in the order of `languages`."""
    rank = {tag: i for i, tag in enumerate(languages)}
    return tuple(sorted(messages, key=lambda pair: rank[pair[0]]))


def missing_translations(
    languages: Sequence[str], messages: Iterable[tuple[int, str | None, Messages]]
) -> tuple[str, ...]:
    """Warnings for each rule message (index, plain text, map) without a text in one of the
    policy's languages: that language's readers get the default language's text instead."""
    if len(languages) < 2:
        return ()
    default = languages[0]
    out: list[str] = []
    for index, plain, texts in messages:
        if plain is None and not texts:
            continue
        have = {tag for tag, _ in texts} or {default}
        missing = [tag for tag in languages if tag not in have]
        if missing:
            out.append(
                f"rules[{index}].message: no {', '.join(map(repr, missing))} text, though the "
                f"policy writes messages in {', '.join(languages)}; readers of "
                f"{'that language' if len(missing) == 1 else 'those languages'} get the "
                f"default {default!r} text"
            )
    return tuple(out)


def unknown_currency_messages(
    languages: Sequence[str], currency: str, rule_id: str
) -> tuple[str, Messages]:
    """(message, messages) of an UNKNOWN_CURRENCY reason: the generated text in each of the
    policy's languages this project writes (Indonesian, English); `message` in the default
    language when it is one of them, else English. A policy with no default_language gets the
    English text alone, as before languages existed, so its decisions do not change."""
    english = UNKNOWN_CURRENCY_TEXTS["en"].format(currency=currency, rule=rule_id)
    if not languages:
        return english, ()
    texts = tuple(
        (tag, UNKNOWN_CURRENCY_TEXTS[tag].format(currency=currency, rule=rule_id))
        for tag in languages
        if tag in UNKNOWN_CURRENCY_TEXTS
    )
    default = dict(texts).get(languages[0], english)
    return default, texts
