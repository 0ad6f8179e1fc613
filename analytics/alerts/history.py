"""The alerts' history as people read it (open ones first, then the newest) and their
acknowledgement: what the admin API and the dashboard's Alerts page both show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Row, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.dialects import utc
from api.db.engine import Database
from api.db.models import alerts

__all__ = ["AlertView", "acknowledge_alert", "recent_alerts"]


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
