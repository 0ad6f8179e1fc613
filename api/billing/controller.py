"""Billing routes: the plan catalogue (public: a pricing page needs it before sign-in), the
caller's subscription and the actions on it, and usage. Thin: the work is in
:mod:`api.billing.actions`, :mod:`api.billing.subscriptions` and :mod:`api.billing.usage`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, HeaderParameter

from api.billing.actions import (
    BillingActions,
    CancelRequest,
    ChangePlanRequest,
    CheckoutRequest,
    CheckoutStarted,
    PortalRequest,
    PortalSession,
)
from api.billing.subscriptions import SubscriptionView
from api.billing.usage import (
    FeatureUsage,
    UsageReport,
    UsageRequest,
    record_usage,
    usage_report,
)
from api.catalogue.plans import Plan
from api.db.engine import Database
from api.security.tokens import Principal

__all__ = [
    "SubscriptionController",
    "UsageController",
    "billing_portal",
    "get_subscription",
    "list_plans",
    "start_checkout",
]


@get(
    "/api/plans",
    tags=["billing"],
    summary="The plan catalogue",
    description="Plans with their Stripe prices (minor units per interval) and feature limits per billing "
    "period (-1: unlimited; a feature not listed is not included).",
)
async def list_plans(request: Request[Any, Any, Any]) -> list[Plan]:
    return list(request.app.state.plans.plans)


def _billing(request: Request[Any, Any, Any]) -> BillingActions:
    billing: BillingActions = request.app.state.billing
    return billing


@get(
    "/api/subscription",
    tags=["billing"],
    opt={"rate_limit": "subscription_read"},
    summary="The caller's subscription",
    description="Plan, status, period, trial, cancellation, payment state (the newest unpaid invoice: "
    "attempts, next retry, decline reason), entitlements under the entitlement policy, and usage in the "
    "current period. 404 when the caller has never subscribed.",
)
async def get_subscription(request: Request[Principal, Any, Any]) -> SubscriptionView:
    return await _billing(request).view(request.user.user_id)  # the same view the actions answer with


def _example(summary: str, value: dict[str, Any]) -> list[Example]:
    return [Example(summary=summary, value=value)]


class UsageController(Controller):
    path = "/api/usage"
    tags = ["billing"]

    @get(summary="Usage against the plan's limits this billing period", opt={"rate_limit": "subscription_read"})
    async def read(self, request: Request[Principal, Any, Any]) -> UsageReport:
        db: Database = request.app.state.db
        user_id = request.user.user_id
        return await db.run(
            lambda conn: usage_report(conn, user_id, request.app.state.plans, _billing(request).grace), user_id=user_id
        )

    @post(
        opt={"rate_limit": "usage"},
        summary="Record usage of a feature",
        description="Counts `quantity` (default 1) of `feature` in the current billing period. 400 when the "
        "plan has no such feature (the answer lists the plan's features); 403 when there is no active subscription "
        "or the limit would be crossed, with the limit, the usage and when it resets.",
        status_code=201,
    )
    async def record(
        self,
        request: Request[Principal, Any, Any],
        data: Annotated[
            UsageRequest, Body(examples=_example("Ten API calls", {"feature": "api_calls", "quantity": 10}))
        ],
    ) -> FeatureUsage:
        db: Database = request.app.state.db
        user_id = request.user.user_id
        return await db.run(
            lambda conn: record_usage(conn, user_id, data, request.app.state.plans, _billing(request).grace), write=True
        )


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=255,
        description="Optional: a retry with the same key acts once at the payment provider.",
    ),
]


_MODIFY = {"rate_limit": "subscription_write", "idempotency": "modify"}
"""Subscription modifications: their rate-limit tier, and their idempotency keys' lifetime."""

_PROBLEMS = {
    400: ResponseSpec(None, description="Unknown plan or no price for the interval/currency (problem+json)."),
    402: ResponseSpec(None, description="The payment was declined (problem+json, with `code`)."),
    409: ResponseSpec(None, description="The subscription's state does not allow this (problem+json)."),
    503: ResponseSpec(None, description="The payment provider is unavailable; see `Retry-After`."),
}


