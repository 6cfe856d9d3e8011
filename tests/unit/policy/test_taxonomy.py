"""Category-path normalisation and longest-prefix cluster lookup."""

from __future__ import annotations

import tracemalloc

import pytest

from consumer.policy.model import Cluster
from consumer.policy.taxonomy import (
    MEMO_BYTES,
    MEMO_KEY_CHARS,
    ClusterMatch,
    TaxonomyIndex,
    normalise_path,
    normalise_segment,
)


def fullwidth(text: str) -> str:
    """The fullwidth forms (U+FF01..U+FF5E) of printable ASCII, as East Asian keyboards type them."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


class TestNormaliseSegment:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Women's Fashion", "women's fashion"),
            (fullwidth("WOMEN'S") + "\u3000" + fullwidth("FASHION"), "women's fashion"),
            ("  Women's    Fashion  ", "women's fashion"),
            ("Women's\t\nFashion", "women's fashion"),
            ("Women's\u00a0Fashion", "women's fashion"),
            ("STRASSE", "strasse"),
            ("Straße", "strasse"),
            ("ﬁne", "fine"),
            ("Makanan & Minuman", "makanan & minuman"),
            ("", ""),
        ],
        ids=[
            "plain",
            "fullwidth-and-ideographic-space",
            "extra-spaces",
            "tab-and-newline",
            "no-break-space",
            "upper",
            "sharp-s-casefold",
            "ligature",
            "ampersand-kept",
            "empty",
        ],
    )
    def test_segment_is_normalised(self, raw: str, expected: str) -> None:
        """NFKC, casefold, trim and collapse inner whitespace."""
        assert normalise_segment(raw) == expected

    def test_normalisation_is_idempotent(self) -> None:
        """Normalising twice changes nothing, so stored prefixes and listing paths agree."""
        for raw in (fullwidth("WOMEN'S") + "  Fashion", "Straße", "\u01f0", "\u0130stanbul"):
            once = normalise_segment(raw)
            assert normalise_segment(once) == once

    def test_path_is_normalised_segment_by_segment(self) -> None:
        """Segments stay separate: a path is a tuple, not a joined string."""
        assert normalise_path([" Groceries ", "FOOD"]) == ("groceries", "food")


FASHION = Cluster("fashion", (("Fashion",), ("Bags",)), ("c-9",))
SHOES = Cluster("shoes", (("Fashion", "Shoes"),))
DUPLICATE_SHOES = Cluster("footwear", (("fashion", "SHOES"),), ("c-1",))
BY_ID = Cluster("by_id", (), ("c-1", "c-2"))


class TestTaxonomyIndex:
    @pytest.mark.parametrize(
        ("clusters", "category_id", "path", "expected"),
        [
            ((FASHION,), "c-0", ("Fashion", "Dresses"), "fashion"),
            ((FASHION,), "c-0", ("Fashion",), "fashion"),
            ((FASHION, SHOES), "c-0", ("Fashion", "Shoes", "Boots"), "shoes"),
            ((SHOES, FASHION), "c-0", ("Fashion", "Shoes", "Boots"), "shoes"),
            ((FASHION, SHOES), "c-0", ("Fashion", "Hats"), "fashion"),
            ((SHOES, DUPLICATE_SHOES), "c-0", ("Fashion", "Shoes"), "shoes"),
            ((DUPLICATE_SHOES, SHOES), "c-0", ("Fashion", "Shoes"), "footwear"),
            ((FASHION,), "c-0", ("Bag",), None),
            ((FASHION,), "c-0", ("Bags and more",), None),
            ((FASHION,), "c-0", ("Home", "Fashion"), None),
            ((FASHION,), "c-0", (), None),
            ((), "c-0", ("Fashion",), None),
            ((FASHION,), "c-0", ("  " + fullwidth("FASHION") + " ", "x"), "fashion"),
        ],
        ids=[
            "prefix",
            "whole-path",
            "longest-prefix-wins",
            "longest-prefix-wins-listed-first",
            "shorter-prefix-when-longer-misses",
            "tie-goes-to-first-listed",
            "tie-goes-to-first-listed-reversed",
            "segment-must-match-whole",
            "segment-is-not-a-string-prefix",
            "prefix-anchored-at-root",
            "empty-path",
            "no-clusters",
            "normalised-listing-path",
        ],
    )
    def test_cluster_by_path(
        self,
        clusters: tuple[Cluster, ...],
        category_id: str,
        path: tuple[str, ...],
        expected: str | None,
    ) -> None:
        """The longest matching prefix wins; equal lengths go to the cluster listed first."""
        assert TaxonomyIndex.build(clusters).cluster_of(category_id, path) == expected

    @pytest.mark.parametrize(
        ("clusters", "category_id", "path", "expected"),
        [
            ((BY_ID,), "c-2", ("Anything",), "by_id"),
            ((BY_ID,), "c-2", (), "by_id"),
            ((FASHION, BY_ID), "c-1", ("Fashion", "Shoes"), "by_id"),
            ((SHOES, BY_ID), "c-1", ("Fashion", "Shoes"), "shoes"),
            ((BY_ID, SHOES), "c-1", ("Fashion", "Shoes"), "by_id"),
            ((SHOES, BY_ID), "c-1", ("Fashion", "Shoes", "Boots"), "by_id"),
            ((BY_ID, DUPLICATE_SHOES), "c-1", ("x",), "by_id"),
            ((DUPLICATE_SHOES, BY_ID), "c-1", ("x",), "footwear"),
            ((BY_ID,), "C-1", ("x",), None),
        ],
        ids=[
            "id-alone",
            "id-with-empty-path",
            "id-beats-shorter-prefix",
            "full-length-path-listed-first-beats-id",
            "id-listed-first-beats-full-length-path",
            "id-beats-prefix-shorter-than-listing-path",
            "same-id-in-two-clusters-first-listed",
            "same-id-in-two-clusters-first-listed-reversed",
            "ids-are-exact",
        ],
    )
    def test_cluster_by_category_id(
        self,
        clusters: tuple[Cluster, ...],
        category_id: str,
        path: tuple[str, ...],
        expected: str | None,
    ) -> None:
        """An id match ranks as a match of the listing's whole path; ties go to the first listed."""
        assert TaxonomyIndex.build(clusters).cluster_of(category_id, path) == expected

    def test_lookup_says_which_prefix_matched(self) -> None:
        """The match carries the prefix as the policy wrote it, for explanations."""
        index = TaxonomyIndex.build((FASHION, SHOES))
        assert index.lookup("c-0", ("FASHION", "shoes", "boots")) == ClusterMatch(
            "shoes", ("Fashion", "Shoes"), by_id=False
        )
        assert index.lookup("c-9", ("Toys",)) == ClusterMatch("fashion", None, by_id=True)

    def test_lookup_cost_does_not_depend_on_cluster_count(self) -> None:
        """The index is keyed by prefix, so ten thousand clusters need no scan per listing."""
        many = tuple(Cluster(f"k{i}", ((f"Root {i}", "Leaf"),)) for i in range(10_000))
        index = TaxonomyIndex.build(many)
        assert len(index.by_prefix) == 10_000
        assert index.max_depth == 2
        assert index.cluster_of("c", ("root 9999", "LEAF", "deeper", "still")) == "k9999"


