"""Liveness and readiness for load balancers."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.db.engine import Database
from api.db.migrate import current_heads, expected_heads
from api.errors import problem

__all__ = ["live", "ready"]


@get("/api/health/live", tags=["health"], summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/api/health/ready", tags=["health"], summary="The service can serve: database reachable, schema current")
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    db: Database = request.app.state.db
    try:
        async with db.read() as conn:
            heads = await current_heads(conn)
    except Exception:
        return problem(503, "The database is unreachable.")
    if heads != expected_heads(db.settings):
        return problem(503, "The database schema is not current; run `faddl db upgrade`.")
    return Response({"status": "ok"})
