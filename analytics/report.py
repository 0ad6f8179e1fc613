"""Monthly KPIs per currency: MRR, ARR, MRR movements (with the identity checked), paying
customers, active subscriptions, plan distribution and ARPA, for calendar months (UTC), from the
engine's movements and change points."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from analytics.engine import (
    MOVEMENT_KINDS,
    Facts,
    cents,
    month_bounds,
    month_index,
    months_between,
    net_movement,
    previous,
)
from analytics.facts import SCALE, facts_table
from api.events.model import ParsedEvent

__all__ = ["MOVEMENT_KINDS", "MonthKpis", "Report", "analyze", "analyze_events", "month_bounds", "monthly_kpis"]


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
    """Subscriptions contributing MRR at the month's end, in every currency."""
    arpa: dict[str, int | None]
    movement_event_ids: dict[str, dict[str, list[str]]]
    """Per currency and kind, the events behind the month's movements."""
    month_to_date: bool = False
    """The month holds the instant the KPIs are as of: every figure is as of then, not its end."""
    mrr_by_plan: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per currency, the MRR of each plan (price lookup key) at the month's end."""
    subscriptions_by_plan: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per currency, the subscriptions of each plan contributing MRR at the month's end."""
    active_subscriptions_by_currency: dict[str, int] = field(default_factory=dict)
    """Per currency, the subscriptions contributing MRR at the month's end (what a page showing
    one currency's MRR counts next to it)."""
    reconstructed: bool = False
    """Some subscription's state in the month is known only from history reconstruction (the
    account's life before it was synced, :mod:`analytics.reconstruction`)."""

    def as_dict(self, with_sources: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "month": self.month,
            "month_to_date": self.month_to_date,
            "reconstructed": self.reconstructed,
            "mrr": self.mrr,
            "arr": self.arr,
            "mrr_movements": self.mrr_movements,
            "paying_customers": self.paying_customers,
            "active_subscriptions": self.active_subscriptions,
            "active_subscriptions_by_currency": self.active_subscriptions_by_currency,
            "arpa": self.arpa,
            "mrr_by_plan": self.mrr_by_plan,
            "subscriptions_by_plan": self.subscriptions_by_plan,
        }
        if with_sources:
            data["movement_event_ids"] = self.movement_event_ids
        return data


@dataclass
class Report:
    """The monthly KPIs and what they were computed from."""

    all_months: list[MonthKpis]
    """Every month from the log's first: what retention, LTV and cohorts are computed over."""
    movement_frame: pl.DataFrame
    """Every MRR movement up to the last month's end (MRR in ``1/SCALE`` of a minor unit)."""
    timelines: pl.DataFrame
    """Every subscription state, in order."""
    months: list[MonthKpis] = field(default_factory=list)
    """The months asked for (``first`` to ``last``)."""

    @cached_property
    def ledger(self) -> pl.DataFrame:
        """Every customer's MRR (scaled) per currency at each month boundary: ``point`` 0 is the
        first month's start, ``point`` i + 1 the end of month i. One row per customer, currency and
        point (0 where it had none)."""
        moves = self.movement_frame
        points = len(self.all_months) + 1
        if moves.is_empty():
            schema = {"cust_k": pl.UInt32, "cur_k": pl.UInt32, "customer": pl.String, "currency": pl.String}
            return pl.DataFrame(schema=schema | {"point": pl.Int64, "mrr": pl.Int64})
        keys = ["cust_k", "cur_k"]
        last = (
            moves.with_columns(point=pl.col("month_index") + 1).group_by([*keys, "point"]).agg(pl.col("after").last())
        )
        grid = (
            moves.select(*keys, "customer", "currency")
            .unique(keys)
            .join(pl.DataFrame({"point": pl.int_range(0, points, eager=True).cast(pl.Int64)}), how="cross")
        )
        # Sorted by key then point, and 0 where a key starts without a value, a plain forward fill
        # never crosses from one customer to the next.
        return (
            grid.join(last, on=[*keys, "point"], how="left")
            .sort([*keys, "point"])
            .with_columns(
                mrr=pl.when((pl.col("point") == 0) & pl.col("after").is_null())
                .then(0)
                .otherwise(pl.col("after"))
                .forward_fill()
            )
            .drop("after")
        )


