"""Conversion KPIs per month (kpis.md): checkout sessions completed / created (by the session's
``created``), and trial -> paid: of the trials that ended in the month, the share whose first
invoice with an amount was paid within 30 days of the trial's end (a month whose trials have not
had 30 days yet is marked immature)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from analytics.engine import Facts, month_index
from analytics.report import MonthKpis

__all__ = ["TRIAL_WINDOW_DAYS", "ConversionKpis", "conversion"]

TRIAL_WINDOW_DAYS = 30
DAY = 86_400


@dataclass(frozen=True)
class ConversionKpis:
    month: str
    checkout_sessions: int
    checkouts_completed: int
    checkout_conversion_rate: float | None
    trials_ended: int
    trials_converted: int
    trial_conversion_rate: float | None
    trial_cohort_immature: bool


def conversion(facts: Facts, months: Sequence[MonthKpis]) -> list[ConversionKpis]:
    if not months:
        return []
    view = facts.view
    starts = [m.start for m in months]
    horizon = facts.horizon() or 0
    sessions = facts.sql(
        f"""
        SELECT object_id, min(period_start) AS created, bool_or(type = 'checkout.session.completed') AS completed
        FROM {view} WHERE object_type = 'checkout.session' AND object_id IS NOT NULL GROUP BY object_id
        """
    )
    sessions = sessions.with_columns(month_index(starts, sessions["created"], months[-1].end))
    # A trial's end is the one its newest snapshot names; converted when an invoice with an amount
    # was paid by 30 days after it.
    trials = facts.sql(
        f"""
        WITH ends AS (
            SELECT object_id AS subscription, arg_max(trial_end, created) AS trial_end FROM {view}
            WHERE type LIKE 'customer.subscription.%' AND trial_end IS NOT NULL GROUP BY object_id
        ), paid AS (
            SELECT DISTINCT subscription_id AS subscription, created FROM {view}
            WHERE type = 'invoice.paid' AND amount > 0 AND subscription_id IS NOT NULL
        )
        SELECT e.subscription, e.trial_end,
               EXISTS (SELECT 1 FROM paid p WHERE p.subscription = e.subscription
                       AND p.created <= e.trial_end + {TRIAL_WINDOW_DAYS * DAY}) AS converted
        FROM ends e
        """
    )
    trials = trials.with_columns(month_index(starts, trials["trial_end"], months[-1].end))
    result: list[ConversionKpis] = []
    for index, month in enumerate(months):
        created = sessions.filter(pl.col("month_index") == index)
        done = int(created["completed"].sum())
        ended = trials.filter((pl.col("month_index") == index) & (pl.col("trial_end") < month.end))
        converted = int(ended["converted"].sum())
        result.append(
            ConversionKpis(
                month=month.month,
                checkout_sessions=created.height,
                checkouts_completed=done,
                checkout_conversion_rate=round(done / created.height, 6) if created.height else None,
                trials_ended=ended.height,
                trials_converted=converted,
                trial_conversion_rate=round(converted / ended.height, 6) if ended.height else None,
                trial_cohort_immature=bool(
                    ended.height and int(ended["trial_end"].max()) + TRIAL_WINDOW_DAYS * DAY > horizon  # type: ignore[arg-type]
                ),
            )
        )
    return result
