"""Payment KPIs per month and currency (kpis.md): renewal payment failure rate (first attempts
only, by count and by amount, not reported under a minimum volume), recovery of first-attempt
failures within 30 days, dispute activity, and refunds booked on their own date."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from analytics.engine import Facts, month_index
from analytics.report import MonthKpis

__all__ = ["MIN_PAYMENT_VOLUME", "RECOVERY_DAYS", "PaymentKpis", "PaymentWindow", "payment_window", "payments"]

MIN_PAYMENT_VOLUME = 20
"""Fewer first attempts than this in a period: no failure rate is reported (it would be noise)."""
RECOVERY_DAYS = 30
DAY = 86_400


@dataclass(frozen=True)
class PaymentKpis:
    month: str
    renewal_attempts: dict[str, int]
    payment_failure_rate: dict[str, float | None]
    payment_failure_rate_by_amount: dict[str, float | None]
    failed_amount: dict[str, int]
    recovered_amount: dict[str, int]
    recovery_rate: dict[str, float | None]
    """Of the amounts whose first attempt failed this month: the share paid within 30 days."""
    in_recovery: dict[str, int]
    """Failed this month, not paid, and still within the 30 days as of the log's end."""
    successful_charges: int
    disputes_created: int
    dispute_activity: float | None
    """Disputes opened this month over successful charges this month (the card networks' view)."""
    refunds: dict[str, int] = field(default_factory=dict)
    disputed_charges: int = 0
    """Charges made this month that have been disputed (at any time so far)."""
    dispute_rate: float | None = None
    """``disputed_charges`` over this month's successful charges: the rate by charge month."""


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def _renewals(facts: Facts) -> pl.DataFrame:
    """Renewal invoices with an amount (not the first after a trial), with their first attempt,
    whether it failed, when they were paid and whether they were given up."""
    view = facts.view
    query = f"""
        WITH invoice_events AS (  -- every aggregate below is blind to a duplicated event
            SELECT * FROM {view}
            WHERE object_type = 'invoice' AND billing_reason = 'subscription_cycle' AND type IN (
                'invoice.payment_failed', 'invoice.paid', 'invoice.payment_succeeded',
                'invoice.marked_uncollectible', 'invoice.voided')
        ), invoices AS (
            SELECT object_id, any_value(currency) AS currency, max(amount) AS amount,
                   any_value(subscription_id) AS subscription,
                   any_value(period_start) AS period_start,
                   min(created) FILTER (attempt_count = 1 AND type IN
                       ('invoice.payment_failed', 'invoice.paid', 'invoice.payment_succeeded')) AS first_attempt,
                   coalesce(bool_or(type = 'invoice.payment_failed' AND attempt_count = 1), false) AS first_failed,
                   min(created) FILTER (type IN ('invoice.paid', 'invoice.payment_succeeded')) AS paid_at,
                   coalesce(bool_or(type IN ('invoice.marked_uncollectible', 'invoice.voided')), false) AS lost
            FROM invoice_events GROUP BY object_id
        ), trials AS (
            SELECT DISTINCT object_id AS subscription, trial_end FROM {view}
            WHERE object_type = 'subscription' AND trial_end IS NOT NULL
        )
        SELECT i.* FROM invoices i
        WHERE i.first_attempt IS NOT NULL AND i.amount > 0
          AND NOT EXISTS (SELECT 1 FROM trials t WHERE t.subscription = i.subscription AND t.trial_end = i.period_start)
        """
    return facts.cached("renewals", lambda: facts.sql(query))


def _refunds(facts: Facts) -> pl.DataFrame:
    """Every refund once: id, created, currency, amount (from charges' refund lists and refund events)."""
    found: dict[str, tuple[int, str, int]] = {}
    for (raw,) in facts.con.sql(
        f"SELECT refunds_json FROM {facts.view} WHERE refunds_json IS NOT NULL ORDER BY created, event_id"
    ).fetchall():
        for refund_id, created, currency, amount in json.loads(raw):
            found[refund_id] = (created, currency, amount)
    return pl.DataFrame(
        [(k, *v) for k, v in found.items()],
        schema={"id": pl.String, "created": pl.Int64, "currency": pl.String, "amount": pl.Int64},
        orient="row",
    )


def _counted(facts: Facts, event_type: str) -> pl.DataFrame:
    """Each event of ``event_type`` once, with when it happened and the charge it is about."""
    query = f"SELECT DISTINCT event_id, created, charge_id, object_id FROM {facts.view} WHERE type = $1"
    return facts.cached(f"counted {event_type}", lambda: facts.sql(query, [event_type]))


