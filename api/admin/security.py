"""Admin routes over protection: recent security incidents, the clients blocked now, and a way to
lift a block (recorded as an unblock)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.dialects import utc
from api.db.engine import Database
from api.db.models import security_incidents
from api.logs import mask_secrets
from api.protection.layers import Protection

__all__ = ["AdminSecurityController", "BlockedClient", "SecurityIncidentView"]


class SecurityIncidentView(msgspec.Struct):
    id: int
    created_at: datetime
    kind: str
    route: str | None
    method: str | None
    user_id: str | None
    client_ip: str | None
    sample: str | None
    detail: str | None


class BlockedClient(msgspec.Struct):
    client: str
    """``user:<id>`` or ``ip:<address>``."""
    seconds_left: int


class AdminSecurityController(Controller):
    path = "/security"
    tags = ["admin"]

    @get("/incidents", summary="Recent security incidents", description="Newest first.")
    async def list_incidents(
        self,
        request: Request[Any, Any, Any],
        kind: Annotated[str | None, QueryParameter(max_length=32, pattern="^[a-z_]+$")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[SecurityIncidentView]:
        db: Database = request.app.state.db
        query = select(security_incidents).order_by(security_incidents.c.id.desc()).limit(limit)
        if kind:
            query = query.where(security_incidents.c.kind == kind)

        async def read(conn: AsyncConnection) -> list[SecurityIncidentView]:
            rows = (await conn.execute(query)).mappings()
            # Masked again on the way out: rows stored before samples were masked may hold secrets.
            return [
                SecurityIncidentView(
                    **{
                        **dict(row),
                        "created_at": utc(row["created_at"]),
                        "sample": mask_secrets(row["sample"]) if row["sample"] else row["sample"],
                        "detail": mask_secrets(row["detail"]) if row["detail"] else row["detail"],
                    }
                )
                for row in rows
            ]

        return await db.run(read)

    @get("/blocks", summary="Clients blocked now")
    async def list_blocks(self, request: Request[Any, Any, Any]) -> list[BlockedClient]:
        protection: Protection = request.app.state.protection
        blocks = await protection.blocker.current()
        return [BlockedClient(client, left) for client, left in sorted(blocks.items())]

    @delete("/blocks/{client:str}", status_code=204, summary="Lift a block")
    async def unblock(self, request: Request[Any, Any, Any], client: FromPath[str]) -> None:
        protection: Protection = request.app.state.protection
        if not await protection.blocker.unblock(client):
            raise NotFoundException(detail=f"{client!r} is not blocked.")
