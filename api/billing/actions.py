"""Billing actions a user takes: start a checkout, cancel, resume, change plan, open the billing
portal. Each checks the request against the user's current state (from the projections), asks the
payment provider (:mod:`api.gateway`), and records a service event in the log so analytics sees
the funnel. The provider's webhooks remain the source of truth for the state itself.

A provider call is never made inside a database transaction: a slow Stripe must not hold locks.
"""

from __future__ import annotations

import hashlib
import html
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

import msgspec
import nh3
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.billing.return_urls import MAX_RETURN_URL_LENGTH, allowed_origins, check_return_url
from api.billing.subscriptions import SubscriptionView, load_subscription
from api.catalogue.plans import Plan, PlanCatalogue, PlanPrice
from api.db.engine import Database
from api.db.models import customers
from api.domain_errors import DomainError
from api.events.log import insert_service_event
from api.gateway.base import CancellationDetails, CheckoutParams, PaymentGateway, ProrationBehavior
from api.ingest.processing import EventProcessor
from api.security.tokens import Principal
from api.settings import Settings

__all__ = [
    "ACTION_EVENTS",
    "BillingActions",
    "BillingConflict",
    "BillingNotFound",
    "CancelRequest",
    "ChangePlanRequest",
    "CheckoutRequest",
    "CheckoutStarted",
    "InvalidBillingRequest",
    "PortalRequest",
    "PortalSession",
]

LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "paused")
"""A subscription in one of these blocks a new checkout (``incomplete`` does not: its first payment
failed, and the user may try again)."""

ACTION_EVENTS = {
    "checkout": "checkout.started",
    "cancel": "subscription.cancel_requested",
    "resume": "subscription.resume_requested",
    "change-plan": "subscription.plan_change_requested",
    "portal": "billing_portal.opened",
}
"""Service event written for each action (the funnel analytics reads)."""

PlanId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[a-z0-9][a-z0-9_-]*$")]
Currency = Annotated[str, msgspec.Meta(pattern="^[a-z]{3}$")]
Interval = Literal["month", "year"]


ReturnUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_RETURN_URL_LENGTH)]


class CheckoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    plan: PlanId
    interval: Interval = "month"
    currency: Currency | None = None
    """Three-letter lower-case code; default: the user's existing currency, else USD."""
    trial_days: Annotated[int, msgspec.Meta(ge=1, le=90)] | None = None
    success_url: ReturnUrl | None = None
    """Where Checkout sends the user after paying (``{CHECKOUT_SESSION_ID}`` is replaced by the
    session id); on an origin of ``CHECKOUT_RETURN_ORIGINS``. Default: ``APP_RETURN_URL`` with
    ``?checkout=success&session_id=...``."""
    cancel_url: ReturnUrl | None = None
    """Where Checkout sends the user who goes back; same rule. Default: ``APP_RETURN_URL`` with
    ``?checkout=canceled``."""


class PortalRequest(msgspec.Struct, forbid_unknown_fields=True):
    return_url: ReturnUrl | None = None
    """Where the billing portal's "return" link goes; on an origin of ``CHECKOUT_RETURN_ORIGINS``.
    Default: ``APP_RETURN_URL`` with ``?portal=done``."""


class CheckoutStarted(msgspec.Struct):
    session_id: str
    url: str
    """Send the user here to pay (Stripe Checkout, or the local demo checkout page)."""
    expires_at: int
    plan: str
    price_id: str


CancellationFeedback = Literal[
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
]


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    immediately: bool = False
    """False (default): cancel at the end of the paid period; true: end the subscription now."""
    feedback: CancellationFeedback | None = None
    """Why, in Stripe's categories (kept on the subscription's ``cancellation_details``)."""
    comment: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Free text from the user; markup is removed (``nh3``) before it is stored or sent."""

    def clean_comment(self) -> str | None:
        if self.comment is None:
            return None
        text = nh3.clean(self.comment, tags=set(), attributes={}).strip()
        return html.unescape(text) or None


class ChangePlanRequest(msgspec.Struct, forbid_unknown_fields=True):
    plan: PlanId
    interval: Interval | None = None
    """Default: keep the current billing interval."""
    proration: ProrationBehavior = "create_prorations"
    """``create_prorations``: the difference goes on the next invoice; ``always_invoice``: it is
    invoiced now; ``none``: no proration."""


class PortalSession(msgspec.Struct):
    url: str


class InvalidBillingRequest(DomainError, ValueError):
    """The request cannot be served as asked (400); the message says why."""

    status = 400


class BillingConflict(DomainError):
    """The user's current state does not allow the action (409); the message says what to do."""

    status = 409


class BillingNotFound(DomainError):
    """Nothing to act on (404)."""

    status = 404


@dataclass(frozen=True)
class _Account:
    """What an action needs to know about the user: their Stripe customer and subscription."""

    customer_id: str | None
    subscription: SubscriptionView | None


