"""Retention KPIs per month and currency (kpis.md): logo churn (split voluntary / delinquent),
gross and net revenue churn, NRR and GRR over 12 months, and LTV. All from the MRR movements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from analytics.facts import SCALE
from analytics.mrr import Movement
from analytics.report import MonthKpis

__all__ = ["RetentionKpis", "retention"]

Key = tuple[str, str]  # (customer, currency)


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


def _rate(numerator: Fraction | int, denominator: Fraction | int) -> float | None:
    return round(float(Fraction(numerator) / denominator), 6) if denominator else None


class _Ledger:
    """Each customer's MRR, replayed up to a moment."""

    def __init__(self, changes: Sequence[Movement]) -> None:
        self.changes = changes
        self.position = 0
        self.mrr: dict[Key, int] = defaultdict(int)

    def until(self, moment: int) -> dict[Key, int]:
        while self.position < len(self.changes) and self.changes[self.position].at < moment:
            change = self.changes[self.position]
            self.mrr[(change.customer_id, change.currency)] = change.after
            self.position += 1
        return dict(self.mrr)


def retention(changes: Sequence[Movement], months: Sequence[MonthKpis]) -> list[RetentionKpis]:
    """Retention for each of ``months`` (the monthly report), from all movements."""
    ledger = _ledger_points(changes, months)
    result: list[RetentionKpis] = []
    logo_history: dict[str, list[float | None]] = defaultdict(list)
    for index, month in enumerate(months):
        at_start, at_end = ledger[index], ledger[index + 1]
        in_month = [c for c in changes if month.start <= c.at < month.end]
        currencies = sorted(set(month.mrr) | {c for _, c in at_start})
        logo, voluntary, delinquent, gross, net, nrr, grr, ltv = ({} for _ in range(8))
        for currency in currencies:
            paying_start = {k for k, v in at_start.items() if k[1] == currency and v > 0}
            lost = {k for k in paying_start if at_end.get(k, 0) == 0}
            reason: dict[Key, bool] = {}
            for change in in_month:
                key = (change.customer_id, change.currency)
                if change.kind == "churn" and key in lost:
                    reason[key] = change.delinquent
            lost_delinquent = sum(1 for k in lost if reason.get(k))
            logo[currency] = _rate(len(lost), len(paying_start))
            delinquent[currency] = _rate(lost_delinquent, len(paying_start))
            voluntary[currency] = _rate(len(lost) - lost_delinquent, len(paying_start))
            start_mrr = Fraction(sum(v for k, v in at_start.items() if k[1] == currency), SCALE)
            moves = month.mrr_movements.get(currency, {})
            down = moves.get("churn", 0) + moves.get("contraction", 0)
            up = moves.get("expansion", 0) + moves.get("reactivation", 0)
            gross[currency] = _rate(down, start_mrr)
            net[currency] = _rate(down - up, start_mrr)
            if index >= 12:
                then = ledger[index - 11]  # the end of the month 12 months before
                cohort = {k: v for k, v in then.items() if k[1] == currency and v > 0}
                base = sum(cohort.values())
                nrr[currency] = _rate(sum(at_end.get(k, 0) for k in cohort), base)
                grr[currency] = _rate(sum(min(at_end.get(k, 0), v) for k, v in cohort.items()), base)
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


def _ledger_points(changes: Sequence[Movement], months: Sequence[MonthKpis]) -> list[dict[Key, int]]:
    """Every customer's MRR at each month boundary: the first month's start, then each month's end."""
    ledger = _Ledger(changes)
    points = [ledger.until(months[0].start)] if months else []
    points.extend(ledger.until(month.end) for month in months)
    return points
