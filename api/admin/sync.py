"""``GET /api/admin/sync``: Stripe as the source of truth, for an operator: where each resource's
walk is (its cursor), the last runs of the sync, the Events API catch-up and reconciliation with
their summaries, and the drift not healed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database
from api.sync import state

__all__ = ["AdminSyncController", "SyncOverview", "SyncState", "sync_overview"]


class RunView(msgspec.Struct):
    id: int
    kind: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    summary: dict[str, Any]


class DriftView(msgspec.Struct):
    object_type: str
    object_id: str
    fields: dict[str, Any]
    """Field -> [ours, Stripe's]."""
    found_at: datetime


class SyncState(msgspec.Struct):
    last_success: dict[str, datetime]
    """Kind of run (sync, catchup, reconcile) -> when it last succeeded."""
    cursors: list[state.Cursor]
    runs: list[RunView]
    open_drift: list[DriftView]


class SyncOverview(msgspec.Struct):
    """The dashboard's line on it: last successes and how much drift is not healed."""

    last_success: dict[str, datetime]
    open_drift: int


async def sync_overview(db: Database) -> SyncOverview:
    async def read(conn: AsyncConnection) -> SyncOverview:
        return SyncOverview(await state.last_successes(conn), await state.open_drift_count(conn))

    return await db.run(read)


class AdminSyncController(Controller):
    path = "/sync"
    tags = ["admin"]

    @get(
        "/",
        summary="Stripe sync, catch-up and reconciliation",
        description=(
            "Each resource's cursor (a stopped sync resumes from it), the last 20 runs of the sync, the Events API "
            "catch-up and reconciliation with their summaries, when each last succeeded, and the drift not healed. "
            "Admin role only."
        ),
    )
    async def sync_state(self, request: Request[Any, Any, Any]) -> SyncState:
        db: Database = request.app.state.db

        async def read(conn: AsyncConnection) -> SyncState:
            cursors = await state.cursors(conn)
            return SyncState(
                last_success=await state.last_successes(conn),
                cursors=sorted(cursors.values(), key=lambda c: c.resource),
                runs=[RunView(**run) for run in await state.recent_runs(conn)],
                open_drift=[DriftView(**drift) for drift in await state.open_drift(conn)],
            )

        return await db.run(read)
