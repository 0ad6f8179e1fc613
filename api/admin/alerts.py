"""Admin routes over the business alerts: their history (open ones first) and acknowledgement."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from sqlalchemy import Row, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database
from api.db.models import alerts
from api.db.sql import utc
from api.security.middleware import requires_admin
from api.security.tokens import Principal

__all__ = ["AdminAlertsController", "AlertView", "acknowledge_alert", "recent_alerts"]


class AlertView(msgspec.Struct):
    id: int
    rule: str
    key: str
    severity: str
    status: str
    """``firing`` or ``resolved``."""
    value: float | None
    threshold: float | None
    message: str
    recommendation: str
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    notified_at: datetime | None
    delivery: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


def _view(row: Row[Any]) -> AlertView:
    data = dict(row._mapping)
    for name in ("first_seen_at", "last_seen_at", "resolved_at", "notified_at", "acknowledged_at"):
        data[name] = utc(data[name])
    return AlertView(**data)


async def recent_alerts(db: Database, limit: int, status: str | None = None) -> list[AlertView]:
    """Open alerts first, then the newest."""
    query = select(alerts).order_by(case((alerts.c.status == "firing", 0), else_=1), alerts.c.id.desc()).limit(limit)
    if status:
        query = query.where(alerts.c.status == status)

    async def read(conn: AsyncConnection) -> list[AlertView]:
        return [_view(row) for row in (await conn.execute(query)).all()]

    return await db.run(read)


async def acknowledge_alert(db: Database, alert_id: int, who: str) -> AlertView | None:
    """Record who acknowledged an alert, and when (the first acknowledgement stands); None when
    there is no such alert."""

    async def acknowledge(conn: AsyncConnection) -> Any:
        await conn.execute(
            update(alerts)
            .where((alerts.c.id == alert_id) & alerts.c.acknowledged_at.is_(None))
            .values(acknowledged_at=datetime.now(UTC), acknowledged_by=who)
        )
        return (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).first()

    row = await db.run(acknowledge, write=True)  # safe to run again: the first acknowledgement stands
    return _view(row) if row is not None else None


class AdminAlertsController(Controller):
    path = "/api/admin/alerts"
    tags = ["admin"]
    guards = [requires_admin]

    @get("/", summary="Business alerts", description="Open alerts first, then the newest resolved ones.")
    async def list_alerts(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[str | None, QueryParameter(pattern="^(firing|resolved)$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[AlertView]:
        return await recent_alerts(request.app.state.db, limit, status)

    @post(
        "/{alert_id:int}/acknowledge",
        status_code=200,
        summary="Acknowledge an alert",
        description="Records who acknowledged it and when; an open alert stays open until it resolves.",
    )
    async def acknowledge(self, request: Request[Principal, Any, Any], alert_id: FromPath[int]) -> AlertView:
        found = await acknowledge_alert(request.app.state.db, alert_id, request.user.user_id)
        if found is None:
            raise NotFoundException(detail=f"There is no alert {alert_id}.")
        return found