@post(
    "/api/checkout",
    tags=["billing"],
    opt={"rate_limit": "checkout", "idempotency": "checkout"},
    summary="Start a Stripe Checkout for a plan",
    description="Creates a Checkout Session (mode subscription) reusing the caller's Stripe customer, with "
    "`client_reference_id` and `metadata.user_id` set; send the user to `url`. 409 when the caller already has a "
    "live subscription (use change-plan). `success_url` and `cancel_url` are optional, on an origin of "
    "`CHECKOUT_RETURN_ORIGINS` (400 otherwise, naming the allowed origins). In demo mode the URL is a local page "
    "that completes the purchase.",
    status_code=201,
    responses=_PROBLEMS,
)
async def start_checkout(
    request: Request[Principal, Any, Any],
    data: Annotated[
        CheckoutRequest,
        Body(examples=_example("Pro, monthly, in euros", {"plan": "pro", "interval": "month", "currency": "eur"})),
    ],
    idempotency_key: IdempotencyKey = None,
) -> CheckoutStarted:
    return await _billing(request).start_checkout(request.user, data, idempotency_key)


class SubscriptionController(Controller):
    path = "/api/subscription"
    tags = ["billing"]

    @post(
        "/cancel",
        opt=_MODIFY,
        summary="Cancel the subscription",
        description="At the end of the paid period by default (access continues until then); "
        '`{"immediately": true}` ends it now. Answers with the subscription as it now stands.',
        status_code=200,
        responses=_PROBLEMS,
    )
    async def cancel(
        self,
        request: Request[Principal, Any, Any],
        data: Annotated[CancelRequest, Body(examples=_example("At period end", {"immediately": False}))],
        idempotency_key: IdempotencyKey = None,
    ) -> SubscriptionView:
        return await _billing(request).cancel(request.user, data, idempotency_key)

    @post(
        "/resume",
        opt=_MODIFY,
        summary="Take back a cancellation at period end",
        status_code=200,
        responses=_PROBLEMS,
    )
    async def resume(
        self, request: Request[Principal, Any, Any], idempotency_key: IdempotencyKey = None
    ) -> SubscriptionView:
        return await _billing(request).resume(request.user, idempotency_key)

    @post(
        "/change-plan",
        opt=_MODIFY,
        summary="Switch to another plan (with proration)",
        description="Moves the subscription to the plan's price in the subscription's currency (and its interval, "
        "unless `interval` is given). `proration`: `create_prorations` (default, on the next invoice), "
        "`always_invoice` (invoiced now) or `none`.",
        status_code=200,
        responses=_PROBLEMS,
    )
    async def change_plan(
        self,
        request: Request[Principal, Any, Any],
        data: Annotated[
            ChangePlanRequest,
            Body(
                examples=_example(
                    "Upgrade to Business, invoiced now", {"plan": "business", "proration": "always_invoice"}
                )
            ),
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> SubscriptionView:
        return await _billing(request).change_plan(request.user, data, idempotency_key)


@post(
    "/api/billing-portal",
    tags=["billing"],
    opt=_MODIFY,
    summary="Open the Stripe billing portal",
    description="A billing-portal session URL for the caller's Stripe customer (payment methods, invoices). 404 "
    "before the first checkout. The body is optional: `return_url` on an origin of `CHECKOUT_RETURN_ORIGINS` "
    "(400 otherwise, naming the allowed origins).",
    status_code=201,
    responses=_PROBLEMS,
)
async def billing_portal(
    request: Request[Principal, Any, Any],
    data: Annotated[
        PortalRequest | None,
        Body(examples=_example("Back to the mobile app", {"return_url": "myapp://billing/done"})),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> PortalSession:
    return await _billing(request).billing_portal(request.user, data, idempotency_key)
