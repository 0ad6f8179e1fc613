"""A reporting currency: MRR per currency stays the truth, and a total in one chosen currency is
computed with an exchange-rate table the user supplies (``FX_RATES_FILE``), with the effect of rate
changes kept apart from the MRR movements, as ChartMogul reports it.

The table is the European Central Bank's own CSV of euro reference rates, as downloaded
(``eurofxref-hist.csv`` or ``eurofxref.csv``: a ``Date`` column, then one column per currency,
units of it per euro; ``N/A`` where there is none). A month is converted at the last rate on or
before its end. For each month: ``end = start at last month's rates + FX effect + movements at
this month's rates``, where the FX effect is what the month's starting MRR gained or lost by the
rates changing, and the movements are converted at the month's rates.
"""

from __future__ import annotations

import bisect
import calendar
import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from analytics.engine import net_movement

__all__ = ["ZERO_DECIMAL", "FxTable", "MonthInReporting", "in_reporting_currency", "load_rates"]

ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
"""Currencies whose amounts Stripe gives in whole units, not hundredths."""


def _major(minor: float, currency: str) -> float:
    return minor if currency in ZERO_DECIMAL else minor / 100


def _minor(major: float, currency: str) -> float:
    return major if currency in ZERO_DECIMAL else major * 100


@dataclass(frozen=True)
class FxTable:
    """Units of each currency per euro, by day (sorted)."""

    days: list[date]
    rates: list[dict[str, float]]
    source: str

    def per_euro(self, currency: str, on: date) -> float | None:
        """Units of ``currency`` per euro on the last day with a rate on or before ``on``."""
        if currency == "eur":
            return 1.0
        index = bisect.bisect_right(self.days, on) - 1
        while index >= 0:
            rate = self.rates[index].get(currency)
            if rate is not None:
                return rate
            index -= 1
        return None

    def convert(self, minor: float, currency: str, to: str, on: date) -> float | None:
        """``minor`` units of ``currency`` in minor units of ``to``, at the rates of ``on``."""
        source, target = self.per_euro(currency, on), self.per_euro(to, on)
        if source is None or target is None:
            return None
        return _minor(_major(minor, currency) / source * target, to)

    @property
    def currencies(self) -> list[str]:
        return sorted({"eur", *(c for day in self.rates for c in day)})


def load_rates(path: Path) -> FxTable:
    """Read the ECB's CSV; a ``ValueError`` says what is wrong with the file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ValueError(f"FX_RATES_FILE {path}: {exc.strerror or exc}") from None
    if not rows or rows[0][0].strip().lower() != "date":
        raise ValueError(f"FX_RATES_FILE {path}: not the ECB's CSV (its first column must be Date)")
    header = [name.strip().lower() for name in rows[0][1:]]
    table: list[tuple[date, dict[str, float]]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise ValueError(f"FX_RATES_FILE {path}, line {number}: {row[0]!r} is not a date like 2026-11-30") from None
        rates: dict[str, float] = {}
        for name, value in zip(header, row[1:], strict=False):
            value = value.strip()
            if not name or not value or value.upper() == "N/A":
                continue
            try:
                rates[name] = float(value)
            except ValueError:
                raise ValueError(f"FX_RATES_FILE {path}, line {number}: {value!r} is not a rate") from None
            if rates[name] <= 0:
                raise ValueError(f"FX_RATES_FILE {path}, line {number}: a rate must be above 0")
        table.append((day, rates))
    if not table:
        raise ValueError(f"FX_RATES_FILE {path}: no rates")
    table.sort(key=lambda item: item[0])
    return FxTable([day for day, _ in table], [rates for _, rates in table], str(path))


@dataclass(frozen=True)
class MonthInReporting:
    """A month's MRR in the reporting currency (minor units)."""

    month: str
    rates_day: date
    start: float
    fx_effect: float
    movements: dict[str, float]
    end: float
    missing: list[str]
    """Currencies with MRR but no rate: left out of the totals."""


def in_reporting_currency(months: list[dict[str, Any]], fx: FxTable, to: str) -> list[MonthInReporting]:
    """The KPI document's months (``mrr`` and ``mrr_movements`` per currency) in ``to``."""
    out: list[MonthInReporting] = []
    previous_end: date | None = None
    for month in months:
        year, number = (int(part) for part in month["month"].split("-"))
        end_day = date(year, number, calendar.monthrange(year, number)[1])
        start_day = previous_end or end_day
        missing: list[str] = []
        start = fx_effect = end = 0.0
        movements: dict[str, float] = {}
        for currency, mrr in month["mrr"].items():
            moved = month["mrr_movements"].get(currency, {})
            opening = mrr - net_movement(moved)
            now = fx.convert(mrr, currency, to, end_day)
            opening_then = fx.convert(opening, currency, to, start_day)
            opening_now = fx.convert(opening, currency, to, end_day)
            if now is None or opening_then is None or opening_now is None:
                missing.append(currency)
                continue
            end += now
            start += opening_then
            fx_effect += opening_now - opening_then
            for kind, amount in moved.items():
                converted = fx.convert(amount, currency, to, end_day) or 0.0
                movements[kind] = movements.get(kind, 0.0) + converted
        out.append(MonthInReporting(month["month"], end_day, start, fx_effect, movements, end, missing))
        previous_end = end_day
    return out
