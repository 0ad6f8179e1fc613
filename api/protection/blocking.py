"""Automatic blocking: a client (its user when authenticated, else its IP) that causes
``BLOCK_AFTER_INCIDENTS`` security incidents within ``BLOCK_WINDOW_SECONDS`` is refused with 403
for ``BLOCK_SECONDS``. Counts and blocks are shared through Redis when it is configured. Every
block and unblock is recorded; an unblock is noticed at the client's first request after the
block ends (or made by an admin). Stripe's webhooks never pass through here."""

from __future__ import annotations

import time

import structlog
from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from api.observability.metrics import SECURITY_BLOCKS
from api.protection.incidents import Incident, IncidentLog
from api.settings import Settings

__all__ = ["Blocker"]

logger = structlog.get_logger(__name__)


class _MemoryBlocks:
    def __init__(self) -> None:
        self.until: dict[str, float] = {}

    async def set(self, key: str, until: float) -> None:
        self.until[key] = until

    async def get(self, key: str) -> float | None:
        return self.until.get(key)

    async def delete(self, key: str) -> bool:
        return self.until.pop(key, None) is not None

    async def keys(self) -> dict[str, float]:
        return dict(self.until)


class _RedisBlocks:
    PREFIX = "faddl:block:"

    def __init__(self, client: Redis, keep_seconds: int) -> None:
        self.client = client
        self.keep = keep_seconds  # kept past the end so that the unblock can be noticed and recorded

    async def set(self, key: str, until: float) -> None:
        await self.client.set(self.PREFIX + key, str(until), ex=int(until - time.time()) + self.keep)

    async def get(self, key: str) -> float | None:
        value = await self.client.get(self.PREFIX + key)
        return float(value) if value is not None else None

    async def delete(self, key: str) -> bool:
        return bool(await self.client.delete(self.PREFIX + key))

    async def keys(self) -> dict[str, float]:
        found: dict[str, float] = {}
        async for name in self.client.scan_iter(match=self.PREFIX + "*"):
            value = await self.client.get(name)
            if value is not None:
                found[name.decode().removeprefix(self.PREFIX)] = float(value)
        return found


class Blocker:
    def __init__(self, settings: Settings, storage: Storage, redis: Redis | None, incidents: IncidentLog) -> None:
        self.enabled = settings.block_after_incidents > 0
        self.threshold = settings.block_after_incidents
        self.seconds = settings.block_seconds
        # The Nth incident within the window is the first one the moving window refuses.
        self.window = RateLimitItemPerSecond(max(1, settings.block_after_incidents - 1), settings.block_window_seconds)
        self.counter = MovingWindowRateLimiter(storage)
        self.blocks: _MemoryBlocks | _RedisBlocks = _RedisBlocks(redis, 86_400) if redis else _MemoryBlocks()
        self.incidents = incidents

    async def blocked_for(self, key: str, route: str | None, method: str | None) -> int | None:
        """Seconds the client stays blocked, or None. Fails open: an unreachable store blocks nobody."""
        if not self.enabled:
            return None
        try:
            until = await self.blocks.get(key)
            if until is None:
                return None
            left = until - time.time()
            if left > 0:
                return int(left) + 1
            if await self.blocks.delete(key):  # only one process records the unblock
                await self._record_unblock(key, route, method, "block ended")
        except Exception as exc:
            logger.error("block list unreachable; not blocking", error=type(exc).__name__)
        return None

    async def incident(self, key: str, incident: Incident) -> bool:
        """Record an incident against the client; True when it blocked the client."""
        await self.incidents.record(incident)
        if not self.enabled:
            return False
        try:
            if self.threshold > 1 and await self.counter.hit(self.window, "incidents", key):
                return False
            until = time.time() + self.seconds
            await self.blocks.set(key, until)
        except Exception as exc:
            logger.error("block list unreachable; not blocking", error=type(exc).__name__)
            return False
        SECURITY_BLOCKS.labels("block").inc()
        await self.incidents.record(
            Incident(
                kind="blocked",
                route=incident.route,
                method=incident.method,
                user_id=incident.user_id,
                client_ip=incident.client_ip,
                detail=f"{key} blocked for {self.seconds} s after repeated incidents",
            )
        )
        return True

    async def unblock(self, key: str) -> bool:
        """An admin lifts a block; True when there was one."""
        if await self.blocks.delete(key):
            await self.counter.clear(self.window, "incidents", key)
            await self._record_unblock(key, None, None, "lifted by an admin")
            return True
        return False

    async def current(self) -> dict[str, int]:
        now = time.time()
        return {key: int(until - now) + 1 for key, until in (await self.blocks.keys()).items() if until > now}

    async def _record_unblock(self, key: str, route: str | None, method: str | None, why: str) -> None:
        SECURITY_BLOCKS.labels("unblock").inc()
        kind, _, value = key.partition(":")
        await self.incidents.record(
            Incident(
                kind="unblocked",
                route=route,
                method=method,
                user_id=value if kind == "user" else None,
                client_ip=value if kind == "ip" else None,
                detail=f"{key} unblocked: {why}",
            )
        )
