"""The bundled `indonesia-cross-border` policy set: the AKAR closure and Permendag 31/2023 with its
dated positive list file, weekly fx tables and review rule, loaded by path and by name."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from consumer.core.records import Exemption, FxUsed, Listing, Price, Verdict
from consumer.errors import PolicyError
from consumer.policy.bundled import BUNDLED_SETS, bundled_set_path, load_bundled, load_bundled_set
from consumer.policy.set_explain import enforced_warnings
from consumer.policy.sets import CompiledSet
from consumer.service.policy_watch import PolicyWatch, load_policy_file
from consumer.telemetry.metrics import Metrics
from tests.unit.listings import epoch_ms, make_listing

ROOT = Path(__file__).resolve().parents[3]
SET_FOLDER = ROOT / "consumer" / "data" / "policies" / "indonesia-cross-border"
SET_FILE = SET_FOLDER / "set.yaml"

#: A day after Permendag 31/2023 began (2023-09-26 00:00 Asia/Jakarta); fx table of 2023-09-20.
AFTER = "2023-09-26T03:00:00Z"
#: The day before it began: only the AKAR closure applies.
BEFORE = "2023-09-25T03:00:00Z"
#: The fx tables of the set's permendag layer, as the decision's `fx` names them.
TABLE_0920 = epoch_ms("2023-09-19T17:00:00Z")
TABLE_0927 = epoch_ms("2023-09-26T17:00:00Z")

BATIK = ("Batik", "Kemeja Batik")
BOOKS = ("Books", "Fiction")
GADGETS = ("Electronics", "Phone Accessories")
CRAFT_BOOKS = ("Handicrafts", "Books")

MIN_PRICE = "permendag-min-price"
NO_HS = "permendag-no-hs-code"


@pytest.fixture(scope="module")
def indonesia() -> CompiledSet:
    policy = load_policy_file(SET_FILE)
    assert isinstance(policy, CompiledSet)
    return policy


def listing(when: str, path: tuple[str, ...], price: Price, **more: Any) -> Listing:
    """A listing from a Chinese seller shipped from China to the Indonesian site, unless told."""
    return make_listing(
        event_time_ms=epoch_ms(when), category_path=path, price=price, title="item", **more
    )


def decide(policy: CompiledSet, item: Listing) -> Verdict:
    return policy.verdict_of(policy.scan(item))


class TestTheSetLoads:
    def test_validates_with_no_warnings(self, indonesia: CompiledSet) -> None:
        """The shipped set loads, its three layers in order, and validate-policy has nothing to
        say."""
        assert indonesia.policy_id == "indonesia-cross-border"
        assert [layer.policy_id for layer in indonesia.layers] == [
            "id-akar-import-closure",
            "id-permendag-31-2023",
            "id-akar-title-keywords",
        ]
        assert enforced_warnings(indonesia) == ()

    @pytest.mark.parametrize(
        "name", ["bundled:indonesia-cross-border", "bundled-set"], ids=["policy-option", "loader"]
    )
    def test_by_name_is_the_same_as_by_path(self, indonesia: CompiledSet, name: str) -> None:
        """`--policy bundled:indonesia-cross-border` reads the package data and gives the same
        version as the path in a clone (same set, layers and list entries)."""
        by_name = (
            load_policy_file(Path(name))
            if name.startswith("bundled:")
            else load_bundled_set("indonesia-cross-border")
        )
        assert (by_name.policy_id, by_name.version) == (indonesia.policy_id, indonesia.version)

    def test_bundled_single_policies_load_by_name_too(self) -> None:
        """`bundled:NAME` also names the two bundled policy files."""
        assert load_bundled("permendag-31-2023").policy_id == "permendag-31-2023"
        assert load_policy_file(Path("bundled:id-akar-import-closure")).version == (
            load_policy_file(None).version
        )

    def test_unknown_name_lists_the_bundled_ones(self) -> None:
        """A misspelt bundled name is a policy error naming every bundled policy and set."""
        with pytest.raises(PolicyError, match=r"'indonesia'; bundled: id-akar.*indonesia-cross"):
            load_policy_file(Path("bundled:indonesia"))

    def test_run_takes_the_bundled_name_and_does_not_watch_it(self) -> None:
        """`run --policy bundled:indonesia-cross-border` enforces the set; package data never
        changes, so no watcher thread is started for it."""
        watch = PolicyWatch(
            Path("bundled:indonesia-cross-border"),
            None,
            Metrics(CollectorRegistry()),
            interval=0,
            wall_clock=lambda: 1000.0,
        )
        watch.start()
        assert watch.current.live.policy_id == "indonesia-cross-border"
        assert watch._thread is None
        watch.check(requested=True)  # nothing to look at: no error, same policy
        assert watch.current.live.policy_id == "indonesia-cross-border"

    def test_default_policy_is_unchanged(self) -> None:
        """No --policy still means the AKAR file alone, not the set."""
        assert load_policy_file(None).policy_id == "id-akar-import-closure"

    def test_every_file_of_the_set_is_package_data(self) -> None:
        """The wheel carries the set, its layer and its list files (pyproject's globs match them)."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        globs = pyproject["tool"]["setuptools"]["package-data"]["consumer"]
        files = [p.relative_to(ROOT / "consumer").as_posix() for p in SET_FOLDER.iterdir()]
        assert bundled_set_path(BUNDLED_SETS[0]) in files
        assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


class TestDecisions:
    @pytest.mark.parametrize(
        ("item", "outcome", "reasons", "exemptions"),
        [
            (
                listing(AFTER, BATIK, Price(2000, "USD"), hs_code="62052000"),
                "REJECTED",
                ["akar-fashion-textile", MIN_PRICE],
                [],
            ),
            (
                listing(AFTER, BOOKS, Price(2000, "USD"), hs_code="4901.99.90"),
                "APPROVED",
                [],
                [Exemption(MIN_PRICE, "unless")],
            ),
            (
                listing(AFTER, CRAFT_BOOKS, Price(2000, "USD"), hs_code="49019990"),
                "REJECTED",
                ["akar-crafts"],
                [Exemption(MIN_PRICE, "unless")],
            ),
            (
                listing(
                    AFTER,
                    BATIK,
                    Price(5_000_000, "IDR"),
                    hs_code="62052000",
                    seller_country="ID",
                    ship_from_country="ID",
                ),
                "APPROVED",
                [],
                [],
            ),
            (
                listing(AFTER, GADGETS, Price(15_000, "USD"), hs_code="85176200"),
                "APPROVED",
                [],
                [],
            ),
        ],
        ids=[
            "batik-rejected-by-akar-and-price",
            "book-on-positive-list-approved",
            "book-in-closed-cluster-still-rejected",
            "domestic-approved",
            "import-at-150-usd-approved",
        ],
    )
    def test_outcome_reasons_and_exemptions(
        self,
        indonesia: CompiledSet,
        item: Listing,
        outcome: str,
        reasons: list[str],
        exemptions: list[Exemption],
    ) -> None:
        """Each layer decides on its own: the positive list exempts the price rule only (and the
        decision records it), so it never reopens an AKAR cluster."""
        verdict = decide(indonesia, item)
        assert verdict.outcome == outcome
        assert [r.rule_id for r in verdict.reasons] == reasons
        assert list(verdict.exemptions) == exemptions

    @pytest.mark.parametrize(
        ("when", "path", "outcome", "reasons"),
        [
            (BEFORE, BATIK, "REJECTED", ["akar-fashion-textile"]),
            (BEFORE, GADGETS, "APPROVED", []),
            (AFTER, GADGETS, "REJECTED", [MIN_PRICE]),
        ],
        ids=["closure-only-before", "cheap-import-approved-before", "cheap-import-rejected-after"],
    )
    def test_price_rule_begins_on_26_september_2023(
        self,
        indonesia: CompiledSet,
        when: str,
        path: tuple[str, ...],
        outcome: str,
        reasons: list[str],
    ) -> None:
        """Before 26 September 2023 (Asia/Jakarta) only the AKAR closure applies."""
        verdict = decide(indonesia, listing(when, path, Price(2000, "USD"), hs_code="85176200"))
        assert verdict.outcome == outcome
        assert [r.rule_id for r in verdict.reasons] == reasons

    @pytest.mark.parametrize(
        ("when", "amount", "outcome", "fx"),
        [
            (
                AFTER,
                1_000_000_00,
                "REJECTED",
                FxUsed(TABLE_0920, "USD", "IDR", "0.000065"),
            ),
            (
                "2023-09-28T03:00:00Z",
                1_000_000_00,
                "REJECTED",
                FxUsed(TABLE_0927, "USD", "IDR", "0.0000645"),
            ),
            (AFTER, 1_550_000_00, "APPROVED", None),
            (
                "2023-09-28T03:00:00Z",
                1_550_000_00,
                "REJECTED",
                FxUsed(TABLE_0927, "USD", "IDR", "0.0000645"),
            ),
        ],
        ids=[
            "week-of-20-sep",
            "week-of-27-sep",
            "idr-1.55m-is-usd-100.75-on-26-sep",
            "idr-1.55m-is-usd-99.98-on-28-sep",
        ],
    )
    def test_idr_price_converts_with_the_weekly_table_in_force(
        self, indonesia: CompiledSet, when: str, amount: int, outcome: str, fx: FxUsed | None
    ) -> None:
        """An IDR price is converted with the fx table in force at event_time; the decision's fx
        names that table and its rate (one price can pass one week and fail the next)."""
        verdict = decide(
            indonesia, listing(when, GADGETS, Price(amount, "IDR"), hs_code="85176200")
        )
        assert verdict.outcome == outcome
        assert verdict.fx == fx

    @pytest.mark.parametrize(
        ("path", "price", "outcome", "reasons"),
        [
            (GADGETS, Price(2000, "USD"), "REVIEW", [NO_HS]),
            (BATIK, Price(2000, "USD"), "REJECTED", ["akar-fashion-textile"]),
            (GADGETS, Price(15_000, "USD"), "APPROVED", []),
        ],
        ids=[
            "cheap-import-without-hs-code",
            "closed-cluster-still-rejected",
            "not-price-regulated",
        ],
    )
    def test_no_hs_code_under_usd_100_goes_to_review(
        self,
        indonesia: CompiledSet,
        path: tuple[str, ...],
        price: Price,
        outcome: str,
        reasons: list[str],
    ) -> None:
        """A cross-border listing under USD 100 with no HS code cannot be checked against the
        positive list: people decide it (REVIEW), unless a closure rejects it anyway."""
        verdict = decide(indonesia, listing(AFTER, path, price))
        assert verdict.outcome == outcome
        assert [r.rule_id for r in verdict.reasons] == reasons
        assert MIN_PRICE not in verdict.matched_rules

    @pytest.mark.parametrize(
        ("when", "outcome"),
        [("2024-03-25T03:00:00Z", "REJECTED"), ("2024-03-26T03:00:00Z", "APPROVED")],
        ids=["2023-09-list", "2024-03-list-adds-49030000"],
    )
    def test_positive_list_version_in_force_follows_event_time(
        self, indonesia: CompiledSet, when: str, outcome: str
    ) -> None:
        """The six-monthly review is a second list file from 26 March 2024: a children's picture
        book (HS 4903.00.00) is refused before it and exempted after."""
        item = listing(when, BOOKS, Price(1000, "USD"), hs_code="49030000")
        assert decide(indonesia, item).outcome == outcome


KEYWORDS = "akar-closed-goods-in-title"
GADGET_ACCESSORIES = ("Electronics", "Accessories")


def titled(title: str, path: tuple[str, ...] = GADGET_ACCESSORIES, **more: Any) -> Listing:
    """A cross-border listing at USD 150 with an HS code, so the price layer has nothing to say."""
    more.setdefault("event_time_ms", epoch_ms(AFTER))
    return make_listing(
        category_path=path,
        price=Price(15_000, "USD"),
        hs_code="85176200",
        title=title,
        **more,
    )


class TestTheTitleScreen:
    @pytest.mark.parametrize(
        ("title", "phrase"),
        [
            ("Kemeja Batik Tulis Pria", "batik"),
            ("Batik print phone case", "batik"),
            ("KOPI LUWAK asli 100g", "kopi luwak"),
            ("Keripik Singkong Pedas", "keripik"),
            ("Tas anyaman pandan", "anyaman"),
            ("Hiasan dinding ukiran Jepara", "ukiran"),
            ("Mukena katun Jepang", "mukena"),
            ("Sarung Tenun Ikat Troso", "sarung tenun"),
            ("Wayang kulit Arjuna", "wayang"),
            ("Hijab voal premium", "hijab"),
            ("Kopiah hitam polos", "kopiah"),
        ],
    )
    def test_closed_goods_outside_the_closed_clusters_go_to_review(
        self, indonesia: CompiledSet, title: str, phrase: str
    ) -> None:
        """A miscategorised cross-border listing whose title names closed goods: REVIEW with
        IMPORT_CLOSED_GOODS_IN_TITLE, naming the phrase as the list writes it."""
        verdict = decide(indonesia, titled(title))
        assert verdict.outcome == "REVIEW"
        assert [(r.code, r.rule_id, r.phrase) for r in verdict.reasons] == [
            ("IMPORT_CLOSED_GOODS_IN_TITLE", KEYWORDS, phrase)
        ]

    @pytest.mark.parametrize(
        "title",
        [
            "Mesin fotokopi A3",
            "Mesin kopi espresso 15 bar",
            "Gelas kopi keramik",
            "Sarung tangan kulit",
            "Sarung HP silikon",
            "Ikat pinggang kulit",
            "Topeng wajah masker",
            "Kainnya lembut",
            "Wireless earbuds",
        ],
    )
    def test_words_that_name_other_goods_pass(self, indonesia: CompiledSet, title: str) -> None:
        """Whole words and pinned-down phrases: fotokopi is not kopi, a coffee machine or
        gloves are not closed goods."""
        verdict = decide(indonesia, titled(title))
        assert verdict.outcome == "APPROVED", verdict.reasons

    def test_inside_a_closed_cluster_the_closure_rejects(self, indonesia: CompiledSet) -> None:
        """A batik shirt in the Batik category is REJECTED by layer 0; the title screen's REVIEW
        is outranked (its rule still shows among the matched rules)."""
        verdict = decide(indonesia, titled("Kemeja Batik Tulis", BATIK))
        assert verdict.outcome == "REJECTED"
        assert [r.rule_id for r in verdict.reasons] == ["akar-fashion-textile"]
        assert KEYWORDS in verdict.matched_rules

    @pytest.mark.parametrize(
        ("when", "domestic", "outcome"),
        [
            (AFTER, True, "APPROVED"),
            ("2021-08-02T03:00:00Z", False, "APPROVED"),
            ("2021-08-03T03:00:00Z", False, "REVIEW"),
        ],
        ids=["domestic-seller", "before-the-closure", "from-the-closure"],
    )
    def test_only_cross_border_listings_from_the_closure(
        self, indonesia: CompiledSet, when: str, domestic: bool, outcome: str
    ) -> None:
        """Domestic sellers may sell batik anywhere; the screen begins with AKAR (2021-08-03)."""
        where: dict[str, Any] = (
            {"seller_country": "ID", "ship_from_country": "ID"} if domestic else {}
        )
        item = titled("Kain Batik", event_time_ms=epoch_ms(when), **where)
        assert decide(indonesia, item).outcome == outcome
