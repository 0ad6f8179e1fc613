"""The protection layers, built once per app, in the order a request meets them:

1. edge: request id, log context, HTTPS enforcement (then authentication);
2. guard: blocked clients (403), rate limits (429);
3. idempotency keys (replay, 409, 422);
4. screening of every string input (400, recorded as a security incident);
and on the way out, the security headers on every response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from api.db.engine import Database
from api.protection.blocking import Blocker
from api.protection.clients import ClientResolver
from api.protection.edge import EdgeMiddleware, SecurityHeaders
from api.protection.guard import FailedAuthentications, GuardMiddleware
from api.protection.idempotency import (
    DatabaseIdempotencyStore,
    IdempotencyMiddleware,
    IdempotencyStore,
    RedisIdempotencyStore,
)
from api.protection.incidents import IncidentLog
from api.protection.rate_limits import RateLimits
from api.protection.screening import RequestScreener
from api.protection.stores import limits_storage, redis_client
from api.settings import Settings

__all__ = ["Protection"]


@dataclass
class Protection:
    clients: ClientResolver
    rate_limits: RateLimits
    blocker: Blocker
    incidents: IncidentLog
    idempotency: IdempotencyStore
    redis: Redis | None

    @classmethod
    def build(cls, settings: Settings, db: Database) -> Protection:
        clients = ClientResolver(settings.trusted_proxies)
        storage = limits_storage(settings)
        redis = redis_client(settings)
        incidents = IncidentLog(db)
        return cls(
            clients=clients,
            rate_limits=RateLimits(settings, storage),
            blocker=Blocker(settings, storage, redis, incidents),
            incidents=incidents,
            idempotency=RedisIdempotencyStore(redis) if redis else DatabaseIdempotencyStore(db),
            redis=redis,
        )

    def failed_authentications(self) -> FailedAuthentications:
        """What authentication calls on each failure: counted per address, refused when abusive."""
        return FailedAuthentications(self.rate_limits, self.blocker, self.clients)

    def middleware(self, settings: Settings, authentication: Any) -> list[Any]:
        return [
            EdgeMiddleware(settings, self.clients),
            authentication,
            GuardMiddleware(self.rate_limits, self.blocker, self.clients),
            IdempotencyMiddleware(settings, self.idempotency),
        ]

    def screener(self, settings: Settings) -> RequestScreener:
        return RequestScreener(settings.max_string_length, self.blocker, self.clients, settings.json_max_depth)

    @staticmethod
    def headers(settings: Settings) -> SecurityHeaders:
        return SecurityHeaders(settings)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
