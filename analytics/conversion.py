"""Conversion KPIs per month (kpis.md): checkout sessions completed / created (by the session's
``created``), and trial -> paid: of the trials that ended in the month, the share whose first
invoice with an amount was paid within 30 days of the trial's end (a month whose trials have not
had 30 days yet is marked immature)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analytics.report import MonthKpis
from analytics.sources import distinct
from api.events.model import ParsedEvent
from api.projections.stripe_objects import invoice_subscription_id

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


def conversion(events: Iterable[ParsedEvent], months: Sequence[MonthKpis]) -> list[ConversionKpis]:
    sessions: dict[str, int] = {}
    completed: set[str] = set()
    trial_end: dict[str, int] = {}
    paid: dict[str, list[int]] = defaultdict(list)  # subscription -> paid times of invoices with an amount
    unique = distinct(events)
    horizon = max((event.created for event in unique), default=0)
    for event in unique:
        obj = event.obj
        if event.object_type == "checkout.session" and obj.get("id"):
            sessions.setdefault(str(obj["id"]), int(obj.get("created") or event.created))
            if event.type == "checkout.session.completed":
                completed.add(str(obj["id"]))
        elif event.type.startswith("customer.subscription.") and obj.get("trial_end"):
            trial_end[str(obj["id"])] = int(obj["trial_end"])
        elif event.type == "invoice.paid" and int(obj.get("amount_due") or 0) > 0:
            subscription = invoice_subscription_id(obj)
            if subscription:
                paid[subscription].append(event.created)
    result: list[ConversionKpis] = []
    for month in months:
        created = [s for s, at in sessions.items() if month.start <= at < month.end]
        done = sum(1 for s in created if s in completed)
        ended = [(s, at) for s, at in trial_end.items() if month.start <= at < month.end]
        converted = sum(1 for s, at in ended if any(t <= at + TRIAL_WINDOW_DAYS * DAY for t in paid.get(s, [])))
        result.append(
            ConversionKpis(
                month=month.month,
                checkout_sessions=len(created),
                checkouts_completed=done,
                checkout_conversion_rate=round(done / len(created), 6) if created else None,
                trials_ended=len(ended),
                trials_converted=converted,
                trial_conversion_rate=round(converted / len(ended), 6) if ended else None,
                trial_cohort_immature=any(at + TRIAL_WINDOW_DAYS * DAY > horizon for _, at in ended),
            )
        )
    return result