def payments(facts: Facts, months: Sequence[MonthKpis]) -> list[PaymentKpis]:
    if not months:
        return []
    starts = [m.start for m in months]
    horizon = facts.horizon() or 0
    renewals = _renewals(facts)
    renewals = renewals.with_columns(month_index(starts, renewals["first_attempt"], months[-1].end))
    deadline = pl.col("first_attempt") + RECOVERY_DAYS * DAY
    per_month = (
        renewals.filter(pl.col("month_index") >= 0)
        .group_by(["month_index", "currency"])
        .agg(
            attempts=pl.len(),
            failures=pl.col("first_failed").sum(),
            attempted=pl.col("amount").sum(),
            failed=pl.col("amount").filter(pl.col("first_failed")).sum(),
            recovered=pl.col("amount").filter(pl.col("first_failed") & (pl.col("paid_at") <= deadline)).sum(),
            pending=pl.col("amount")
            .filter(pl.col("first_failed") & pl.col("paid_at").is_null() & ~pl.col("lost") & (deadline > horizon))
            .sum(),
        )
    )
    table = {(row[0], row[1]): row[2:] for row in per_month.iter_rows()}
    charges = _counted(facts, "charge.succeeded")
    charges = charges.with_columns(month_index(starts, charges["created"], months[-1].end))
    disputes = _counted(facts, "charge.dispute.created")
    disputes = disputes.with_columns(month_index(starts, disputes["created"], months[-1].end))
    charge_month = charges.select(charge_id=pl.col("object_id"), charge_month=pl.col("month_index")).unique("charge_id")
    disputed = disputes.join(charge_month, on="charge_id").unique("charge_id")["charge_month"].value_counts()
    disputed_by_month = dict(disputed.iter_rows())
    charge_counts = dict(charges["month_index"].value_counts().iter_rows())
    dispute_counts = dict(disputes["month_index"].value_counts().iter_rows())
    refunds = _refunds(facts)
    refunds = refunds.with_columns(month_index(starts, refunds["created"], months[-1].end))
    booked: dict[int, dict[str, int]] = defaultdict(dict)
    for index, currency, amount in (
        refunds.filter(pl.col("created") < months[-1].end)
        .group_by(["month_index", "currency"])
        .agg(pl.col("amount").sum())
        .iter_rows()
    ):
        booked[index][currency] = amount
    result: list[PaymentKpis] = []
    for index, month in enumerate(months):
        currencies = sorted({c for (i, c) in table if i == index} | set(month.mrr))
        row = {c: table.get((index, c), (0, 0, 0, 0, 0, 0)) for c in currencies}
        charged = charge_counts.get(index, 0)
        enough = {c: row[c][0] >= MIN_PAYMENT_VOLUME for c in currencies}
        result.append(
            PaymentKpis(
                month=month.month,
                renewal_attempts={c: row[c][0] for c in currencies},
                payment_failure_rate={c: _rate(row[c][1], row[c][0]) if enough[c] else None for c in currencies},
                payment_failure_rate_by_amount={
                    c: _rate(row[c][3], row[c][2]) if enough[c] else None for c in currencies
                },
                failed_amount={c: row[c][3] for c in currencies},
                recovered_amount={c: row[c][4] for c in currencies},
                recovery_rate={c: _rate(row[c][4], row[c][3]) for c in currencies},
                in_recovery={c: row[c][5] for c in currencies},
                successful_charges=charged,
                disputes_created=dispute_counts.get(index, 0),
                dispute_activity=_rate(dispute_counts.get(index, 0), charged),
                refunds=dict(sorted(booked.get(index, {}).items())),
                disputed_charges=disputed_by_month.get(index, 0),
                dispute_rate=_rate(disputed_by_month.get(index, 0), charged),
            )
        )
    return result


@dataclass(frozen=True)
class PaymentWindow:
    """Payments over a trailing window (e.g. the last 7 or 30 days) ending at ``until``."""

    days: float
    until: int
    renewal_attempts: int
    payment_failures: int
    payment_failure_rate: float | None
    """None under ``MIN_PAYMENT_VOLUME`` first attempts."""
    successful_charges: int
    disputes_created: int
    dispute_activity: float | None


def payment_window(facts: Facts, days: float, until: int | None = None) -> PaymentWindow:
    """Renewal first attempts, failures and disputes in the ``days`` before ``until`` (default: just
    after the newest event)."""
    end = until if until is not None else (facts.horizon() or 0) + 1
    start = end - int(days * DAY)
    renewals = _renewals(facts).filter((pl.col("first_attempt") >= start) & (pl.col("first_attempt") < end))
    attempts, failures = renewals.height, int(renewals["first_failed"].sum())
    charges = _counted(facts, "charge.succeeded").filter((pl.col("created") >= start) & (pl.col("created") < end))
    disputes = _counted(facts, "charge.dispute.created").filter(
        (pl.col("created") >= start) & (pl.col("created") < end)
    )
    return PaymentWindow(
        days=days,
        until=end,
        renewal_attempts=attempts,
        payment_failures=failures,
        payment_failure_rate=_rate(failures, attempts) if attempts >= MIN_PAYMENT_VOLUME else None,
        successful_charges=charges.height,
        disputes_created=disputes.height,
        dispute_activity=_rate(disputes.height, charges.height),
    )
