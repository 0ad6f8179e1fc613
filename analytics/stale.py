"""Stale subscriptions: still ``active`` (or ``past_due``, ``trialing``) by their newest snapshot,
though their current period ended longer ago than the stale grace and no renewal was seen (a
history that stops, missed webhooks). The engine stops counting their MRR after the grace
(:meth:`analytics.engine.Facts.change_points`); this lists them, as of an instant, for the KPI
document, the dashboard and ops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from analytics.engine import DAY, Facts, cents

__all__ = ["StaleSubscription", "stale_subscriptions"]

_LIVE = ("active", "past_due", "trialing")


@dataclass(frozen=True)
class StaleSubscription:
    subscription_id: str
    customer_id: str
    status: str
    currency: str
    mrr: int
    """What it counted before it went stale, in minor units (0 for a trial)."""
    period_end: str
    days_since_period_end: int


def stale_subscriptions(facts: Facts, now: int) -> list[StaleSubscription]:
    """Subscriptions stale at ``now``, the longest stale first."""
    timelines = facts.timelines().filter(pl.col("created") <= now)
    if timelines.is_empty():
        return []
    latest = timelines.group_by("sub_k").agg(pl.all().last())
    stale = latest.filter(
        pl.col("status").is_in(_LIVE)
        & pl.col("period_end").is_not_null()
        & (pl.col("period_end") + facts.stale_grace < now)
    ).sort(["period_end", "sub"])
    return [
        StaleSubscription(
            subscription_id=row["sub"],
            customer_id=row["customer"],
            status=row["status"],
            currency=row["currency"],
            mrr=cents(row["mrr"]) if row["status"] != "trialing" else 0,
            period_end=datetime.fromtimestamp(row["period_end"], tz=UTC).isoformat(),
            days_since_period_end=(now - row["period_end"]) // DAY,
        )
        for row in stale.iter_rows(named=True)
    ]
