"""A reporting currency over the ECB's CSV: the last rate on or before a month's end, zero-decimal
currencies, the identity end = start at last month's rates + FX effect + movements, and a broken
file refused with a line number."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from analytics.fx import in_reporting_currency, load_rates

# The ECB's layout (units per euro), with a currency it has no rate for on a day.
ECB_CSV = """Date,USD,JPY,GBP,
2025-01-31,1.0000,150.00,0.8000,
2025-02-28,1.2500,160.00,N/A,
2025-03-03,1.1000,155.00,0.8500,
"""


def table(tmp_path: Path, text: str = ECB_CSV) -> Path:
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_last_rate_on_or_before_the_day(tmp_path: Path) -> None:
    fx = load_rates(table(tmp_path))
    assert fx.per_euro("usd", date(2025, 2, 15)) == 1.0
    assert fx.per_euro("gbp", date(2025, 2, 28)) == 0.8  # N/A that day
    assert fx.convert(1_000, "usd", "eur", date(2025, 2, 28)) == pytest.approx(800)
    # 15,000 yen (no hundredths) at 160 yen and 1.25 dollars per euro: 117.19 dollars.
    assert fx.convert(15_000, "jpy", "usd", date(2025, 2, 28)) == pytest.approx(11_718.75)


def test_the_fx_effect_is_apart_from_the_movements(tmp_path: Path) -> None:
    fx = load_rates(table(tmp_path))
    months = [
        {"month": "2025-01", "mrr": {"usd": 10_000}, "mrr_movements": {"usd": {"new": 10_000}}},
        {"month": "2025-02", "mrr": {"usd": 12_000}, "mrr_movements": {"usd": {"new": 3_000, "churn": 1_000}}},
    ]
    jan, feb = in_reporting_currency(months, fx, "eur")
    assert jan.end == pytest.approx(10_000)
    # February starts with 10,000 cents: 10,000 EUR cents at January's rate, 8,000 at February's.
    assert feb.start == pytest.approx(10_000)
    assert feb.fx_effect == pytest.approx(-2_000)
    assert feb.movements == {"new": pytest.approx(2_400), "churn": pytest.approx(800)}
    assert feb.end == pytest.approx(feb.start + feb.fx_effect + feb.movements["new"] - feb.movements["churn"])
    assert feb.end == pytest.approx(9_600)


def test_a_currency_without_a_rate_is_left_out_and_named(tmp_path: Path) -> None:
    fx = load_rates(table(tmp_path))
    (month,) = in_reporting_currency([{"month": "2025-01", "mrr": {"chf": 500}, "mrr_movements": {}}], fx, "eur")
    assert month.missing == ["chf"]
    assert month.end == 0


def test_a_broken_file_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 3: 'soon' is not a rate"):
        load_rates(table(tmp_path, "Date,USD\n2025-01-31,1.1\n2025-02-28,soon\n"))
    with pytest.raises(ValueError, match="not the ECB's CSV"):
        load_rates(table(tmp_path, "when,USD\n"))
    with pytest.raises(ValueError, match=r"No such file"):
        load_rates(tmp_path / "missing.csv")
