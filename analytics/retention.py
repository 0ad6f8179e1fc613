"""Retention KPIs per month and currency (kpis.md): logo churn (split voluntary / delinquent),
gross and net revenue churn, NRR and GRR over 12 months, and LTV. All from the per-customer ledger of MRR
movements (:attr:`analytics.report.Report.ledger`), in Polars."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import polars as pl

from analytics.facts import SCALE
from analytics.report import Report

__all__ = ["RetentionKpis", "retention"]


@dataclass(frozen=True)
class RetentionKpis:
    month: str
    logo_churn_rate: dict[str, float | None]
    voluntary_churn_rate: dict[str, float | None]
    delinquent_churn_rate: dict[str, float | None]
    gross_revenue_churn: dict[str, float | None]
    net_revenue_churn: dict[str, float | None]
    nrr: dict[str, float | None]
    """Over the 12 months to this month's end; None without 12 months of history."""
    grr: dict[str, float | None]
    ltv: dict[str, int | None]
    """ARPA / the average logo churn rate of the 6 complete months before; None when that is 0."""


def _rate(numerator: float | Fraction, denominator: float | Fraction) -> float | None:
    return round(float(Fraction(numerator) / Fraction(denominator)), 6) if denominator else None


def retention(report: Report) -> list[RetentionKpis]:
    """Retention for each month of the report, from its per-customer ledger and movements."""
    months = report.all_months
    if not months:
        return []
    ledger = report.ledger.with_columns(
        # The ledger is sorted by customer, currency and point, and every key has every point.
        before=pl.when(pl.col("point") >= 1).then(pl.col("mrr").shift(1)),
        year_before=pl.when(pl.col("point") >= 12).then(pl.col("mrr").shift(12)),
    ).filter(pl.col("point") >= 1)
    # The reason of each lost customer's last churn in the month: payment failure or choice.
    churned = (
        report.movement_frame.filter(pl.col("kind") == "churn")
        .group_by(["cust_k", "cur_k", "month_index"])
        .agg(pl.col("delinquent").last())
        .with_columns(point=pl.col("month_index") + 1)
        .drop("month_index")
    )
    paying_before = pl.col("before") > 0
    lost = paying_before & (pl.col("mrr") == 0)
    cohort = pl.col("year_before") > 0
    per_month = (
        ledger.join(churned, on=["cust_k", "cur_k", "point"], how="left")
        .group_by(["point", "currency"])
        .agg(
            paying_start=paying_before.sum(),
            lost=lost.sum(),
            lost_delinquent=(lost & pl.col("delinquent").fill_null(False)).sum(),
            start_mrr=pl.col("before").sum(),
            cohort_base=pl.col("year_before").filter(cohort).sum(),
            cohort_now=pl.col("mrr").filter(cohort).sum(),
            cohort_kept=pl.min_horizontal("mrr", "year_before").filter(cohort).sum(),
        )
    )
    table = {(row[0], row[1]): row[2:] for row in per_month.iter_rows()}
    result: list[RetentionKpis] = []
    logo_history: dict[str, list[float | None]] = defaultdict(list)
    for index, month in enumerate(months):
        logo, voluntary, delinquent, gross, net, nrr, grr, ltv = ({} for _ in range(8))
        for currency in sorted(month.mrr):
            paying, lost_count, lost_delinquent, start, base, now, kept = table.get(
                (index + 1, currency), (0, 0, 0, 0, 0, 0, 0)
            )
            logo[currency] = _rate(lost_count, paying)
            delinquent[currency] = _rate(lost_delinquent, paying)
            voluntary[currency] = _rate(lost_count - lost_delinquent, paying)
            start_cents = Fraction(start, SCALE)
            moves = month.mrr_movements.get(currency, {})
            down = moves.get("churn", 0) + moves.get("contraction", 0)
            up = moves.get("expansion", 0) + moves.get("reactivation", 0)
            gross[currency] = _rate(down, start_cents)
            net[currency] = _rate(down - up, start_cents)
            if index >= 12:
                nrr[currency], grr[currency] = _rate(now, base), _rate(kept, base)
            else:
                nrr[currency] = grr[currency] = None
            previous = logo_history[currency][-6:]
            arpa = month.arpa.get(currency)
            if len(previous) == 6 and all(r is not None for r in previous) and arpa is not None:
                average = sum(r for r in previous if r is not None) / 6
                ltv[currency] = round(arpa / average) if average else None
            else:
                ltv[currency] = None
            logo_history[currency].append(logo[currency])
        result.append(RetentionKpis(month.month, logo, voluntary, delinquent, gross, net, nrr, grr, ltv))
    return result
