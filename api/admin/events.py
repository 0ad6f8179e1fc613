"""Admin routes over the event log: the events that need a person (``failed``, ``dead``), and a
way to send a dead one back to the worker once its cause is fixed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter

from api.db.dialects import utc
from api.db.engine import Database
from api.events import log
from api.events.log import EventStatus

__all__ = ["AdminEventsController", "LoggedEvent"]


class LoggedEvent(msgspec.Struct):
    event_id: str
    type: str
    created: int
    status: str
    attempts: int
    last_error: str | None
    next_retry_at: datetime | None
    received_at: datetime


def _row(row: object) -> LoggedEvent:
    values = {f: getattr(row, f) for f in LoggedEvent.__struct_fields__}
    values["received_at"], values["next_retry_at"] = utc(values["received_at"]), utc(values["next_retry_at"])
    return LoggedEvent(**values)


class AdminEventsController(Controller):
    path = "/events"
    tags = ["admin"]

    @get("/", summary="Events whose processing failed", description="Newest first; `dead` ones need a person.")
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[Literal["failed", "dead"]] = "dead",
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[LoggedEvent]:
        db: Database = request.app.state.db
        wanted = EventStatus(status)
        rows = await db.run(lambda conn: log.rows_with_status(conn, wanted, LoggedEvent.__struct_fields__, limit))
        return [_row(row) for row in rows]

    @post("/{event_id:str}/retry", status_code=202, summary="Send a dead or failed event back to the worker")
    async def retry(self, request: Request[Any, Any, Any], event_id: FromPath[str]) -> LoggedEvent:
        db: Database = request.app.state.db
        row = await db.run(
            lambda conn: log.send_back_for_retry(conn, event_id, LoggedEvent.__struct_fields__), write=True
        )
        if row is None:
            raise NotFoundException(detail=f"No failed or dead event with id {event_id!r}.")
        return _row(row)
