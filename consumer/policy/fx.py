"""The `fx:` section: a base currency and undated `rates`, or dated `tables` (issue 15)."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from consumer.policy.codes import currency_problem
from consumer.policy.lists import Instant
from consumer.policy.model import DatedRates, FxTable
from consumer.policy.problems import Problems, kind

#: Amounts and fx rates outside this range are typos, and would make price thresholds enormous
#: (a 400-digit rate overflowed a float in compile).
_SMALLEST: Final = Decimal("1e-15")
_LARGEST: Final = Decimal("1e15")


class FxReader:
    """Reads `fx:` and remembers what price conditions need: which currencies have a rate."""

    def __init__(self, problems: Problems, instant: Instant) -> None:
        self.problems = problems
        self.instant = instant
        self.declared = False  # a broken fx section is reported once, not at every price
        #: Currencies a price condition may name: with tables, those with a rate in every table.
        self.rates: dict[str, Decimal] = {}
        self.tables: tuple[DatedRates, ...] = ()

    def section(self, value: object) -> FxTable | None:
        if value is None:
            return None
        self.declared = True
        data = self.problems.mapping("fx", value)
        if data is None:
            return None
        self.problems.keys("fx", data, {"base", "rates", "tables"}, required=("base",))
        if "rates" in data and "tables" in data:
            self.problems.fail("fx", "needs exactly one of rates or tables, not both")
        elif "rates" not in data and "tables" not in data:
            self.problems.fail("fx.rates", "missing required key (or dated fx.tables)")
        base = self.currency("fx.base", data["base"]) if "base" in data else None
        if "tables" in data:
            return self.dated(base, data["tables"])
        rates = self.rate_table("fx.rates", data["rates"], base) if "rates" in data else None
        if base is None:
            return None
        self.rates = {**dict(rates or ()), base: Decimal(1)}
        return FxTable(base, rates or ())

    def rate_table(
        self, path: str, value: object, base: str | None
    ) -> tuple[tuple[str, Decimal], ...]:
        rates: list[tuple[str, Decimal]] = []
        table = self.problems.mapping(path, value)
        for code, raw in (table or {}).items():
            where = f"{path}.{code}"
            rate = self.positive(where, raw)
            if self.currency(where, code) is None or rate is None:
                continue
            if code == base and rate != 1:
                self.problems.fail(where, f"the base currency's rate must be 1, got {raw}")
            rates.append((code, rate))
        return tuple(rates)

    def dated(self, base: str | None, value: object) -> FxTable | None:
        """`fx.tables`: dated rate tables; the one in force is the latest already begun."""
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else kind(value)
            self.problems.fail("fx.tables", f"expected a non-empty list of tables, got {got}")
            return None
        tables: list[DatedRates] = []
        begun: dict[int, int] = {}
        for i, raw in enumerate(value):
            path = f"fx.tables[{i}]"
            data = self.problems.mapping(path, raw)
            if data is None:
                continue
            self.problems.keys(path, data, {"effective_from", "rates"}, ("effective_from", "rates"))
            start = self.instant(f"{path}.effective_from", data.get("effective_from"))
            rates = self.rate_table(f"{path}.rates", data["rates"], base) if "rates" in data else ()
            if start is None:
                continue
            if start in begun:
                msg = f"fx.tables[{begun[start]}] begins at the same time; one table per date"
                self.problems.fail(f"{path}.effective_from", msg)
                continue
            begun[start] = i
            tables.append(DatedRates(start, rates))
        if base is None:
            return None
        self.tables = tuple(tables)
        # A price condition's currency needs a rate in every table, so each has a threshold.
        common = (
            set.intersection(*({code for code, _ in t.rates} for t in tables)) if tables else set()
        )
        self.rates = {**{code: Decimal(1) for code in common}, base: Decimal(1)}
        return FxTable(base, ())

    def currency(self, path: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.problems.fail(path, f"expected an ISO 4217 currency code, got {kind(value)}")
            return None
        if (problem := currency_problem(value)) is not None:
            self.problems.fail(path, problem)
            return None
        return value

    def positive(self, path: str, value: object) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.fail(path, f"expected a number, got {kind(value)}")
            return None
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite() or number <= 0:
            self.problems.fail(path, f"must be a finite number greater than 0, got {value}")
            return None
        if not _SMALLEST <= number <= _LARGEST:
            self.problems.fail(path, f"must be between 1e-15 and 1e15, got {value}")
            return None
        return number