def _sum_to_months(
    frame: pl.DataFrame, keys: list[str], values: list[str], count: int
) -> dict[tuple[Any, ...], list[int]]:
    """Running totals per key from per-row changes: at index 0 the total before the first month,
    at index i + 1 the total at month i's end."""
    grouped = frame.group_by(["month_index", *keys]).agg([pl.col(v).sum() for v in values])
    totals: dict[tuple[Any, ...], list[int]] = {}
    per_key: dict[tuple[Any, ...], dict[int, tuple[int, ...]]] = defaultdict(dict)
    for row in grouped.iter_rows():
        per_key[tuple(row[1 : 1 + len(keys)])][row[0]] = tuple(row[1 + len(keys) :])
    for key, by_month in per_key.items():
        for position, _ in enumerate(values):
            running = by_month.get(-1, (0,) * len(values))[position]
            series = [running]
            for index in range(count):
                running += by_month.get(index, (0,) * len(values))[position]
                series.append(running)
            totals[(*key, position)] = series
    return totals


def analyze(facts: Facts, first: date | None = None, last: date | None = None, now: int | None = None) -> Report:
    """The KPIs of each calendar month from ``first`` to ``last`` (default: the months the log
    covers), as of ``now`` (default :meth:`Facts.present`): a month that holds ``now`` is month to
    date, and nothing after ``now`` counts (a grace that runs out later this month has not run out).
    Every month from the log's first is computed whatever ``first`` is, so a window never changes
    a figure; ``first`` only selects the months returned."""
    timelines = facts.timelines()
    if timelines.is_empty():
        return Report([], pl.DataFrame(), timelines, [])
    now = facts.present() if now is None else now
    log_first = datetime.fromtimestamp(int(timelines["created"].min()), tz=UTC).date()  # type: ignore[arg-type]
    last = last or datetime.fromtimestamp(int(timelines["created"].max()), tz=UTC).date()  # type: ignore[arg-type]
    months = months_between(min(first, log_first) if first else log_first, last)
    starts = [month_bounds(m)[0] for m in months]
    horizon = min(month_bounds(months[-1])[1], now + 1)
    points = facts.change_points(timelines).filter(pl.col("moment") < horizon)
    moves = Facts.movements(points)
    moves = moves.with_columns(month_index(starts, moves["at"]))
    moves = moves.with_columns(
        delta=pl.col("after") - pl.col("before"),
        paying=(pl.col("after") > 0).cast(pl.Int64) - (pl.col("before") > 0).cast(pl.Int64),
    )
    mrr = _sum_to_months(moves, ["currency"], ["delta", "paying"], len(months))
    in_month = (
        moves.filter(pl.col("month_index") >= 0)
        .group_by(["month_index", "currency", "kind"])
        .agg(amount=pl.col("delta").abs().sum(), ids=pl.col("event_id"))
    )
    moved: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(MOVEMENT_KINDS, 0))
    sources: dict[tuple[int, str], dict[str, list[str]]] = defaultdict(lambda: {k: [] for k in MOVEMENT_KINDS})
    for index, currency, kind, amount, ids in in_month.iter_rows():
        moved[(index, currency)][kind] = amount
        sources[(index, currency)][kind] = ids
    # Subscriptions (and their plans): each point adds its own value and takes back the previous one's.
    flagged = points.with_columns(
        month_index(starts, points["moment"]), flag=(pl.col("value") > 0).cast(pl.Int64)
    ).with_columns(
        prev_value=previous("value", ["sub_k"], 0),
        prev_flag=previous("flag", ["sub_k"], 0),
        prev_plan=previous("plan", ["sub_k"]),
    )
    by_plan = pl.concat(
        [
            flagged.select("month_index", "currency", "plan", "value", "flag"),
            flagged.filter(pl.col("prev_flag") > 0).select(
                "month_index",
                "currency",
                plan=pl.col("prev_plan"),
                value=-pl.col("prev_value"),
                flag=-pl.col("prev_flag"),
            ),
        ]
    ).with_columns(plan=pl.col("plan").fill_null("unknown"), all=pl.lit(0))
    plans = _sum_to_months(by_plan, ["currency", "plan"], ["value", "flag"], len(months))
    active = _sum_to_months(by_plan, ["all"], ["flag"], len(months)).get((0, 0), [0] * (len(months) + 1))
    first_seen = dict(moves.group_by("currency").agg(pl.col("month_index").min()).iter_rows())
    reconstructed = _reconstructed_months(timelines, starts, len(months))
    report: list[MonthKpis] = []
    for index, month in enumerate(months):
        start, end = month_bounds(month)
        shown = sorted(c for c, seen in first_seen.items() if seen <= index)
        end_mrr = {c: mrr[(c, 0)][index + 1] for c in shown}
        start_mrr = {c: mrr[(c, 0)][index] for c in shown}
        paying = {c: mrr[(c, 1)][index + 1] for c in shown}
        for currency in shown:
            move = moved[(index, currency)]
            if start_mrr[currency] + net_movement(move) != end_mrr[currency]:
                raise AssertionError(f"MRR movement identity broken for {currency} in {month:%Y-%m}")
        plan_mrr: dict[str, dict[str, int]] = defaultdict(dict)
        plan_count: dict[str, dict[str, int]] = defaultdict(dict)
        for (currency, plan, position), series in plans.items():
            if series[index + 1] and position == 0:
                plan_mrr[currency][plan] = cents(series[index + 1])
            elif series[index + 1] and position == 1:
                plan_count[currency][plan] = series[index + 1]
        report.append(
            MonthKpis(
                month=f"{month:%Y-%m}",
                start=start,
                end=end,
                month_to_date=start <= now < end - 1,
                mrr={c: cents(end_mrr[c]) for c in shown},
                arr={c: cents(12 * end_mrr[c]) for c in shown},
                mrr_movements={c: {k: cents(v) for k, v in moved[(index, c)].items()} for c in shown},
                paying_customers={c: paying[c] for c in shown},
                active_subscriptions=active[index + 1],
                arpa={c: (round(Fraction(end_mrr[c], SCALE * paying[c])) if paying[c] else None) for c in shown},
                movement_event_ids={c: dict(sources[(index, c)]) for c in shown},
                mrr_by_plan={c: dict(sorted(plan_mrr[c].items())) for c in sorted(plan_mrr)},
                subscriptions_by_plan={c: dict(sorted(plan_count[c].items())) for c in sorted(plan_count)},
                active_subscriptions_by_currency={c: sum(plan_count[c].values()) for c in sorted(plan_count)},
                reconstructed=bool(reconstructed[index]),
            )
        )
    shown = [m for m in report if first is None or m.month >= f"{first:%Y-%m}"]
    return Report(report, moves.drop("delta", "paying"), timelines, shown)


