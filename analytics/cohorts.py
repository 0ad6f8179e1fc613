"""Cohort retention (kpis.md): a customer's cohort is the month of its first MRR > 0 (reactivated
customers stay in it); logo retention at month k is the share of the cohort paying at the end of
month k, revenue retention the cohort's MRR then over its MRR at the end of its first month."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import polars as pl

from analytics.report import Report

__all__ = ["Cohort", "cohorts"]


@dataclass(frozen=True)
class Cohort:
    month: str
    customers: int
    logo_retention: list[float]
    """Index k: the share still paying at the end of the k-th month after the cohort's (k = 0: its own)."""
    revenue_retention: dict[str, list[float | None]]


def cohorts(report: Report) -> list[Cohort]:
    months = report.all_months
    moves = report.movement_frame
    if not months or moves.is_empty():
        return []
    # A customer's cohort: the month of its first movement to MRR > 0 within the report.
    first = (
        moves.filter((pl.col("after") > 0) & (pl.col("month_index") >= 0))
        .group_by("cust_k")
        .agg(cohort=pl.col("month_index").min())
    )
    ledger = report.ledger.join(first, on="cust_k").filter(pl.col("point") >= pl.col("cohort") + 1)
    sizes = dict(first.group_by("cohort").agg(pl.len()).iter_rows())
    paying = (
        ledger.group_by(["cust_k", "cohort", "point"])
        .agg(paying=(pl.col("mrr") > 0).any())
        .group_by(["cohort", "point"])
        .agg(pl.col("paying").sum())
    )
    logo: dict[int, dict[int, int]] = defaultdict(dict)
    for index, point, count in paying.iter_rows():
        logo[index][point] = count
    revenue_rows = ledger.group_by(["cohort", "currency", "point"]).agg(pl.col("mrr").sum())
    revenue: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for index, currency, point, total in revenue_rows.iter_rows():
        revenue[(index, currency)][point] = total
    found: list[Cohort] = []
    for index, month in enumerate(months):
        size = sizes.get(index, 0)
        if not size:
            continue
        points = range(index + 1, len(months) + 1)
        shares = [round(logo[index].get(p, 0) / size, 6) for p in points]
        by_currency: dict[str, list[float | None]] = {}
        for (cohort_index, currency), totals in sorted(revenue.items()):
            base = totals.get(index + 1, 0)
            if cohort_index != index or not any(totals.values()):
                continue
            by_currency[currency] = [round(totals.get(p, 0) / base, 6) if base else None for p in points]
        found.append(Cohort(month.month, size, shares, by_currency))
    return found
