"""Usage metering with the plan's limits (feature gating).

Recording usage is one transaction: the counter moves only if it stays within the limit (one
conditional upsert, so concurrent requests cannot overshoot), and a ``usage.recorded`` service
event goes to the event log, from which ``faddl replay`` rebuilds ``subscription_usage``
(:mod:`api.projections.usage`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.billing.subscriptions import load_subscription
from api.catalogue.plans import UNLIMITED, PlanCatalogue
from api.db.dialects import insert
from api.db.models import subscription_usage
from api.domain_errors import DomainError
from api.events.log import insert_service_event
from api.projections.usage import USAGE_EVENT

__all__ = [
    "USAGE_EVENT",
    "FeatureUsage",
    "UnknownFeature",
    "UsageDenied",
    "UsageReport",
    "UsageRequest",
    "record_usage",
    "usage_report",
]


class UsageRequest(msgspec.Struct, forbid_unknown_fields=True):
    feature: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[a-z][a-z0-9_]*$")]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1


class FeatureUsage(msgspec.Struct):
    feature: str
    used: int
    limit: int
    """-1: unlimited."""
    resets_at: datetime | None


class UsageReport(msgspec.Struct):
    period_start: datetime | None
    period_end: datetime | None
    features: list[FeatureUsage]


class UsageDenied(DomainError):
    """Recording would break the plan (403): the message says why; ``extra`` carries the numbers
    (datetimes stay datetimes, so the response encoder writes them in the API's one RFC 3339 form)."""

    status = 403

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message, extra=extra)


class UnknownFeature(DomainError, ValueError):
    """The plan has no such feature (400): a mistake in the request, not a limit; ``features``
    lists what the plan does meter."""

    status = 400

    def __init__(self, feature: str, features: list[str]) -> None:
        known = ", ".join(features) or "none"
        super().__init__(
            f"Your plan has no feature {feature!r}; its features are: {known}.",
            errors=[{"key": "feature", "message": f"one of: {known}", "source": "body"}],
        )
        self.feature = feature
        self.features = features


@cache
def _add_within_limit(dialect: str, limited: bool) -> Any:
    """Add to the period's counter, creating it if needed; with ``limited``, only while the total
    stays within ``:limit``. Returns the new total, or no row when the limit would be crossed."""
    stmt = insert(subscription_usage, dialect).values(
        user_id=bindparam("user_id"),
        feature=bindparam("feature"),
        period_start=bindparam("period_start", type_=subscription_usage.c.period_start.type),
        period_end=bindparam("period_end", type_=subscription_usage.c.period_end.type),
        quantity=bindparam("quantity"),
    )
    total = subscription_usage.c.quantity + stmt.excluded.quantity
    return stmt.on_conflict_do_update(
        index_elements=["user_id", "feature", "period_start"],
        set_={"quantity": total},
        where=(total <= bindparam("limit")) if limited else None,
    ).returning(subscription_usage.c.quantity)


async def _period(
    conn: AsyncConnection, user_id: str, plans: PlanCatalogue, grace: timedelta
) -> tuple[datetime, datetime, dict[str, int]]:
    view = await load_subscription(conn, user_id, plans, grace)
    if view is None or not view.access:
        raise UsageDenied("You have no active subscription that includes usage.")
    if view.current_period_start is None or view.current_period_end is None:
        raise UsageDenied("Your subscription has no current billing period yet.")
    return view.current_period_start, view.current_period_end, view.entitlements


async def record_usage(
    conn: AsyncConnection, user_id: str, request: UsageRequest, plans: PlanCatalogue, grace: timedelta
) -> FeatureUsage:
    """Count ``request.quantity`` of a feature for the user's current period, within the plan."""
    start, end, limits = await _period(conn, user_id, plans, grace)
    if request.feature not in limits:
        raise UnknownFeature(request.feature, sorted(limits))
    limit = limits[request.feature]
    limited = limit != UNLIMITED
    if limited and request.quantity > limit:
        raise UsageDenied(
            f"{request.quantity} is more than the {request.feature!r} limit of {limit} per period.",
            feature=request.feature,
            limit=limit,
            used=await _used(conn, user_id, request.feature, start),
            resets_at=end,
        )
    params = {
        "user_id": user_id,
        "feature": request.feature,
        "period_start": start,
        "period_end": end,
        "quantity": request.quantity,
        "limit": limit,
    }
    total = (await conn.execute(_add_within_limit(conn.dialect.name, limited), params)).scalar()
    if total is None:
        used = await _used(conn, user_id, request.feature, start)
        raise UsageDenied(
            f"The {request.feature!r} limit of {limit} per period is reached ({used} used).",
            feature=request.feature,
            limit=limit,
            used=used,
            resets_at=end,
        )
    now = datetime.now(UTC)
    await insert_service_event(
        conn,
        event_id=f"faddl_usage_{uuid.uuid4().hex}",
        event_type=USAGE_EVENT,
        created=int(now.timestamp()),
        data={
            "object": {
                "user_id": user_id,
                "feature": request.feature,
                "quantity": request.quantity,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            }
        },
    )
    return FeatureUsage(request.feature, int(total), limit, end)


async def _used(conn: AsyncConnection, user_id: str, feature: str, start: datetime) -> int:
    found = await conn.execute(
        select(subscription_usage.c.quantity).where(
            subscription_usage.c.user_id == user_id,
            subscription_usage.c.feature == feature,
            subscription_usage.c.period_start == start,
        )
    )
    return int(found.scalar() or 0)


async def usage_report(conn: AsyncConnection, user_id: str, plans: PlanCatalogue, grace: timedelta) -> UsageReport:
    """Usage against limits for every feature of the user's plan, this period."""
    view = await load_subscription(conn, user_id, plans, grace)
    if view is None or not view.access:
        return UsageReport(None, None, [])
    end = view.current_period_end
    return UsageReport(
        view.current_period_start,
        end,
        [FeatureUsage(f, view.usage.get(f, 0), limit, end) for f, limit in sorted(view.entitlements.items())],
    )
