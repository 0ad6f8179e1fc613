"""Idempotency keys, with Stripe's semantics, on each store (database: SQLite and PostgreSQL;
Redis): replay, mismatch (422), in flight (409), 5xx not stored, per-user scope, expiry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from api.app import create_app
from api.db.engine import Database
from api.db.models import idempotency_keys, subscription_events
from api.gateway.base import CheckoutParams, HostedSession
from api.gateway.errors import ProviderUnavailable
from api.protection.idempotency import DatabaseIdempotencyStore
from api.settings import Settings
from tests.conftest import migrated_sqlite, pg_settings, postgres_database
from tests.protection.helpers import auth, demo


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The database store on each database, and the Redis store (beside SQLite)."""
    if request.param == "postgres":
        for url in postgres_database(request.getfixturevalue("postgres_template")):
            yield demo(pg_settings(url), tmp_path)
        return
    base = migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "faddl.db")
    if request.param == "redis":
        yield demo(base, tmp_path, redis_url=request.getfixturevalue("redis_url"))
    else:
        yield demo(base, tmp_path)


def user() -> str:
    return f"idem_{uuid.uuid4().hex[:10]}"


def counter(outcome: str) -> float:
    return REGISTRY.get_sample_value("faddl_idempotency_requests_total", {"outcome": outcome}) or 0.0


async def count_started(settings: Settings) -> int:
    db = Database(settings)
    try:
        async with db.read() as conn:
            query = select(func.count()).where(subscription_events.c.type == "checkout.started")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await db.dispose()


class SlowGateway:
    """Wraps the demo gateway: checkout waits until released, or fails once with a 503."""

    def __init__(self, inner: Any, *, fail_once: bool = False) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_once = fail_once

    async def create_checkout_session(self, params: CheckoutParams) -> HostedSession:
        if self.fail_once:
            self.fail_once = False
            raise ProviderUnavailable(5)
        self.entered.set()
        await self.release.wait()
        result: HostedSession = await self.inner.create_checkout_session(params)
        return result


def with_gateway(app: Litestar, gateway: Any) -> None:
    app.state.billing.gateway = gateway


async def test_same_key_same_request_replays(store_settings: Settings) -> None:
    settings, who = store_settings, user()
    headers = {**auth(settings, who), "Idempotency-Key": "k-1"}
    hits = counter("hit")
    async with AsyncTestClient(create_app(settings)) as client:
        first = await client.post("/api/checkout", json={"plan": "pro", "interval": "month"}, headers=headers)
        again = await client.post("/api/checkout", json={"interval": "month", "plan": "pro"}, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert counter("hit") == hits + 1
    assert await count_started(settings) == 1


async def test_same_key_other_request_is_422(store_settings: Settings) -> None:
    settings, who = store_settings, user()
    headers = {**auth(settings, who), "Idempotency-Key": "k-2"}
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)).status_code == 201
        other_body = await client.post("/api/checkout", json={"plan": "starter"}, headers=headers)
        other_route = await client.post("/api/subscription/cancel", json={}, headers=headers)
    for answer in (other_body, other_route):
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"] == "urn:faddl:problem:idempotency_mismatch"


async def test_a_request_in_flight_is_409_and_keys_are_per_user(store_settings: Settings) -> None:
    settings, who = store_settings, user()
    app = create_app(settings)
    # Litestar's test client runs the app on another event loop, one request at a time; a real
    # race needs both requests in flight on one loop.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        slow = SlowGateway(app.state.billing.gateway)
        with_gateway(app, slow)
        headers = {**auth(settings, who), "Idempotency-Key": "k-3"}
        first = asyncio.create_task(client.post("/api/checkout", json={"plan": "pro"}, headers=headers))
        await asyncio.wait_for(slow.entered.wait(), 10)
        second = await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)
        slow.release.set()
        done = await first
        other_user = await client.post(
            "/api/checkout", json={"plan": "pro"}, headers={**auth(settings, user()), "Idempotency-Key": "k-3"}
        )
    assert second.status_code == 409
    assert second.headers["retry-after"] == "1"
    assert done.status_code == 201
    assert other_user.status_code == 201
    assert "idempotent-replayed" not in other_user.headers
    assert other_user.json()["session_id"] != done.json()["session_id"]


async def test_a_failed_first_request_is_not_stored(store_settings: Settings) -> None:
    settings, who = store_settings, user()
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        slow = SlowGateway(app.state.billing.gateway, fail_once=True)
        slow.release.set()
        with_gateway(app, slow)
        headers = {**auth(settings, who), "Idempotency-Key": "k-4"}
        failed = await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)
        retried = await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)
    assert failed.status_code == 503
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_keys_expire(store_settings: Settings) -> None:
    import dataclasses

    settings = dataclasses.replace(store_settings, idempotency_checkout_seconds=1)
    headers = {**auth(settings, user()), "Idempotency-Key": "k-5"}
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)).status_code == 201
        await asyncio.sleep(1.3)
        later = await client.post("/api/checkout", json={"plan": "starter"}, headers=headers)
    assert later.status_code == 201, "an expired key is free again"
    assert "idempotent-replayed" not in later.headers


async def test_expired_rows_are_purged(settings: Settings) -> None:
    import dataclasses

    settings = dataclasses.replace(settings, idempotency_checkout_seconds=1)
    db = Database(settings)
    try:
        store = DatabaseIdempotencyStore(db)
        assert (await store.begin("a" * 64, "POST /x", "h", ttl=1)).outcome == "new"
        assert (await store.begin("b" * 64, "POST /x", "h", ttl=3600)).outcome == "new"
        await asyncio.sleep(1.2)
        assert await store.purge() == 1
        async with db.read() as conn:
            left = (await conn.execute(select(idempotency_keys.c.scope_key))).scalars().all()
        assert left == ["b" * 64]
    finally:
        await db.dispose()


async def test_a_bad_key_is_400(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.post(
            "/api/checkout", json={"plan": "pro"}, headers={**auth(settings, user()), "Idempotency-Key": "x" * 256}
        )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["key"] == "Idempotency-Key"
