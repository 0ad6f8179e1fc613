"""Billing routes: the plan catalogue (public: a pricing page needs it before sign-in) and the
caller's subscription."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import JSONBody

from api.billing.plans import Plan
from api.billing.subscriptions import SubscriptionView, load_subscription
from api.billing.usage import FeatureUsage, UsageDenied, UsageReport, UsageRequest, record_usage, usage_report
from api.db.engine import Database
from api.security.tokens import Principal
from api.settings import Settings

__all__ = ["UsageController", "get_subscription", "list_plans"]


@get(
    "/api/plans",
    tags=["billing"],
    summary="The plan catalogue",
    description="Plans with their Stripe prices (minor units per interval) and feature limits per billing "
    "period (-1: unlimited; a feature not listed is not included).",
)
async def list_plans(request: Request[Any, Any, Any]) -> list[Plan]:
    return list(request.app.state.plans.plans)


def _grace(request: Request[Any, Any, Any]) -> timedelta:
    """How long ``past_due`` keeps access (the entitlement policy's one setting)."""
    settings: Settings = request.app.state.processor.settings
    return timedelta(days=settings.entitlement_past_due_grace_days)


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
    async with db.user_bound(request.user.user_id) as conn:
        view = await load_subscription(conn, request.user.user_id, request.app.state.plans, _grace(request))
    if view is None:
        raise NotFoundException(detail="You have no subscription yet; start one with POST /api/checkout.")
    return view


class UsageController(Controller):
    path = "/api/usage"
    tags = ["billing"]

    @get(summary="Usage against the plan's limits this billing period")
    async def read(self, request: Request[Principal, Any, Any]) -> UsageReport:
        app = request.app
        async with app.state.db.user_bound(request.user.user_id) as conn:
            return await usage_report(conn, request.user.user_id, app.state.plans, _grace(request))

    @post(
        summary="Record usage of a feature",
        description="Counts `quantity` (default 1) of `feature` in the current billing period. 403 when the "
        "plan does not include the feature or the limit would be crossed, with the limit, the usage and "
        "when it resets.",
        status_code=201,
    )
    async def record(self, request: Request[Principal, Any, Any], data: JSONBody[UsageRequest]) -> FeatureUsage:
        app = request.app
        try:
            async with app.state.db.write() as conn:
                return await record_usage(conn, request.user.user_id, data, app.state.plans, _grace(request))
        except UsageDenied as exc:
            raise PermissionDeniedException(detail=str(exc), extra=exc.extra) from None
