"""``GET /api/me``: who the bearer token says the caller is."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from api.security.tokens import Principal

__all__ = ["Me", "me"]


class Me(msgspec.Struct):
    user_id: str
    roles: list[str]


@get("/api/me", tags=["auth"], summary="The authenticated caller", description="The user id (`sub`) and roles.")
async def me(request: Request[Principal, Any, Any]) -> Me:
    return Me(user_id=request.user.user_id, roles=sorted(request.user.roles))
