"""The KPI snapshots: the KPI document as the worker last computed it, kept in the database so the
admin API (which must stay light to import and quick to answer) and the dashboard read it without
recomputing. Only SQL here: importing this module pulls in neither DuckDB nor Polars."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database
from api.db.models import kpi_snapshots

__all__ = ["KEEP_SNAPSHOTS", "latest_snapshot", "store_snapshot"]

KEEP_SNAPSHOTS = 48


async def store_snapshot(db: Database, document: dict[str, Any], computed_at: datetime, seconds: float) -> None:
    """Keep ``document`` as the newest snapshot (and only the last ``KEEP_SNAPSHOTS``)."""

    async def store(conn: AsyncConnection) -> None:
        await conn.execute(
            insert(kpi_snapshots).values(
                computed_at=computed_at,
                computed_until=int(document.get("computed_until") or 0),
                duration_ms=int(seconds * 1000),
                document=json.dumps(document),
            )
        )
        keep = select(kpi_snapshots.c.id).order_by(kpi_snapshots.c.id.desc()).limit(KEEP_SNAPSHOTS)
        await conn.execute(delete(kpi_snapshots).where(kpi_snapshots.c.id.not_in(keep)))

    await db.run(store, write=True)


async def latest_snapshot(db: Database) -> tuple[dict[str, Any], datetime] | None:
    """The newest KPI document and when it was computed, or None before the first pass."""
    query = select(kpi_snapshots).order_by(kpi_snapshots.c.id.desc()).limit(1)

    async def read(conn: AsyncConnection) -> Any:
        return (await conn.execute(query)).first()

    row = await db.run(read)
    if row is None:
        return None
    document: dict[str, Any] = json.loads(row.document)
    return document, row.computed_at
