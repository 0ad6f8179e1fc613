"""``GET /api/health``: healthy when everything is, and each component failing in turn."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.db.engine import Database
from api.events.log import EventStatus, insert_event
from api.events.model import parse_event
from api.settings import Settings
from tests.factories import make_event, subscription
from tests.processes import free_port


def healthy_settings(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "stripe_api_key": "",
        "stripe_webhook_secrets": (),
        "auth_dev_mode": True,
        "var_dir": tmp_path / "var",
    }
    return dataclasses.replace(settings, **{**defaults, **overrides})


async def check(settings: Settings) -> tuple[int, dict[str, Any]]:
    """The public answer's status code, and the whole report (as an admin would see it)."""
    from api.security.tokens import mint_dev_token

    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        if settings.auth_jwks_url or not settings.auth_dev_mode:  # no dev tokens: the report itself
            answer = await client.get("/api/health")
            return answer.status_code, msgspec.to_builtins(await app.state.health.report())
        token = mint_dev_token(settings, "ops", ["admin"])
        answer = await client.get("/api/health", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.json()


async def test_all_healthy(settings: Settings, tmp_path: Path) -> None:
    status, report = await check(healthy_settings(settings, tmp_path, health_cpu_percent=100))
    assert status == 200
    assert (report["status"], report["score"]) == ("healthy", 100), report
    assert set(report["components"]) == {
        "database",
        "stripe",
        "identity_provider",
        "storage",
        "resources",
        "webhook_backlog",
    }
    resources = report["components"]["resources"]["data"]
    assert {"memory_percent", "cpu_percent", "disk_percent", "process_rss_bytes"} <= set(resources)
    assert all(c["response_ms"] >= 0 for c in report["components"].values())


async def test_database_down_is_unhealthy(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere",  # nothing listens
        auth_dev_mode=True,
        var_dir=tmp_path / "var",
    )
    status, report = await check(settings)
    assert status == 503
    assert report["status"] == "unhealthy"
    assert report["components"]["database"]["status"] == "down"
    assert report["score"] <= 60


async def test_redis_unreachable_degrades(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = healthy_settings(
        sqlite_only, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", health_cpu_percent=100
    )
    status, report = await check(settings)
    assert status == 200
    assert report["status"] == "degraded"
    assert report["components"]["redis"]["status"] == "down"


async def test_stripe_unreachable_degrades(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = healthy_settings(
        sqlite_only, tmp_path, stripe_api_key="sk_test_x", stripe_api_base=f"http://127.0.0.1:{free_port()}"
    )
    status, report = await check(settings)
    assert status == 200
    assert report["components"]["stripe"]["status"] == "down"
    assert report["status"] == "degraded"


async def test_identity_provider_unreachable_degrades(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = healthy_settings(sqlite_only, tmp_path, auth_jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json")
    _status, report = await check(settings)
    assert report["components"]["identity_provider"]["status"] == "down"
    assert "JWKS unreachable" in report["components"]["identity_provider"]["detail"]


async def test_external_checks_are_cached(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = healthy_settings(sqlite_only, tmp_path, auth_jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json")
    app = create_app(settings)
    async with AsyncTestClient(app):
        first = msgspec.to_builtins(await app.state.health.report())
        second = msgspec.to_builtins(await app.state.health.report())
    assert "cached" not in first["components"]["identity_provider"]["data"]
    assert second["components"]["identity_provider"]["data"]["cached"] is True


async def test_unwritable_storage_degrades(sqlite_only: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the var directory should be")
    # (no dev mode: its signing key lives under VAR_DIR too, and the app would not start)
    _status, report = await check(healthy_settings(sqlite_only, tmp_path, var_dir=blocker, auth_dev_mode=False))
    assert report["components"]["storage"]["status"] == "down"
    assert report["status"] == "degraded"


async def test_resource_thresholds_degrade(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = healthy_settings(sqlite_only, tmp_path, health_memory_percent=0, health_disk_percent=0)
    _status, report = await check(settings)
    assert report["components"]["resources"]["status"] == "degraded"
    assert "memory" in report["components"]["resources"]["detail"]


async def test_a_dead_event_degrades(sqlite_only: Settings, tmp_path: Path) -> None:
    db = Database(sqlite_only)
    event = parse_event(json.dumps(make_event("customer.subscription.created", subscription("sub_d", "cus_d"))))
    async with db.write() as conn:
        await insert_event(conn, event, status=EventStatus.DEAD, attempts=8, last_error="boom")
    await db.dispose()
    _status, report = await check(healthy_settings(sqlite_only, tmp_path))
    backlog = report["components"]["webhook_backlog"]
    assert backlog["status"] == "degraded"
    assert backlog["data"]["dead"] == 1
    assert backlog["data"]["oldest_failed_age_seconds"] >= 0


async def test_public_health_is_status_and_score_only(settings: Settings, tmp_path: Path) -> None:
    """Unauthenticated, the answer named a file path, memory, disk and event counts; now only an
    admin token (or a connection from HEALTH_DETAIL_NETWORKS) sees the components."""
    from api.security.tokens import mint_dev_token

    settings = healthy_settings(settings, tmp_path, health_cpu_percent=100)
    async with AsyncTestClient(create_app(settings)) as client:
        public = await client.get("/api/health")
        user = await client.get("/api/health", headers={"Authorization": f"Bearer {mint_dev_token(settings, 'u', [])}"})
        admin = await client.get(
            "/api/health", headers={"Authorization": f"Bearer {mint_dev_token(settings, 'ops', ['admin'])}"}
        )
    assert public.status_code == 200
    assert set(public.json()) == {"status", "score", "checked_at", "components"}
    assert public.json()["components"] == {}
    assert str(tmp_path) not in public.text
    assert user.json()["components"] == {}
    assert "database" in admin.json()["components"]


async def test_detail_networks_see_the_components(sqlite_only: Settings, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from api.monitoring.health import _may_see_details

    settings = healthy_settings(sqlite_only, tmp_path, health_detail_networks=("10.0.0.0/8",))

    def request(host: str) -> Any:
        return SimpleNamespace(client=SimpleNamespace(host=host), headers={}, app=None)

    assert await _may_see_details(request("10.1.2.3"), settings)
    assert not await _may_see_details(request("192.0.2.1"), settings)
    assert not await _may_see_details(request("testclient"), settings)