def action_key(user_id: str, action: str, client_key: str | None) -> str:
    """The idempotency key sent to the provider: the client's ``Idempotency-Key`` scoped to the user
    and action (so a retry acts once), or a fresh one."""
    if client_key:
        digest = hashlib.sha256(f"{user_id}\0{action}\0{client_key}".encode()).hexdigest()[:40]
        return f"faddl-{action}-{digest}"
    return f"faddl-{action}-{uuid.uuid4().hex}"


class BillingActions:
    def __init__(
        self, db: Database, processor: EventProcessor, gateway: PaymentGateway, plans: PlanCatalogue, settings: Settings
    ) -> None:
        self.db = db
        self.processor = processor
        self.gateway = gateway
        self.plans = plans
        self.settings = settings
        self.return_origins = allowed_origins(settings.checkout_return_origins, settings.return_url)

    def _return_url(self, field: str, url: str | None, default: str) -> str:
        """The client's own return URL when its origin is allowed (else 400); ``default`` without one."""
        return default if url is None else check_return_url(field, url, self.return_origins)

    @property
    def grace(self) -> timedelta:
        """How long ``past_due`` keeps access (the entitlement policy's one setting)."""
        return timedelta(days=self.settings.entitlement_past_due_grace_days)

    async def _account(self, user_id: str) -> _Account:
        async def read(conn: AsyncConnection) -> _Account:
            view = await load_subscription(conn, user_id, self.plans, self.grace)
            row = (
                await conn.execute(
                    select(customers.c.stripe_customer_id)
                    .where(and_(customers.c.user_id == user_id, customers.c.deleted.is_(False)))
                    .order_by(customers.c.created.desc())
                    .limit(1)
                )
            ).first()
            return _Account(customer_id=row.stripe_customer_id if row else None, subscription=view)

        return await self.db.run(read, user_id=user_id)

    async def view(self, user_id: str) -> SubscriptionView:
        view = await self.db.run(lambda conn: load_subscription(conn, user_id, self.plans, self.grace), user_id=user_id)
        if view is None:
            raise BillingNotFound("You have no subscription yet; start one with POST /api/checkout.")
        return view

    async def _record(
        self, action: str, key: str, user_id: str, object_id: str | None, customer_id: str | None, data: dict[str, Any]
    ) -> None:
        created = int(time.time())
        await self.db.run(
            lambda conn: insert_service_event(
                conn,
                event_id=f"svc_{key}",
                event_type=ACTION_EVENTS[action],
                created=created,
                data={"object": {"user_id": user_id, **data}},
                object_id=object_id,
                customer_id=customer_id,
            ),
            write=True,
        )

    def _plan(self, plan_id: str) -> Plan:
        plan = self.plans.plan(plan_id)
        if plan is None:
            known = ", ".join(p.id for p in self.plans.plans)
            raise InvalidBillingRequest(f"There is no plan {plan_id!r}; choose one of: {known}.")
        return plan

    @staticmethod
    def _price(plan: Plan, interval: str, currency: str | None) -> PlanPrice:
        fits = [p for p in plan.prices if p.interval == interval and (currency is None or p.currency == currency)]
        if not fits:
            offered = ", ".join(sorted(f"{p.interval}ly {p.currency.upper()}" for p in plan.prices))
            wanted = f"{interval}ly" + (f" {currency.upper()}" if currency else "")
            raise InvalidBillingRequest(f"Plan {plan.id!r} has no {wanted} price; it is offered {offered}.")
        return next((p for p in fits if p.currency == "usd"), fits[0]) if currency is None else fits[0]

    def _live(self, account: _Account) -> SubscriptionView:
        sub = account.subscription
        if sub is None or sub.status not in LIVE_STATUSES:
            raise BillingConflict("You have no active subscription; start one with POST /api/checkout.")
        return sub

    async def start_checkout(
        self, principal: Principal, request: CheckoutRequest, client_key: str | None
    ) -> CheckoutStarted:
        user_id = principal.user_id
        plan = self._plan(request.plan)
        account = await self._account(user_id)
        current = account.subscription
        if current is not None and current.status in LIVE_STATUSES:
            name = current.plan.name if current.plan else current.price_id
            status = current.status.replace("_", " ")
            article = "an" if status[0] in "aeiou" else "a"
            raise BillingConflict(
                f"You already have {article} {status} subscription ({name}); "
                "switch plans with POST /api/subscription/change-plan."
            )
        currency = request.currency or (current.currency if current else None)
        price = self._price(plan, request.interval, currency)
        return_url = self.settings.return_url
        success_url = self._return_url(
            "success_url", request.success_url, f"{return_url}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"
        )
        cancel_url = self._return_url("cancel_url", request.cancel_url, f"{return_url}?checkout=canceled")
        key = action_key(user_id, "checkout", client_key)
        email = principal.claims.get("email")
        session = await self.gateway.create_checkout_session(
            CheckoutParams(
                user_id=user_id,
                price_id=price.price_id,
                customer_id=account.customer_id,
                email=email if isinstance(email, str) else None,
                trial_days=request.trial_days,
                success_url=success_url,
                cancel_url=cancel_url,
                idempotency_key=key,
            )
        )
        await self._record(
            "checkout",
            key,
            user_id,
            session.id,
            account.customer_id,
            {
                "id": session.id,
                "plan": plan.id,
                "price_id": price.price_id,
                "currency": price.currency,
                "interval": price.interval,
                "unit_amount": price.unit_amount,
                "trial_days": request.trial_days,
                "customer": account.customer_id,
                "email": email if isinstance(email, str) else None,
                "url": session.url,
                "expires_at": session.expires_at,
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
        )
        return CheckoutStarted(
            session_id=session.id,
            url=session.url,
            expires_at=session.expires_at or 0,
            plan=plan.id,
            price_id=price.price_id,
        )

    async def _confirm(self, user_id: str, returned: dict[str, Any] | None) -> SubscriptionView:
        """Apply what the provider returned (when it has not delivered its events itself), then
        answer with the subscription as the user now has it."""
        if returned is not None:
            ended = returned.get("status") in ("canceled", "incomplete_expired")
            await self.processor.observe(
                returned, "customer.subscription.deleted" if ended else "customer.subscription.updated"
            )
        return await self.view(user_id)

    async def cancel(self, principal: Principal, request: CancelRequest, client_key: str | None) -> SubscriptionView:
        user_id = principal.user_id
        sub = self._live(await self._account(user_id))
        if sub.cancel_at_period_end and not request.immediately:
            raise BillingConflict(
                "Your subscription is already set to end at the end of the period; "
                'send {"immediately": true} to end it now, or resume it with POST /api/subscription/resume.'
            )
        key = action_key(user_id, "cancel", client_key)
        comment = request.clean_comment()
        returned = await self.gateway.cancel_subscription(
            sub.subscription_id,
            at_period_end=not request.immediately,
            idempotency_key=key,
            details=CancellationDetails(feedback=request.feedback, comment=comment),
        )
        await self._record(
            "cancel",
            key,
            user_id,
            sub.subscription_id,
            None,
            {
                "subscription": sub.subscription_id,
                "immediately": request.immediately,
                "feedback": request.feedback,
                "comment": comment,
            },
        )
        return await self._confirm(user_id, returned)

    async def resume(self, principal: Principal, client_key: str | None) -> SubscriptionView:
        user_id = principal.user_id
        sub = self._live(await self._account(user_id))
        if not sub.cancel_at_period_end:
            raise BillingConflict("Your subscription is not set to cancel; there is nothing to resume.")
        key = action_key(user_id, "resume", client_key)
        returned = await self.gateway.resume_subscription(sub.subscription_id, idempotency_key=key)
        await self._record("resume", key, user_id, sub.subscription_id, None, {"subscription": sub.subscription_id})
        return await self._confirm(user_id, returned)

    async def change_plan(
        self, principal: Principal, request: ChangePlanRequest, client_key: str | None
    ) -> SubscriptionView:
        user_id = principal.user_id
        plan = self._plan(request.plan)
        sub = self._live(await self._account(user_id))
        if sub.status not in ("active", "trialing"):
            raise BillingConflict(f"Your subscription is {sub.status}; settle the open invoice before changing plans.")
        interval = request.interval or sub.interval or "month"
        price = self._price(plan, interval, sub.currency)
        if price.price_id == sub.price_id:
            raise BillingConflict(f"You are already on {plan.name} ({interval}ly).")
        key = action_key(user_id, "change-plan", client_key)
        returned = await self.gateway.change_price(
            sub.subscription_id, price.price_id, proration=request.proration, idempotency_key=key
        )
        await self._record(
            "change-plan",
            key,
            user_id,
            sub.subscription_id,
            None,
            {
                "subscription": sub.subscription_id,
                "from_price": sub.price_id,
                "from_plan": sub.plan.id if sub.plan else None,
                "to_price": price.price_id,
                "to_plan": plan.id,
                "proration": request.proration,
            },
        )
        return await self._confirm(user_id, returned)

    async def billing_portal(
        self, principal: Principal, request: PortalRequest | None, client_key: str | None
    ) -> PortalSession:
        user_id = principal.user_id
        back = self._return_url(
            "return_url", request.return_url if request else None, f"{self.settings.return_url}?portal=done"
        )
        account = await self._account(user_id)
        if account.customer_id is None:
            raise BillingNotFound("You have no billing account yet; start a subscription with POST /api/checkout.")
        key = action_key(user_id, "portal", client_key)
        session = await self.gateway.create_portal_session(account.customer_id, back, idempotency_key=key)
        await self._record(
            "portal",
            key,
            user_id,
            session.id,
            account.customer_id,
            {
                "id": session.id,
                "customer": account.customer_id,
                "url": session.url,
                "expires_at": session.expires_at,
                "return_url": back,
            },
        )
        return PortalSession(url=session.url)
