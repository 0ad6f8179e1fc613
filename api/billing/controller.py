"""Billing routes: the plan catalogue (public: a pricing page needs it before sign-in) and the
caller's subscription."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request, get
from litestar.exceptions import NotFoundException

from api.billing.plans import Plan
from api.billing.subscriptions import SubscriptionView, load_subscription
from api.db.engine import Database
from api.security.tokens import Principal
from api.settings import Settings

__all__ = ["get_subscription", "list_plans"]


@get(
    "/api/plans",
    tags=["billing"],
    summary="The plan catalogue",
    description="Plans with their Stripe prices (minor units per interval) and feature limits per billing "
    "period (-1: unlimited; a feature not listed is not included).",
)
async def list_plans(request: Request[Any, Any, Any]) -> list[Plan]:
    return list(request.app.state.plans.plans)


@get(
    "/api/subscription",
    tags=["billing"],
    summary="The caller's subscription",
    description="Plan, status, period, trial, cancellation, payment state (the newest unpaid invoice: "
    "attempts, next retry, decline reason), entitlements under the entitlement policy, and usage in the "
    "current period. 404 when the caller has never subscribed.",
)
async def get_subscription(request: Request[Principal, Any, Any]) -> SubscriptionView:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.processor.settings
    grace = timedelta(days=settings.entitlement_past_due_grace_days)
    async with db.user_bound(request.user.user_id) as conn:
        view = await load_subscription(conn, request.user.user_id, request.app.state.plans, grace)
    if view is None:
        raise NotFoundException(detail="You have no subscription yet; start one with POST /api/checkout.")
    return view
