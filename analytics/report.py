"""Monthly KPIs per currency: MRR, ARR, MRR movements (with the identity checked), paying
customers, active subscriptions and ARPA, for calendar months (UTC)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

from analytics.mrr import Movement, SubscriptionState, movements, state_before, subscription_timelines
from api.events.model import ParsedEvent

__all__ = ["MOVEMENT_KINDS", "MonthKpis", "analyze", "month_bounds", "monthly_kpis"]

MOVEMENT_KINDS = ("new", "reactivation", "expansion", "contraction", "churn")


def month_bounds(month: date) -> tuple[int, int]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def _months(first: date, last: date) -> list[date]:
    found, current = [], date(first.year, first.month, 1)
    while current <= last:
        found.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return found


def _cents(value: Fraction) -> int:
    return round(value)


@dataclass(frozen=True)
class MonthKpis:
    month: str
    start: int
    end: int
    mrr: dict[str, int]
    arr: dict[str, int]
    mrr_movements: dict[str, dict[str, int]]
    paying_customers: dict[str, int]
    active_subscriptions: int
    arpa: dict[str, int | None]
    movement_event_ids: dict[str, dict[str, list[str]]]
    """Per currency and kind, the events behind the month's movements."""

    def as_dict(self, with_sources: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "month": self.month,
            "mrr": self.mrr,
            "arr": self.arr,
            "mrr_movements": self.mrr_movements,
            "paying_customers": self.paying_customers,
            "active_subscriptions": self.active_subscriptions,
            "arpa": self.arpa,
        }
        if with_sources:
            data["movement_event_ids"] = self.movement_event_ids
        return data


def _active_at(timelines: dict[str, list[SubscriptionState]], moment: int) -> int:
    """Subscriptions contributing MRR just before ``moment``."""
    count = 0
    for timeline in timelines.values():
        found = state_before(timeline, moment)
        if found is not None and found[0].mrr_at(moment - 1, found[1]) > 0:
            count += 1
    return count


def monthly_kpis(events: Iterable[ParsedEvent], first: date | None = None, last: date | None = None) -> list[MonthKpis]:
    """KPIs of each calendar month from ``first`` to ``last`` (default: the months the log covers)."""
    return analyze(events, first, last)[0]


def analyze(
    events: Iterable[ParsedEvent], first: date | None = None, last: date | None = None
) -> tuple[list[MonthKpis], list[Movement]]:
    """The monthly KPIs, and every MRR movement up to the end of the last month."""
    timelines = subscription_timelines(events)
    all_times = [s.at for timeline in timelines.values() for s in timeline]
    if not all_times:
        return [], []
    first = first or datetime.fromtimestamp(min(all_times), tz=UTC).date()
    last = last or datetime.fromtimestamp(max(all_times), tz=UTC).date()
    months = _months(first, last)
    _, horizon = month_bounds(months[-1])
    changes: list[Movement] = movements(timelines, until=horizon)
    customer_mrr: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    position = 0
    report: list[MonthKpis] = []
    for month in months:
        start, end = month_bounds(month)
        moved: dict[str, dict[str, Fraction]] = defaultdict(lambda: dict.fromkeys(MOVEMENT_KINDS, Fraction(0)))
        sources: dict[str, dict[str, list[str]]] = defaultdict(lambda: {k: [] for k in MOVEMENT_KINDS})
        while position < len(changes) and changes[position].at < start:  # before the first reported month
            change = changes[position]
            position += 1
            customer_mrr[(change.customer_id, change.currency)] = change.after
        start_mrr: dict[str, Fraction] = defaultdict(Fraction)
        for (_, currency), value in customer_mrr.items():
            start_mrr[currency] += value
        while position < len(changes) and changes[position].at < end:
            change = changes[position]
            position += 1
            customer_mrr[(change.customer_id, change.currency)] = change.after
            moved[change.currency][change.kind] += change.amount
            sources[change.currency][change.kind].extend(change.event_ids)
        end_mrr: dict[str, Fraction] = defaultdict(Fraction)
        paying: dict[str, int] = defaultdict(int)
        for (_, currency), value in customer_mrr.items():
            end_mrr[currency] += value
            if value > 0:
                paying[currency] += 1
        currencies = sorted(set(end_mrr) | set(moved))
        for currency in currencies:
            move = moved[currency]
            expected = (
                start_mrr[currency]
                + move["new"]
                + move["reactivation"]
                + move["expansion"]
                - move["contraction"]
                - move["churn"]
            )
            if expected != end_mrr[currency]:
                raise AssertionError(f"MRR movement identity broken for {currency} in {month:%Y-%m}")
        report.append(
            MonthKpis(
                month=f"{month:%Y-%m}",
                start=start,
                end=end,
                mrr={c: _cents(end_mrr[c]) for c in sorted(end_mrr)},
                arr={c: _cents(12 * end_mrr[c]) for c in sorted(end_mrr)},
                mrr_movements={c: {k: _cents(v) for k, v in moved[c].items()} for c in currencies},
                paying_customers={c: paying.get(c, 0) for c in sorted(end_mrr)},
                active_subscriptions=_active_at(timelines, end),
                arpa={c: (_cents(end_mrr[c] / paying[c]) if paying.get(c) else None) for c in sorted(end_mrr)},
                movement_event_ids={c: dict(sources[c]) for c in currencies},
            )
        )
    return report, changes
