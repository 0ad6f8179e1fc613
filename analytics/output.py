"""The KPI report as a readable table, JSON (snake_case keys, amounts in minor units keyed by
currency) or CSV (one row per month and currency)."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from typing import Any

from analytics.cohorts import cohorts
from analytics.conversion import conversion
from analytics.engine import DAY, Facts
from analytics.payments import payment_window, payments
from analytics.plans import plan_names
from analytics.report import MOVEMENT_KINDS, MonthKpis, Report, analyze
from analytics.retention import retention
from analytics.risk import at_risk
from analytics.stale import stale_subscriptions
from api.catalogue.plans import PlanCatalogue

__all__ = ["as_csv", "as_json", "as_table", "kpi_document"]


def as_json(
    months: Sequence[MonthKpis],
    meta: dict[str, Any],
    extra: Sequence[Sequence[Any]] = (),
    with_sources: bool = False,
) -> str:
    """``extra``: other per-month KPI series (retention, payments), merged into each month."""
    by_month: dict[str, dict[str, Any]] = defaultdict(dict)
    for series in extra:
        for item in series:
            by_month[item.month].update({k: v for k, v in asdict(item).items() if k != "month"})
    rows = []
    for month in months:
        row = month.as_dict(with_sources)
        row.update(by_month.get(month.month, {}))
        rows.append(row)
    return json.dumps({**meta, "months": rows}, indent=2)


def _rows(months: Sequence[MonthKpis]) -> list[dict[str, Any]]:
    rows = []
    for month in months:
        for currency in sorted(set(month.mrr) | set(month.mrr_movements)):
            moves = month.mrr_movements.get(currency, dict.fromkeys(MOVEMENT_KINDS, 0))
            rows.append(
                {
                    "month": month.month,
                    "currency": currency,
                    "mrr": month.mrr.get(currency, 0),
                    "arr": month.arr.get(currency, 0),
                    **{k: moves[k] for k in MOVEMENT_KINDS},
                    "paying_customers": month.paying_customers.get(currency, 0),
                    "arpa": month.arpa.get(currency),
                }
            )
    return rows


def as_csv(months: Sequence[MonthKpis]) -> str:
    rows = _rows(months)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _money(value: int | None) -> str:
    return "-" if value is None else f"{value / 100:,.2f}"


def as_table(months: Sequence[MonthKpis]) -> str:
    header = ["month", "cur", "MRR", "ARR", "new", "react.", "expans.", "contr.", "churn", "paying", "ARPA"]
    lines = [header]
    for row in _rows(months):
        lines.append(
            [
                row["month"],
                row["currency"].upper(),
                _money(row["mrr"]),
                _money(row["arr"]),
                *(_money(row[k]) for k in MOVEMENT_KINDS),
                str(row["paying_customers"]),
                _money(row["arpa"]),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text) + "\n\nAmounts in major units of each currency; MRR movements over the month."


def kpi_document(
    facts: Facts,
    first: date | None = None,
    last: date | None = None,
    as_of: str | None = None,
    with_sources: bool = False,
    catalogue: PlanCatalogue | None = None,
) -> tuple[Report, dict[str, Any]]:
    """The whole KPI set as one JSON-ready document (what ``faddl kpis --format json`` prints, the
    worker's snapshot holds and the dashboard and admin API read), and the report behind it.
    ``catalogue``: the plan catalogue, whose names the plans get (:func:`analytics.plans.plan_names`)."""
    now = facts.present()  # one instant for the months, the stale list and the document
    report = analyze(facts, first, last, now)
    horizon = facts.horizon() or 0
    moment = facts.cutoff - 1 if facts.cutoff is not None else horizon
    meta: dict[str, Any] = {
        "as_of": as_of,
        "computed_until": moment,
        "currency_note": "amounts in minor units, rates as fractions",
    }
    # Every series over every month from the log's first (a window never changes a figure); the
    # document shows the months asked for.
    extra: list[Sequence[Any]] = [
        retention(report),
        payments(facts, report.all_months),
        conversion(facts, report.all_months),
    ]
    meta["cohorts"] = [asdict(cohort) for cohort in cohorts(report)]
    risky = at_risk(facts, as_of=moment, movements=report.movement_frame if report.all_months else None)
    meta["at_risk"] = [asdict(customer) for customer in risky]
    at_risk_mrr: dict[str, int] = defaultdict(int)
    for customer in risky:
        at_risk_mrr[customer.currency] += customer.mrr
    meta["at_risk_mrr"] = dict(sorted(at_risk_mrr.items()))
    meta["now"] = now
    meta["plan_names"] = plan_names(facts, catalogue)
    meta["stale_grace_days"] = facts.stale_grace // DAY
    meta["stale_subscriptions"] = [asdict(s) for s in stale_subscriptions(facts, now)]
    meta["payment_windows"] = {f"last_{days}_days": asdict(payment_window(facts, days, moment + 1)) for days in (7, 30)}
    return report, json.loads(as_json(report.months, meta, extra, with_sources))
