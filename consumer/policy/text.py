"""Title phrases (`title_contains_any`): one normalisation for titles and phrases, and one
Aho-Corasick automaton per compiled policy that finds every phrase of every text condition in a
single pass over the title.

Word boundaries come from the normalisation: a normalised text is words separated by single
spaces, so " phrase " found in " title " (both padded with one space) is a whole-word match, and
a multi-word phrase is a sequence of whole words. The automaton is ahocorasick-rs (the Rust
`aho-corasick` crate, the matcher of ripgrep): one scan costs the title's length plus its
matches, whatever the number of phrases.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import ahocorasick_rs

from consumer.core.records import Listing, ListingRow

#: Words in one phrase. A product phrase is a few words; the bound also caps the matches one
#: title can produce (each space ends at most this many nested phrases), whatever the title.
MAX_PHRASE_WORDS: Final = 16

_ASCII_NON_WORD = re.compile(r"[^a-z0-9]+")
_NON_WORD = re.compile(r"[\W_]+")
#: Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar): each of
#: their characters is a word of its own, so their phrases match as substrings.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\U00020000-\U0003134f]"
)
_NO_HITS: Mapping[int, int] = {}


@functools.cache
def _marks() -> dict[int, None]:
    """Every combining mark (Unicode category M*), for str.translate to delete; built once."""
    spans = (range(0x20000), range(0xE0100, 0xE01F0))
    return {
        code: None for span in spans for code in span if unicodedata.category(chr(code))[0] == "M"
    }


def normalise(text: str) -> str:
    """NFKC, casefold, diacritics and other combining marks removed (NFD, drop, NFC), then every
    run of characters that are not letters or digits as one space, stripped.

    ASCII text (most titles) takes a shortcut with the same result: lower() and one regex.
    """
    if text.isascii():
        return _ASCII_NON_WORD.sub(" ", text.lower()).strip()
    return _general(text)


def _general(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).translate(_marks()))
    text = _UNSPACED.sub(r" \g<0> ", text)
    return _NON_WORD.sub(" ", text).strip()


def phrase_problem(phrase: str) -> str | None:
    """Why a phrase can never match (validation), or None."""
    normal = normalise(phrase)
    if not normal:
        return f"phrase {_shown(phrase)} has no letters or digits, so it can never match"
    words = normal.count(" ") + 1
    if words > MAX_PHRASE_WORDS:
        return f"phrase {_shown(phrase)} has {words} words; at most {MAX_PHRASE_WORDS}"
    return None


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


@dataclass(frozen=True, slots=True, eq=False)
class PhraseSet:
    """The phrases of one `title_contains_any` as phrase ids of the policy's TitleIndex, and
    each id's spelling as the policy writes it (the first one, when two normalise alike)."""

    index: TitleIndex
    ids: frozenset[int]
    spellings: Mapping[int, str]

    def test(self, listing: Listing | ListingRow) -> bool:
        return not self.ids.isdisjoint(self.index.hits(listing))

    def first(self, listing: Listing | ListingRow) -> int:
        """The id of this set's phrase found first in the title (the longer of two starting at
        the same word); -1 when none is. `spellings[id]` is how the policy writes it."""
        found = self.index.first(self.index.hits(listing), self.ids)
        return -1 if found is None else found


class TitleIndex:
    """Every phrase of a compiled policy, by id, and the automaton over them (built once by
    `build`, after compile has added every text condition's phrases).

    `hits(listing)` scans a title once and keeps the answer for that listing object, so all the
    text conditions of one evaluation share one scan: a one-entry memo keyed by identity, which
    holds the listing so the identity cannot be reused, swapped as one tuple so it is safe
    across threads.
    """

    __slots__ = ("_automaton", "_last", "ids", "lengths")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        #: Characters of each phrase id's normalised form, to prefer the longer phrase.
        self.lengths: list[int] = []
        self._automaton: ahocorasick_rs.AhoCorasick | None = None
        self._last: tuple[object, Mapping[int, int]] = (None, _NO_HITS)

    def phrase_set(self, phrases: tuple[str, ...]) -> PhraseSet:
        """Ids for `phrases` (load has checked each normalises to a phrase)."""
        ids: dict[int, str] = {}
        for phrase in phrases:
            normal = normalise(phrase)
            found = self.ids.get(normal)
            if found is None:
                found = self.ids[normal] = len(self.lengths)
                self.lengths.append(len(normal))
            ids.setdefault(found, phrase)
        return PhraseSet(self, frozenset(ids), ids)

    def build(self) -> None:
        patterns = [f" {normal} " for normal in self.ids]  # ids are insertion order
        self._automaton = ahocorasick_rs.AhoCorasick(patterns) if patterns else None

    def hits(self, listing: Listing | ListingRow) -> Mapping[int, int]:
        """Phrase id -> where it first starts in the normalised title; one scan per listing."""
        last = self._last
        if last[0] is listing:
            return last[1]
        found = self.scan(listing.title)
        self._last = (listing, found)
        return found

    def scan(self, title: str) -> Mapping[int, int]:
        automaton = self._automaton
        if automaton is None:
            return _NO_HITS
        matches = automaton.find_matches_as_indexes(f" {normalise(title)} ", overlapping=True)
        if not matches:
            return _NO_HITS
        found: dict[int, int] = {}
        for phrase, start, _end in matches:  # by end: a phrase's first match comes first
            if phrase not in found:
                found[phrase] = start
        return found

    def first(self, hits: Mapping[int, int], ids: frozenset[int]) -> int | None:
        """Of `ids`, the one found first in `hits` (the longer of two at the same start)."""
        best: tuple[int, int] | None = None
        found = None
        for phrase, start in hits.items():
            if phrase in ids:
                rank = (start, -self.lengths[phrase])
                if best is None or rank < best:
                    best, found = rank, phrase
        return found


def rule_phrases(sets: tuple[PhraseSet, ...]) -> PhraseSet | None:
    """One rule's text conditions (those not under a `not`) as one PhraseSet: its `first` is the
    phrase the rule's reason names. A spelling comes from the first condition that has it."""
    if len(sets) <= 1:
        return sets[0] if sets else None
    spellings: dict[int, str] = {}
    for found in sets:
        for phrase, spelling in found.spellings.items():
            spellings.setdefault(phrase, spelling)
    return PhraseSet(sets[0].index, frozenset(spellings), spellings)


__all__ = [
    "MAX_PHRASE_WORDS",
    "PhraseSet",
    "TitleIndex",
    "normalise",
    "phrase_problem",
    "rule_phrases",
]
