"""Liveness and readiness for load balancers."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.db.engine import Database
from api.db.migrate import current_heads, expected_heads
from api.errors import problem
from api.protection.edge import request_id_of

__all__ = ["live", "ready"]


# Probes are neither rate-limited nor blocked: a load balancer polls them from one address.
_PROBE = {"rate_limit": None}


@get("/api/health/live", tags=["health"], summary="The process is up", opt=_PROBE)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/api/health/ready",
    tags=["health"],
    summary="The service can serve: database reachable, schema current",
    opt=_PROBE,
)
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    db: Database = request.app.state.db
    try:
        async with db.read() as conn:
            heads = await current_heads(conn)
    except Exception:
        return problem(
            503, "The database is unreachable.", request_id=request_id_of(request.scope), code="database_unavailable"
        )
    if heads != expected_heads(db.settings):
        return problem(
            503, "The database schema is not current; run `faddl db upgrade`.", request_id=request_id_of(request.scope)
        )
    return Response({"status": "ok"})
