"""The guard every route but the webhook's passes after authentication: a blocked client is
refused (403), then the rate limit of the route's tier is counted (429 over it). Responses carry
the ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` headers."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.protection.blocking import Blocker
from api.protection.clients import ClientResolver
from api.protection.incidents import Incident
from api.protection.rate_limits import RateLimits, StoreUnavailable
from api.security.tokens import Principal

__all__ = ["GuardMiddleware", "client_key"]


def client_key(scope: Any, clients: ClientResolver) -> tuple[str, str | None, str]:
    """The key a client is known by (``user:<id>`` or ``ip:<address>``), its user id, its IP."""
    user = scope.get("user")
    ip = clients.client_ip(scope)
    if isinstance(user, Principal):
        return f"user:{user.user_id}", user.user_id, ip
    return f"ip:{ip}", None, ip


def _route(scope: Scope) -> str:
    return str(scope.get("path_template") or scope["path"])


class GuardMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, rate_limits: RateLimits, blocker: Blocker, clients: ClientResolver) -> None:
        self.rate_limits = rate_limits
        self.blocker = blocker
        self.clients = clients

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        opt = scope["route_handler"].opt
        tier = opt.get("rate_limit", "default")
        if tier is None:  # health probes
            await next_app(scope, receive, send)
            return
        key, user_id, ip = client_key(scope, self.clients)
        if tier != "webhook":  # Stripe is authenticated by its signature and never blocked
            left = await self.blocker.blocked_for(key, _route(scope), str(scope.get("method", "")))
            if left is not None:
                raise PermissionDeniedException(
                    detail="This client is temporarily blocked after repeated suspicious requests; "
                    f"try again in {left} s.",
                    headers={"Retry-After": str(left)},
                )
        if not self.rate_limits.enabled:
            await next_app(scope, receive, send)
            return
        limit_key = f"ip:{ip}" if tier == "webhook" else key
        try:
            decision = await self.rate_limits.check(tier, limit_key, report=tier != "webhook")
        except StoreUnavailable:
            raise HTTPException(
                status_code=503,
                detail="Rate limiting is unavailable, so this request cannot be accepted now; try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        headers = {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset_after),
        }
        if not decision.allowed:
            if decision.abusive:
                await self.blocker.incidents.record(
                    Incident(
                        kind="rate_limit_abuse",
                        route=_route(scope),
                        method=str(scope.get("method", "")),
                        user_id=user_id,
                        client_ip=ip,
                        detail=f"{limit_key} refused {self.rate_limits.items[tier].amount}x over in tier {tier}",
                    )
                )
            raise HTTPException(
                status_code=429,
                detail=f"Too many requests: at most {decision.limit} per {_window(self.rate_limits, tier)} "
                f"here; try again in {decision.reset_after} s.",
                headers={**headers, "Retry-After": str(decision.reset_after)},
            )

        if tier == "webhook":  # Stripe reads no rate-limit headers
            await next_app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await next_app(scope, receive, send_with_headers)


def _window(rate_limits: RateLimits, tier: str) -> str:
    item = rate_limits.items.get(tier) or rate_limits.items["default"]
    seconds = item.get_expiry()
    names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    return names.get(seconds, f"{seconds} s")
