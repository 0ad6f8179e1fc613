"""Dropped pooled connections (a PostgreSQL restart, a failover, ``pg_terminate_backend``) never
make a 500: every route's transactions go through the one retrying path, the pool pings a
connection before handing it out, and a database that stays away is a 503 with ``Retry-After``."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import make_url

from api.app import create_app
from api.settings import Settings
from bench.tcp_proxy import TcpProxy
from tests.conftest import _pg_admin
from tests.demo.test_demo_flows import auth, demo, subscribe


async def _answers(client: AsyncTestClient[Any], settings: Settings, portal: str) -> dict[str, int]:
    admin = auth_admin(settings)
    user = auth(settings, "dropped_user")
    calls = {
        "dashboard": client.get("/api/admin/dashboard", headers=admin),
        "alerts": client.get("/api/admin/alerts", headers=admin),
        "events": client.get("/api/admin/events", headers=admin),
        "incidents": client.get("/api/admin/security/incidents", headers=admin),
        "retry": client.post("/api/admin/events/evt_none/retry", headers=admin),
        "portal": client.get(portal),
        "subscription": client.get("/api/subscription", headers=user),
        "usage": client.get("/api/usage", headers=user),
    }
    out: dict[str, int] = {}
    for name, call in calls.items():
        response = await call
        assert "Traceback" not in response.text
        if response.status_code == 503:
            assert response.headers["retry-after"], name
        out[name] = response.status_code
    return out


def auth_admin(settings: Settings) -> dict[str, str]:
    from tests.protection.helpers import auth as with_roles

    return with_roles(settings, "ops", ["admin"])


HEALTHY = {
    "dashboard": 200,
    "alerts": 200,
    "events": 200,
    "incidents": 200,
    "retry": 404,
    "portal": 200,
    "subscription": 200,
    "usage": 200,
}


async def test_dropped_connections_are_replaced_and_a_database_away_is_503(postgres: Settings, tmp_path: Any) -> None:
    url = make_url(postgres.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    try:
        proxied = dataclasses.replace(
            demo(postgres, tmp_path),
            database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            database_pool_size=4,
        )
        async with AsyncTestClient(create_app(proxied)) as client:
            await subscribe(client, proxied, "dropped_user")
            opened = await client.post("/api/billing-portal", headers=auth(proxied, "dropped_user"))
            portal = opened.json()["url"].removeprefix(proxied.public_base_url)
            assert await _answers(client, proxied, portal) == HEALTHY  # the pool now holds connections

            # The server ends every session of the database (as a restart or failover does).
            await _pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{url.database}' AND pid <> pg_backend_pid()"
            )
            assert await _answers(client, proxied, portal) == HEALTHY

            proxy.cut()  # the network drops them instead: the sockets die without a goodbye
            assert await _answers(client, proxied, portal) == HEALTHY

            proxy.stop()  # the database is away
            assert set((await _answers(client, proxied, portal)).values()) == {503}

            proxy.start()
            assert await _answers(client, proxied, portal) == HEALTHY
    finally:
        proxy.close()
