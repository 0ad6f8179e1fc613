"""The guard every route but the webhook's passes after authentication: a blocked client is
refused (403), then the rate limit of the route's tier is counted (429 over it). Responses carry
the ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` headers."""

from __future__ import annotations

from typing import Any, cast

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.protection.blocking import Blocker
from api.protection.clients import ClientResolver
from api.protection.incidents import Incident, IncidentLog
from api.protection.rate_limits import COUNTED_WHEN_DONE, RateLimits, StoreUnavailable
from api.security.tokens import Principal

__all__ = ["FailedAuthentications", "GuardMiddleware", "client_key", "count_rejected_delivery"]


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
        if tier == "webhook":
            # Stripe is authenticated by its signature: never blocked, and a verified delivery is
            # never refused for rate. Only deliveries that fail verification count against the
            # webhook tier, after the fact (:func:`count_rejected_delivery`).
            await next_app(scope, receive, send)
            return
        key, user_id, ip = client_key(scope, self.clients)
        left = await self.blocker.blocked_for(key, _route(scope), str(scope.get("method", "")))
        if left is not None:
            raise _blocked("This client is temporarily blocked after repeated suspicious requests", left)
        if not self.rate_limits.enabled:
            await next_app(scope, receive, send)
            return
        try:
            decision = await self.rate_limits.check(tier, key)
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
                detail = f"{key} refused {self.rate_limits.items[tier].amount}x over in tier {tier}"
                await self.blocker.incidents.record(_abuse(scope, user_id, ip, detail))
            raise HTTPException(
                status_code=429,
                detail=f"Too many requests: at most {decision.limit} per {_window(self.rate_limits, tier)} "
                f"here; try again in {decision.reset_after} s.",
                headers={**headers, "Retry-After": str(decision.reset_after)},
            )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if tier in COUNTED_WHEN_DONE and not _did_something(message):
                    await self.rate_limits.give_back(tier, key)
                    headers["RateLimit-Remaining"] = str(min(decision.limit, decision.remaining + 1))
                mutable = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await next_app(scope, receive, send_with_headers)


def _did_something(start: Message) -> bool:
    """An answer that counts against a write tier: not refused (4xx), not an idempotent replay."""
    message = cast(dict[str, Any], start)
    replayed = any(name.lower() == b"idempotent-replayed" for name, _ in message.get("headers", ()))
    return not 400 <= int(message["status"]) < 500 and not replayed


def _blocked(why: str, left: int) -> PermissionDeniedException:
    return PermissionDeniedException(detail=f"{why}; try again in {left} s.", headers={"Retry-After": str(left)})


def _window(rate_limits: RateLimits, tier: str) -> str:
    item = rate_limits.items.get(tier) or rate_limits.items["default"]
    seconds = item.get_expiry()
    names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    return names.get(seconds, f"{seconds} s")


async def count_rejected_delivery(
    rate_limits: RateLimits, incidents: IncidentLog, clients: ClientResolver, scope: Scope
) -> int | None:
    """Count a webhook delivery that failed verification against the webhook tier, per source
    address. Returns the seconds to wait when the source is over it (the caller answers 429), and
    records an incident once it is abusive (the rule of every tier)."""
    if not rate_limits.enabled:
        return None
    _, user_id, ip = client_key(scope, clients)
    try:
        decision = await rate_limits.check("webhook", f"ip:{ip}", report=False)
    except StoreUnavailable:
        return None  # the delivery is refused anyway (400); counting it is what failed
    if decision.allowed:
        return None
    if decision.abusive:
        detail = f"ip:{ip}: deliveries failing verification over the webhook tier"
        await incidents.record(_abuse(scope, user_id, ip, detail))
    return max(1, decision.reset_after)


class FailedAuthentications:
    """Invalid, expired and missing tokens are abuse too (token guessing, a leaked token replayed
    after revocation): each one counts, per source address, against the default tier. Past it the
    answer is 429 and each refused attempt is a security incident against ``ip:<address>``, so the
    address is blocked (403) after ``BLOCK_AFTER_INCIDENTS`` of them, as for any other incident.
    Runs inside authentication, which comes before the guard: without it a flood of bad tokens
    would never be limited, recorded or blocked."""

    TIER = "default"

    def __init__(self, rate_limits: RateLimits, blocker: Blocker, clients: ClientResolver) -> None:
        self.rate_limits = rate_limits
        self.blocker = blocker
        self.clients = clients

    async def __call__(self, scope: Scope, reason: str) -> None:
        ip = self.clients.client_ip(scope)
        key = f"ip:{ip}"
        left = await self.blocker.blocked_for(key, _route(scope), str(scope.get("method", "")))
        if left is not None:
            raise _blocked("This address is temporarily blocked after repeated failed authentication", left)
        if not self.rate_limits.enabled:
            return
        try:
            decision = await self.rate_limits.check(self.TIER, key, report=False)
        except StoreUnavailable:
            return  # the request is refused anyway (401); counting it is what failed
        if decision.allowed:
            return
        limit = self.rate_limits.items[self.TIER]
        await self.blocker.incident(
            key,
            Incident(
                kind="auth_failures",
                route=_route(scope),
                method=str(scope.get("method", "")),
                user_id=None,
                client_ip=ip,
                detail=f"{key}: over {limit.amount} failed authentications per {_window(self.rate_limits, self.TIER)} "
                f"(this one: {reason})",
            ),
        )
        raise HTTPException(
            status_code=429,
            detail=f"Too many failed authentications from this address; try again in {decision.reset_after} s.",
            headers={"Retry-After": str(decision.reset_after)},
        )


def _abuse(scope: Scope, user_id: str | None, ip: str, detail: str) -> Incident:
    return Incident(
        kind="rate_limit_abuse",
        route=_route(scope),
        method=str(scope.get("method", "")),
        user_id=user_id,
        client_ip=ip,
        detail=detail,
    )
