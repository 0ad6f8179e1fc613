"""The comparison point of the webhook benchmark: a bare Litestar route that only reads the body,
served by the same server the same way."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, post


@post("/api/webhooks/stripe", status_code=200)
async def receive(request: Request[Any, Any, Any]) -> dict[str, int]:
    body = await request.body()
    return {"bytes": len(body)}


def create_app() -> Litestar:
    return Litestar(route_handlers=[receive], debug=False)
