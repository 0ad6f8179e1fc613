"""Cohort retention (kpis.md): a customer's cohort is the month of its first MRR > 0 (reactivated
customers stay in it); logo retention at month k is the share of the cohort paying at the end of
month k, revenue retention the cohort's MRR then over its MRR at the end of its first month."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from analytics.mrr import Movement
from analytics.report import MonthKpis

__all__ = ["Cohort", "cohorts"]


@dataclass(frozen=True)
class Cohort:
    month: str
    customers: int
    logo_retention: list[float]
    """Index k: the share still paying at the end of the k-th month after the cohort's (k = 0: its own)."""
    revenue_retention: dict[str, list[float | None]]


def cohorts(changes: Sequence[Movement], months: Sequence[MonthKpis]) -> list[Cohort]:
    customer_mrr: dict[tuple[str, str], int] = defaultdict(int)
    first_month: dict[str, int] = {}
    snapshots: list[dict[tuple[str, str], int]] = []
    position = 0
    for index, month in enumerate(months):
        while position < len(changes) and changes[position].at < month.end:
            change = changes[position]
            position += 1
            customer_mrr[(change.customer_id, change.currency)] = change.after
            if change.after > 0 and change.customer_id not in first_month and change.at >= months[0].start:
                first_month[change.customer_id] = index
        snapshots.append(dict(customer_mrr))
    members: dict[int, set[str]] = defaultdict(set)
    for customer, index in first_month.items():
        members[index].add(customer)
    found: list[Cohort] = []
    for index, month in enumerate(months):
        group = members.get(index, set())
        if not group:
            continue
        logo: list[float] = []
        revenue: dict[str, list[float | None]] = defaultdict(list)
        base = _by_currency(snapshots[index], group)
        for later in snapshots[index:]:
            paying = {c for (c, _), v in later.items() if c in group and v > 0}
            logo.append(round(len(paying) / len(group), 6))
            now = _by_currency(later, group)
            for currency, start in base.items():
                revenue[currency].append(round(float(now.get(currency, 0) / start), 6) if start else None)
        found.append(Cohort(month.month, len(group), logo, dict(revenue)))
    return found


def _by_currency(mrr: dict[tuple[str, str], int], group: set[str]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for (customer, currency), value in mrr.items():
        if customer in group:
            totals[currency] += value
    return dict(totals)
