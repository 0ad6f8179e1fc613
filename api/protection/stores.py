"""Where protection state lives: in this process by default, in Redis when ``REDIS_URL`` is set
(so several API processes share one budget, one block list and one idempotency store)."""

from __future__ import annotations

from typing import Any

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from redis.asyncio import Redis

from api.settings import Settings

__all__ = ["REDIS_TIMEOUT_SECONDS", "limits_storage", "redis_client"]

REDIS_TIMEOUT_SECONDS = 0.5
"""A Redis that does not answer within this is treated as unreachable: protection must never make
a request hang."""


def limits_storage(settings: Settings) -> Storage:
    """The ``limits`` storage: moving windows in memory (expired entries are dropped by a timer, so
    memory stays bounded) or in Redis."""
    if not settings.redis_url:
        return MemoryStorage()
    options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    return RedisStorage(
        "async+" + settings.redis_url, implementation="redispy", wrap_exceptions=True, key_prefix="faddl", **options
    )


def redis_client(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    client: Redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    return client
