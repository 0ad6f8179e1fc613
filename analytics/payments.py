"""Payment KPIs per month and currency (kpis.md): renewal payment failure rate (first attempts
only, by count and by amount, not reported under a minimum volume), recovery of first-attempt
failures within 30 days, dispute activity, and refunds booked on their own date."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from analytics.report import MonthKpis
from analytics.sources import distinct
from api.events.model import ParsedEvent
from api.projections.stripe_objects import invoice_subscription_id

__all__ = ["MIN_PAYMENT_VOLUME", "RECOVERY_DAYS", "PaymentKpis", "payments"]

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
    refunds: dict[str, int] = field(default_factory=dict)


@dataclass
class _Invoice:
    currency: str = ""
    amount: int = 0
    reason: str | None = None
    subscription: str | None = None
    period_start: int | None = None
    first_attempt: int | None = None
    first_failed: bool = False
    paid_at: int | None = None
    lost: bool = False


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def payments(events: Iterable[ParsedEvent], months: Sequence[MonthKpis]) -> list[PaymentKpis]:
    invoices: dict[str, _Invoice] = defaultdict(_Invoice)
    trial_ends: dict[str, set[int]] = defaultdict(set)
    charges: list[int] = []
    disputes: list[int] = []
    refunds: dict[str, tuple[int, str, int]] = {}
    unique = distinct(events)
    horizon = max((event.created for event in unique), default=0)
    for event in unique:
        obj = event.obj
        if event.type.startswith("customer.subscription.") and obj.get("trial_end"):
            trial_ends[str(obj.get("id"))].add(int(obj["trial_end"]))
        elif event.object_type == "invoice" and event.type.startswith("invoice."):
            invoice = invoices[str(obj.get("id"))]
            invoice.currency = str(obj.get("currency") or invoice.currency)
            invoice.amount = int(obj.get("amount_due") or invoice.amount or 0)
            invoice.reason = obj.get("billing_reason") or invoice.reason
            invoice.subscription = invoice_subscription_id(obj) or invoice.subscription
            invoice.period_start = obj.get("period_start") or invoice.period_start
            first = int(obj.get("attempt_count") or 0) == 1
            if event.type == "invoice.payment_failed" and first:
                invoice.first_failed = True
                invoice.first_attempt = min(event.created, invoice.first_attempt or event.created)
            elif event.type in ("invoice.paid", "invoice.payment_succeeded"):
                if first:
                    invoice.first_attempt = min(event.created, invoice.first_attempt or event.created)
                invoice.paid_at = min(event.created, invoice.paid_at or event.created)
            elif event.type in ("invoice.marked_uncollectible", "invoice.voided"):
                invoice.lost = True
        elif event.type == "charge.succeeded":
            charges.append(event.created)
        elif event.type == "charge.dispute.created":
            disputes.append(event.created)
        if event.object_type == "charge":
            for refund in (obj.get("refunds") or {}).get("data") or []:
                if isinstance(refund, dict) and refund.get("id"):
                    refunds[refund["id"]] = (
                        int(refund.get("created") or 0),
                        str(refund.get("currency") or ""),
                        int(refund.get("amount") or 0),
                    )
        elif event.object_type == "refund" and obj.get("id"):
            refunds[str(obj["id"])] = (
                int(obj.get("created") or 0),
                str(obj.get("currency") or ""),
                int(obj.get("amount") or 0),
            )

    renewals = [
        inv
        for inv in invoices.values()
        if inv.reason == "subscription_cycle"
        and inv.first_attempt is not None
        and inv.amount > 0
        and not (inv.subscription and inv.period_start in trial_ends.get(inv.subscription, set()))
    ]
    result: list[PaymentKpis] = []
    for month in months:
        attempts: dict[str, int] = defaultdict(int)
        failures: dict[str, int] = defaultdict(int)
        attempted_amount: dict[str, int] = defaultdict(int)
        failed_amount: dict[str, int] = defaultdict(int)
        recovered: dict[str, int] = defaultdict(int)
        pending: dict[str, int] = defaultdict(int)
        for inv in renewals:
            assert inv.first_attempt is not None
            if not month.start <= inv.first_attempt < month.end:
                continue
            attempts[inv.currency] += 1
            attempted_amount[inv.currency] += inv.amount
            if inv.first_failed:
                failures[inv.currency] += 1
                failed_amount[inv.currency] += inv.amount
                deadline = inv.first_attempt + RECOVERY_DAYS * DAY
                if inv.paid_at is not None and inv.paid_at <= deadline:
                    recovered[inv.currency] += inv.amount
                elif inv.paid_at is None and not inv.lost and horizon < deadline:
                    pending[inv.currency] += inv.amount
        currencies = sorted(set(attempts) | set(month.mrr))
        booked: dict[str, int] = defaultdict(int)
        for created, currency, amount in refunds.values():
            if month.start <= created < month.end:
                booked[currency] += amount
        charged = sum(1 for at in charges if month.start <= at < month.end)
        disputed = sum(1 for at in disputes if month.start <= at < month.end)
        result.append(
            PaymentKpis(
                month=month.month,
                renewal_attempts={c: attempts.get(c, 0) for c in currencies},
                payment_failure_rate={
                    c: _rate(failures[c], attempts[c]) if attempts.get(c, 0) >= MIN_PAYMENT_VOLUME else None
                    for c in currencies
                },
                payment_failure_rate_by_amount={
                    c: _rate(failed_amount[c], attempted_amount[c])
                    if attempts.get(c, 0) >= MIN_PAYMENT_VOLUME
                    else None
                    for c in currencies
                },
                failed_amount={c: failed_amount.get(c, 0) for c in currencies},
                recovered_amount={c: recovered.get(c, 0) for c in currencies},
                recovery_rate={c: _rate(recovered.get(c, 0), failed_amount.get(c, 0)) for c in currencies},
                in_recovery={c: pending.get(c, 0) for c in currencies},
                successful_charges=charged,
                disputes_created=disputed,
                dispute_activity=_rate(disputed, charged),
                refunds=dict(sorted(booked.items())),
            )
        )
    return result
