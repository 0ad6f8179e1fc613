"""A user's subscription as the client app sees it: plan, status, period, trial, cancellation,
payment state, and what it entitles the user to now.

Entitlement policy (one place, stated here): ``active`` and ``trialing`` grant the plan's features;
``past_due`` keeps them for ``ENTITLEMENT_PAST_DUE_GRACE_DAYS`` after the unpaid invoice was issued;
a cancellation at period end keeps them until the subscription actually ends (it stays ``active``);
every other status (``incomplete``, ``unpaid``, ``paused``, ``canceled``, ``incomplete_expired``)
grants nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import and_, case, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.catalogue.plans import PlanCatalogue
from api.db.dialects import utc
from api.db.models import payment_history, subscription_usage, user_subscriptions

__all__ = ["PaymentState", "PlanRef", "SubscriptionView", "entitled", "load_subscription"]

_ENDED = ("canceled", "incomplete_expired")


class PlanRef(msgspec.Struct):
    id: str
    name: str


class PaymentState(msgspec.Struct):
    """The newest unpaid invoice, when there is one."""

    invoice_id: str
    status: str | None
    amount_due: int
    currency: str | None
    attempt_count: int
    next_payment_attempt: datetime | None
    action_required: bool
    failure_code: str | None
    failure_message: str | None
    hosted_invoice_url: str | None
    created: datetime | None


class SubscriptionView(msgspec.Struct):
    subscription_id: str
    status: str
    plan: PlanRef | None
    price_id: str | None
    interval: str | None
    quantity: int | None
    unit_amount: int | None
    currency: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    access: bool
    """Whether the subscription grants its plan's features right now (see the policy above)."""
    entitlements: dict[str, int]
    """Feature -> limit per billing period (-1: unlimited), empty without access."""
    usage: dict[str, int]
    """Feature -> usage counted in the current billing period."""
    payment: PaymentState | None


def entitled(status: str, payment: PaymentState | None, grace: timedelta, now: datetime) -> bool:
    """The entitlement policy of this module's docstring."""
    if status in ("active", "trialing"):
        return True
    if status == "past_due":
        issued = utc(payment.created) if payment is not None else None
        return issued is None or now - issued <= grace
    return False


async def load_subscription(
    conn: AsyncConnection, user_id: str, plans: PlanCatalogue, grace: timedelta, now: datetime | None = None
) -> SubscriptionView | None:
    """The user's current subscription (the newest that has not ended, else the newest), or None.
    ``conn`` should be user-bound; the query filters by user as well, for databases without RLS."""
    subs = user_subscriptions
    ended_last = case((subs.c.status.in_(_ENDED), 1), else_=0)
    row = (
        (
            await conn.execute(
                select(subs).where(subs.c.user_id == user_id).order_by(ended_last, subs.c.created.desc()).limit(1)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    invoices = payment_history
    open_invoice = (
        (
            await conn.execute(
                select(invoices)
                .where(
                    and_(
                        invoices.c.user_id == user_id,
                        invoices.c.stripe_subscription_id == row["stripe_subscription_id"],
                        invoices.c.status.in_(("open", "uncollectible")),
                    )
                )
                .order_by(invoices.c.created.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    payment = _payment(open_invoice) if open_invoice is not None else None
    plan = plans.plan_for_price(row["price_id"])
    access = entitled(row["status"], payment, grace, now or datetime.now(UTC))
    usage: dict[str, int] = {}
    if row["current_period_start"] is not None:
        usage_rows = await conn.execute(
            select(subscription_usage.c.feature, subscription_usage.c.quantity).where(
                and_(
                    subscription_usage.c.user_id == user_id,
                    subscription_usage.c.period_start == row["current_period_start"],
                )
            )
        )
        usage = {r.feature: int(r.quantity) for r in usage_rows}
    return SubscriptionView(
        subscription_id=row["stripe_subscription_id"],
        status=row["status"],
        plan=PlanRef(plan.id, plan.name) if plan else None,
        price_id=row["price_id"],
        interval=row["interval"],
        quantity=row["quantity"],
        unit_amount=row["unit_amount"],
        currency=row["currency"],
        current_period_start=utc(row["current_period_start"]),
        current_period_end=utc(row["current_period_end"]),
        trial_start=utc(row["trial_start"]),
        trial_end=utc(row["trial_end"]),
        cancel_at_period_end=row["cancel_at_period_end"],
        cancel_at=utc(row["cancel_at"]),
        canceled_at=utc(row["canceled_at"]),
        ended_at=utc(row["ended_at"]),
        access=access,
        entitlements=dict(plan.features) if plan and access else {},
        usage=usage,
        payment=payment,
    )


def _payment(row: Any) -> PaymentState:
    return PaymentState(
        invoice_id=row["stripe_invoice_id"],
        status=row["status"],
        amount_due=row["amount_due"],
        currency=row["currency"],
        attempt_count=row["attempt_count"],
        next_payment_attempt=utc(row["next_payment_attempt"]),
        action_required=row["action_required"],
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
        hosted_invoice_url=row["hosted_invoice_url"],
        created=utc(row["created"]),
    )
