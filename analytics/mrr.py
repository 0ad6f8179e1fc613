"""One subscription event as the KPIs see it: its state (MRR per docs/kpis.md: unit price x
quantity normalised to a month, less the recurring discounts in force, exact as a fraction) and its
snapshot for ordering (the projections' own rule, :mod:`api.stripe_objects.ordering`).
:mod:`analytics.facts` stores both with each event; :mod:`analytics.engine` builds the timelines
and the movements from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from api.events.model import ParsedEvent
from api.stripe_objects.fields import subscription_row
from api.stripe_objects.kinds import KINDS
from api.stripe_objects.ordering import Snapshot

__all__ = [
    "MONTHS_PER_INTERVAL",
    "PAST_DUE_GRACE_DAYS",
    "STALE_GRACE_DAYS",
    "SubscriptionState",
    "state_of",
]

PAST_DUE_GRACE_DAYS = 30
STALE_GRACE_DAYS = 3
"""Default of ``ANALYTICS_STALE_GRACE_DAYS``: a subscription whose period ended this long ago with no
renewal seen stops counting."""
DAY = 86_400
_SUBSCRIPTION = KINDS["subscription"]
MONTHS_PER_INTERVAL = {"day": Fraction(12, 365), "week": Fraction(12, 52), "month": Fraction(1), "year": Fraction(12)}


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as of ``at`` (the ``created`` of the event that reported it)."""

    subscription_id: str
    customer_id: str
    at: int
    event_id: str
    status: str
    currency: str
    full_mrr: Fraction
    """MRR if the subscription counts at all (before the status rule)."""
    discount_ends: int | None = None
    """When a ``repeating`` discount stops reducing ``full_mrr``."""
    undiscounted_mrr: Fraction = Fraction(0)
    cancel_at_period_end: bool = False
    period_end: int | None = None
    """End of the current billing period (epoch seconds)."""
    user_id: str | None = None
    delinquent: bool = False
    """The subscription ended or stopped counting because payment failed (``unpaid``, or canceled
    with ``cancellation_details.reason == "payment_failed"``), not by the customer's choice."""
    plan: str | None = None
    """The price's ``lookup_key`` (else its id): what the plan distribution groups by."""


def _monthly(row: dict[str, Any]) -> Fraction:
    amount = Fraction(int(row.get("unit_amount") or 0) * int(row.get("quantity") or 1))
    months = MONTHS_PER_INTERVAL.get(row.get("interval") or "month", Fraction(1)) * max(
        1, int(row.get("interval_count") or 1)
    )
    return amount / months


def _discounted(monthly: Fraction, row: dict[str, Any]) -> tuple[Fraction, int | None]:
    """MRR after the recurring discounts in force, and when a repeating one ends."""
    raw = row.get("discount")
    discounts = json.loads(raw) if raw else []
    value, ends = monthly, None
    months = MONTHS_PER_INTERVAL.get(row.get("interval") or "month", Fraction(1)) * max(
        1, int(row.get("interval_count") or 1)
    )
    for discount in discounts:
        duration = discount.get("duration")
        if duration == "once" or (duration is None and "coupon" not in discount):
            continue
        if duration == "repeating" and discount.get("end"):
            ends = int(discount["end"]) if ends is None else min(ends, int(discount["end"]))
        percent = discount.get("percent_off")
        if percent:
            value *= 1 - Fraction(str(percent)) / 100
        amount_off = discount.get("amount_off")
        if amount_off:
            value = max(Fraction(0), value - Fraction(int(amount_off)) / months)
    return value, ends


def _plan(obj: dict[str, Any]) -> str | None:
    items = (obj.get("items") or {}).get("data") or []
    first = items[0] if items and isinstance(items[0], dict) else {}
    price = first.get("price") or first.get("plan") or {}
    if not isinstance(price, dict):
        return None
    value = price.get("lookup_key") or price.get("nickname") or price.get("id")
    return str(value) if value else None


def state_of(event: ParsedEvent) -> tuple[Snapshot, SubscriptionState]:
    """One subscription event as a snapshot (for ordering) and a state (for MRR)."""
    row = subscription_row(event.obj, event.type)
    snapshot = Snapshot(
        event_id=event.event_id,
        created=event.created,
        event_type=event.type,
        obj=event.obj,
        previous_attributes=event.previous_attributes,
        terminal=_SUBSCRIPTION.terminal(row),
        rank=_SUBSCRIPTION.rank(row),
    )
    monthly = _monthly(row)
    mrr, ends = _discounted(monthly, row)
    state = SubscriptionState(
        subscription_id=row["stripe_subscription_id"],
        customer_id=row["stripe_customer_id"],
        at=event.created,
        event_id=event.event_id,
        status=row["status"],
        currency=row.get("currency") or "unknown",
        full_mrr=mrr,
        discount_ends=ends,
        undiscounted_mrr=monthly,
        cancel_at_period_end=bool(row.get("cancel_at_period_end")),
        period_end=int(row["current_period_end"].timestamp()) if row.get("current_period_end") else None,
        user_id=row.get("metadata_user_id"),
        delinquent=row["status"] == "unpaid"
        or (event.obj.get("cancellation_details") or {}).get("reason") == "payment_failed",
        plan=_plan(event.obj),
    )
    return snapshot, state