def _reconstructed_months(timelines: pl.DataFrame, starts: list[int], count: int) -> np.ndarray:
    """For each month, whether a reconstructed state holds during it (from its moment to the
    subscription's next state)."""
    spans = timelines.filter(pl.col("reconstructed")).select(
        "created", until=pl.coalesce(pl.col("next_at"), pl.col("created") + 1) - 1
    )
    marks = np.zeros(count + 1, dtype=np.int64)
    if spans.is_empty():
        return marks[:count] > 0
    first = np.clip(month_index(starts, spans["created"]).to_numpy(), 0, count)
    last = np.clip(month_index(starts, spans["until"]).to_numpy(), -1, count - 1)
    kept = first <= last
    np.add.at(marks, first[kept], 1)
    np.add.at(marks, last[kept] + 1, -1)
    return np.cumsum(marks)[:count] > 0


def analyze_events(events: Iterable[ParsedEvent], first: date | None = None, last: date | None = None) -> Report:
    """:func:`analyze` over events in memory (tests, notebooks, ``--events FILE``)."""
    return analyze(Facts(facts_table(events)), first, last)


def monthly_kpis(events: Iterable[ParsedEvent], first: date | None = None, last: date | None = None) -> list[MonthKpis]:
    return analyze_events(events, first, last).months
