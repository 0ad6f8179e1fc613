"""Health for load balancers, orchestrators and people.

- ``GET /api/health/live``: the process is up.
- ``GET /api/health/ready``: it can serve (database reachable, schema current).
- ``GET /api/health``: every component with its status and response time: the database, Redis
  (when configured), Stripe's reachability and circuit breaker (cached), the identity provider's
  JWKS (cached), writable storage, resource use (memory, CPU, disk, via psutil) and the webhook
  backlog; an overall ``healthy`` / ``degraded`` / ``unhealthy`` with a score out of 100. Only a
  database that cannot be reached makes the service unhealthy (503): without it nothing works;
  everything else degrades it. The thresholds are settings. The components are shown to an admin
  token or a connection from ``HEALTH_DETAIL_NETWORKS`` only; the public answer is the status and
  score.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import psutil
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy import text

from api.db.engine import Database
from api.db.migrate import current_heads, expected_heads
from api.errors import problem
from api.events import log
from api.protection.edge import request_id_of
from api.security.tokens import AuthError, TokenVerifier
from api.settings import Settings

__all__ = ["ComponentHealth", "HealthChecker", "HealthReport", "health", "live", "ready"]

Status = Literal["ok", "degraded", "down"]

WEIGHTS = {
    "database": 40,
    "stripe": 15,
    "identity_provider": 15,
    "redis": 10,
    "storage": 10,
    "resources": 5,
    "webhook_backlog": 5,
}


class ComponentHealth(msgspec.Struct):
    status: Status
    response_ms: float
    detail: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class HealthReport(msgspec.Struct):
    status: Literal["healthy", "degraded", "unhealthy"]
    score: int
    """100 when every component is ok; a degraded component counts half its weight, a down one none."""
    checked_at: datetime
    components: dict[str, ComponentHealth]


Check = Callable[[], Awaitable[ComponentHealth]]


class HealthChecker:
    def __init__(self, settings: Settings, db: Database, redis: Any, gateway: Any) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.gateway = gateway
        self._cache: dict[str, tuple[float, ComponentHealth]] = {}
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement

    async def report(self) -> HealthReport:
        checks: dict[str, Check] = {
            "database": self.database,
            "stripe": lambda: self._cached("stripe", self.stripe),
            "identity_provider": lambda: self._cached("identity_provider", self.identity_provider),
            "storage": self.storage,
            "resources": self.resources,
            "webhook_backlog": self.webhook_backlog,
        }
        if self.settings.redis_url:
            checks["redis"] = self.redis_check
        results = await asyncio.gather(*(self._timed(check) for check in checks.values()))
        components = dict(zip(checks, results, strict=True))
        weights = {name: WEIGHTS[name] for name in components}
        earned = sum(
            weights[name] * {"ok": 1.0, "degraded": 0.5, "down": 0.0}[c.status] for name, c in components.items()
        )
        score = round(100 * earned / sum(weights.values()))
        if components["database"].status == "down":
            overall: Literal["healthy", "degraded", "unhealthy"] = "unhealthy"
        elif any(c.status != "ok" for c in components.values()):
            overall = "degraded"
        else:
            overall = "healthy"
        return HealthReport(overall, score, datetime.now(UTC), components)

    @staticmethod
    async def _timed(check: Check) -> ComponentHealth:
        started = time.perf_counter()
        try:
            result = await check()
        except Exception as exc:
            result = ComponentHealth("down", 0.0, f"check failed: {type(exc).__name__}")
        if result.response_ms == 0.0:
            result.response_ms = round((time.perf_counter() - started) * 1000, 2)
        return result

    async def _cached(self, name: str, check: Check) -> ComponentHealth:
        """External checks run at most once per ``HEALTH_EXTERNAL_TTL_SECONDS``."""
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < self.settings.health_external_ttl_seconds:
            cached = hit[1]
            return ComponentHealth(cached.status, cached.response_ms, cached.detail, {**cached.data, "cached": True})
        result = await self._timed(check)
        self._cache[name] = (time.monotonic(), result)
        return result

    async def database(self) -> ComponentHealth:
        started = time.perf_counter()
        try:
            async with self.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return ComponentHealth("down", 0.0, f"unreachable ({type(exc).__name__})")
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        if elapsed > self.settings.health_db_slow_ms:
            return ComponentHealth("degraded", elapsed, f"slow: {elapsed} ms for a round trip")
        return ComponentHealth("ok", elapsed, f"{self.db.dialect} reachable")

    async def redis_check(self) -> ComponentHealth:
        try:
            await self.redis.ping()
        except Exception as exc:
            return ComponentHealth("down", 0.0, f"unreachable ({type(exc).__name__}); rate limits fail open or closed")
        return ComponentHealth("ok", 0.0, "reachable")

    async def stripe(self) -> ComponentHealth:
        if self.settings.demo_mode:
            return ComponentHealth("ok", 0.0, "demo mode: the simulator plays Stripe")
        state = await self.gateway.breaker_state() if hasattr(self.gateway, "breaker_state") else "closed"
        base = self.settings.stripe_api_base or "https://api.stripe.com"
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                answer = await client.get(f"{base}/v1/")  # any HTTP answer means reachable
        except httpx.HTTPError as exc:
            return ComponentHealth("down", 0.0, f"unreachable ({type(exc).__name__})", {"breaker": state})
        if state == "opened":
            return ComponentHealth("down", 0.0, "circuit breaker open", {"breaker": state})
        detail = "reachable" if answer.status_code < 500 else f"answering {answer.status_code}"
        return ComponentHealth("ok" if answer.status_code < 500 else "degraded", 0.0, detail, {"breaker": state})

    async def identity_provider(self) -> ComponentHealth:
        url = self.settings.auth_jwks_url
        if not url:
            if self.settings.auth_dev_active:
                return ComponentHealth("ok", 0.0, "development tokens (AUTH_DEV_MODE)")
            return ComponentHealth("down", 0.0, "no AUTH_JWKS_URL: nobody can sign in")
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                answer = await client.get(url)
            keys = answer.json().get("keys") if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            return ComponentHealth("down", 0.0, f"JWKS unreachable ({type(exc).__name__})")
        if not keys:
            return ComponentHealth("down", 0.0, f"JWKS has no keys (HTTP {answer.status_code})")
        return ComponentHealth("ok", 0.0, f"JWKS reachable, {len(keys)} keys")

    async def storage(self) -> ComponentHealth:
        directory = self.settings.var_dir

        def probe() -> None:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".health-", delete=True) as handle:
                handle.write(b"ok")
                handle.flush()
                os.fsync(handle.fileno())

        try:
            await asyncio.to_thread(probe)
        except OSError as exc:
            return ComponentHealth("down", 0.0, f"{directory} is not writable ({exc.strerror or type(exc).__name__})")
        return ComponentHealth("ok", 0.0, f"{directory} writable")

    async def resources(self) -> ComponentHealth:
        memory = psutil.virtual_memory()
        cpu = psutil.cpu_percent(interval=None)
        disk = psutil.disk_usage(str(_existing(self.settings.var_dir)))
        process = psutil.Process()
        data = {
            "memory_percent": memory.percent,
            "process_rss_bytes": process.memory_info().rss,
            "cpu_percent": cpu,
            "disk_percent": disk.percent,
            "disk_free_bytes": disk.free,
        }
        over = [
            f"{name} {value}% > {limit}%"
            for name, value, limit in (
                ("memory", memory.percent, self.settings.health_memory_percent),
                ("cpu", cpu, self.settings.health_cpu_percent),
                ("disk", disk.percent, self.settings.health_disk_percent),
            )
            if value > limit
        ]
        if over:
            return ComponentHealth("degraded", 0.0, "; ".join(over), data)
        return ComponentHealth("ok", 0.0, "within limits", data)

    async def webhook_backlog(self) -> ComponentHealth:
        queue = await self.db.run(log.backlog)
        failed, dead, age = queue.failed, queue.dead, queue.oldest_age_seconds()
        data = {"failed": failed, "dead": dead, "oldest_failed_age_seconds": round(age, 1)}
        if dead:
            return ComponentHealth("degraded", 0.0, f"{dead} dead events need a person", data)
        if failed > self.settings.health_backlog_events:
            return ComponentHealth("degraded", 0.0, f"{failed} failed events waiting for a retry", data)
        return ComponentHealth("ok", 0.0, f"{failed} failed events waiting for a retry", data)


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


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


@get(
    "/api/health",
    tags=["health"],
    summary="Every component's health, resource use and an overall status",
    description="`healthy`, `degraded` (something is wrong but the service works) or `unhealthy` (503: "
    "the database is unreachable), with a score out of 100 and each component's status, response time and "
    "details. Stripe's and the identity provider's checks are cached.",
    opt=_PROBE,
    responses={503: ResponseSpec(HealthReport, description="Unhealthy: the database cannot be reached.")},
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthReport]:
    checker: HealthChecker = request.app.state.health
    report = await checker.report()
    if not await _may_see_details(request, checker.settings):
        # Paths, memory, disk and event counts tell an attacker too much: public health is the
        # status and score only.
        report = msgspec.structs.replace(report, components={})
    return Response(report, status_code=503 if report.status == "unhealthy" else 200)


async def _may_see_details(request: Request[Any, Any, Any], settings: Settings) -> bool:
    """An admin token, or a connection from one of ``HEALTH_DETAIL_NETWORKS``."""
    peer = request.client.host if request.client else None
    if peer and settings.health_detail_networks:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            address = None
        if address is not None and any(
            address in ipaddress.ip_network(net, strict=False) for net in settings.health_detail_networks
        ):
            return True
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.verify(token.strip())
    except AuthError:
        return False
    return principal.is_admin
