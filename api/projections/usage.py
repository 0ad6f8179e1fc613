"""The usage projection: ``subscription_usage``, each user's count per feature and billing
period, rebuilt from the ``usage.recorded`` service events of the log (recording usage itself, with
its limit checked atomically, is a billing action: :mod:`api.billing.usage`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.models import subscription_usage
from api.events import log

__all__ = ["USAGE_EVENT", "rebuild_usage"]

USAGE_EVENT = "usage.recorded"
"""The service event each recorded use of a feature is logged as."""


async def rebuild_usage(conn: AsyncConnection) -> int:
    """Recompute ``subscription_usage`` from the ``usage.recorded`` events of the log."""
    totals: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [None, 0])
    for payload in await log.service_payloads(conn, USAGE_EVENT):
        usage = payload["data"]["object"]
        key = (usage["user_id"], usage["feature"], usage["period_start"])
        totals[key][0] = usage["period_end"]
        totals[key][1] += int(usage["quantity"])
    await conn.execute(delete(subscription_usage))
    if totals:
        await conn.execute(
            insert(subscription_usage),
            [
                {
                    "user_id": user,
                    "feature": feature,
                    "period_start": datetime.fromisoformat(start),
                    "period_end": datetime.fromisoformat(end),
                    "quantity": quantity,
                }
                for (user, feature, start), (end, quantity) in totals.items()
            ],
        )
    return len(totals)
