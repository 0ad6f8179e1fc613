"""Rate limits per tier, with a moving window (the ``limits`` library).

Tiers (each an ``N/second|minute|hour`` setting): ``webhook`` per source IP; ``checkout``,
``subscription_read``, ``subscription_write``, ``usage`` and ``default`` per user (per IP without a
token). A route names its tier in its ``opt``. When the store (Redis) is unreachable, the tiers in
``RATE_LIMIT_FAIL_CLOSED`` are refused (503) and the others let through; either way it is logged
and counted. A key refused ``RATE_LIMIT_ABUSE_FACTOR`` times its limit within one window is a
security incident (once per window).

The write tiers (``checkout``, ``subscription_write``) count what was done, not what was asked:
a request takes its place in the window as it arrives (so concurrent requests can never exceed
the limit) and gives it back when its answer shows it did nothing: refused (4xx: a plan it already
has, a subscription already canceled) or an idempotent replay of one already counted. So a person
trying cancel, resume and change plan by hand, or a client retrying with its idempotency key, is
not locked out by its own refused attempts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from api.observability.metrics import RATE_LIMIT_REJECTIONS, RATE_LIMIT_STORE_FAILURES
from api.settings import Settings

__all__ = ["COUNTED_WHEN_DONE", "TIERS", "Decision", "RateLimits", "StoreUnavailable"]

logger = structlog.get_logger(__name__)

TIERS = ("webhook", "checkout", "subscription_read", "subscription_write", "usage", "default")
COUNTED_WHEN_DONE = frozenset({"checkout", "subscription_write"})
"""The write tiers: a request counts once its answer shows it did something (see above)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int
    """Seconds until the window has room again."""
    abusive: bool = False
    """True once per window, when the key has been refused ``RATE_LIMIT_ABUSE_FACTOR`` x its limit."""


class StoreUnavailable(RuntimeError):
    """The limit store is unreachable and the tier fails closed."""


def _parse(name: str, value: str) -> RateLimitItem:
    try:
        return parse(value)
    except ValueError:
        raise ValueError(
            f"RATE_LIMIT_{name.upper()} must look like 100/minute (N per second, minute, hour or day), got {value!r}"
        ) from None


class RateLimits:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.enabled = settings.rate_limits_enabled
        self.items = {tier: _parse(tier, limit) for tier, limit in settings.rate_limit_tiers.items()}
        factor = max(2, settings.rate_limit_abuse_factor)
        # Refusals are counted in a window of the same length; the (factor - 1) x limit-th refusal
        # means factor x limit attempts. The third item lets that be reported once per window.
        self.refusals = {
            tier: type(item)(item.amount * (factor - 1), item.multiples) for tier, item in self.items.items()
        }
        self.reports = {tier: type(item)(1, item.multiples) for tier, item in self.items.items()}
        self.fail_closed = frozenset(settings.rate_limit_fail_closed)
        self.limiter = MovingWindowRateLimiter(storage)

    async def check(self, tier: str, key: str, *, report: bool = True) -> Decision:
        """Count one request of ``key`` in ``tier``. Without ``report``, an allowed request skips
        reading the window back (``remaining`` and ``reset_after`` are then 0): the webhook route
        sends no rate-limit headers, and only needs the window of a refused delivery."""
        item = self.items.get(tier) or self.items["default"]
        try:
            allowed = await self.limiter.hit(item, tier, key)
            if allowed and not report:
                return Decision(True, item.amount, 0, 0)
            stats = await self.limiter.get_window_stats(item, tier, key)
            abusive = False
            if not allowed:
                RATE_LIMIT_REJECTIONS.labels(tier).inc()
                if not await self.limiter.hit(self.refusals[tier], "refused", tier, key):
                    abusive = await self.limiter.hit(self.reports[tier], "reported", tier, key)
        except Exception as exc:
            action = "refused" if tier in self.fail_closed else "allowed"
            RATE_LIMIT_STORE_FAILURES.labels(tier, action).inc()
            logger.error("rate-limit store unreachable", tier=tier, action=action, error=type(exc).__name__)
            if tier in self.fail_closed:
                raise StoreUnavailable(tier) from exc
            return Decision(True, item.amount, item.amount, 0)
        reset_after = max(1, int(stats.reset_time - time.time()) + 1)
        return Decision(allowed, item.amount, max(0, stats.remaining), reset_after, abusive)

    async def give_back(self, tier: str, key: str) -> None:
        """Take back the place a request counted by :meth:`check` took, now that its answer shows
        it did nothing. ``limits`` has no way to give an entry back, so this removes the newest
        entry of the key's moving window in the two stores the service uses (a list of
        timestamps in Redis, of entries in memory, newest first in both). Should the store fail
        now, the request is already answered: logged and counted only."""
        item = self.items.get(tier) or self.items["default"]
        window = item.key_for(tier, key)
        storage = self.limiter.storage
        try:
            if isinstance(storage, MemoryStorage):
                async with storage.locks[window]:
                    entries = storage.events.get(window)
                    if entries:
                        del entries[0]
            elif isinstance(storage, RedisStorage):
                bridge = storage.bridge
                await bridge.get_connection().lpop(bridge.prefixed_key(window))  # type: ignore[attr-defined]
        except Exception as exc:
            RATE_LIMIT_STORE_FAILURES.labels(tier, "not_given_back").inc()
            logger.error("rate-limit store unreachable", tier=tier, action="not_given_back", error=type(exc).__name__)