class TestMemo:
    """The memo is bounded by estimated bytes and refuses long keys, so it cannot grow the heap."""

    def test_huge_unique_paths_leave_the_memo_and_the_heap_bounded(self) -> None:
        """The reported case: 1,000 unique ~450 KB category paths (598 MB RSS before the bound)."""
        index = TaxonomyIndex.build((FASHION,))
        tracemalloc.start()
        try:
            before, _peak = tracemalloc.get_traced_memory()
            for n in range(1000):
                path = (f"{n:04d}" + "x" * 450_000,)
                assert index.cluster_of("c-0", path) is None
                del path
            after, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert index.memo_bytes == 0  # none was memoised
        assert after - before < 1_000_000  # what stays is not the paths (450 MB in all)

    def test_many_short_keys_stay_under_the_byte_budget(self) -> None:
        """Ever-new short categories fill the memo to MEMO_BYTES, then it starts again."""
        index = TaxonomyIndex.build((FASHION,))
        highest = 0
        for n in range(60_000):
            index.cluster_of(f"c-{n}", ("Fashion", f"Leaf {n}"))
            highest = max(highest, index.memo_bytes)
        assert 0 < index.memo_bytes <= MEMO_BYTES
        assert highest > MEMO_BYTES // 2  # it was really used, not cleared at every call

    def test_keys_at_the_limit_are_memoised_and_longer_ones_are_not(self) -> None:
        """MEMO_KEY_CHARS counts the category id and every segment; longer keys are looked up only."""
        index = TaxonomyIndex.build((FASHION,))
        at_limit = ("Fashion", "x" * (MEMO_KEY_CHARS - len("Fashion") - 3))
        assert index.cluster_of("c-0", at_limit) == "fashion"
        memoised = index.memo_bytes
        assert memoised > 0
        longer = ("Fashion", "x" * (MEMO_KEY_CHARS - len("Fashion") - 2))
        assert index.cluster_of("c-0", longer) == "fashion"
        assert index.memo_bytes == memoised

    def test_memo_answers_like_the_lookup(self) -> None:
        """A memoised answer is the same as a fresh one, before and after the memo is cleared."""
        index = TaxonomyIndex.build((FASHION, SHOES))
        path = ("Fashion", "Shoes", "Boots")
        assert [index.cluster_of("c-0", path) for _ in range(3)] == ["shoes"] * 3
        fresh = TaxonomyIndex.build((FASHION, SHOES))
        assert fresh.cluster_of("c-0", path) == "shoes"
