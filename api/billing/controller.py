"""``GET /api/plans``: the plan catalogue, public (a pricing page needs it before sign-in)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from api.billing.plans import Plan

__all__ = ["list_plans"]


@get(
    "/api/plans",
    tags=["billing"],
    summary="The plan catalogue",
    description="Plans with their Stripe prices (minor units per interval) and feature limits per billing "
    "period (-1: unlimited; a feature not listed is not included).",
)
async def list_plans(request: Request[Any, Any, Any]) -> list[Plan]:
    return list(request.app.state.plans.plans)
