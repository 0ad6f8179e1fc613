"""What is behind the monthly figures, customer by customer: every MRR movement with the event that
caused it (the lineage the report keeps), and each customer's MRR at each month's end. What the
dashboard drills into from a movement's bar and shows on a customer's page."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analytics.engine import GAINS, LOSSES
from analytics.facts import SCALE
from analytics.report import Report

__all__ = ["Activity", "activity", "quick_ratio"]


@dataclass(frozen=True)
class Activity:
    movements: pl.DataFrame
    """month, at (unix seconds), customer, currency, kind, amount (minor units, positive),
    subscription, event_id: one row per movement."""
    ledger: pl.DataFrame
    """customer, currency, month, mrr (minor units): each customer's MRR at each month's end."""


def activity(report: Report) -> Activity:
    months = pl.Series("labels", [m.month for m in report.all_months], dtype=pl.String)
    moves = report.movement_frame
    if moves.is_empty():
        empty = {"month": pl.String, "customer": pl.String, "currency": pl.String}
        return Activity(
            pl.DataFrame(schema=empty | {"at": pl.Int64, "kind": pl.String, "amount": pl.Float64}),
            pl.DataFrame(schema=empty | {"mrr": pl.Float64}),
        )
    movements = moves.filter((pl.col("month_index") >= 0) & (pl.col("month_index") < len(months)))
    index = movements["month_index"].to_list()
    movements = movements.with_columns(month=pl.Series([months[i] for i in index], dtype=pl.String)).select(
        "month",
        "at",
        "customer",
        "currency",
        "kind",
        amount=((pl.col("after") - pl.col("before")).abs() / SCALE).round(2),
        subscription=pl.col("sub").cast(pl.String),
        event_id=pl.col("event_id"),
    )
    ledger = report.ledger.filter((pl.col("point") >= 1) & (pl.col("point") <= len(months)))
    points = ledger["point"].to_list()
    ledger = ledger.with_columns(month=pl.Series([months[p - 1] for p in points], dtype=pl.String)).select(
        "customer", "currency", "month", mrr=(pl.col("mrr") / SCALE).round(2)
    )
    return Activity(movements.sort("at"), ledger.sort("customer", "currency", "month"))


def quick_ratio(movements: dict[str, int]) -> float | None:
    """(new + expansion + reactivation) / (contraction + churn); None when nothing was lost."""
    gained = sum(movements.get(kind, 0) for kind in GAINS)
    lost = sum(movements.get(kind, 0) for kind in LOSSES)
    return gained / lost if lost else None
