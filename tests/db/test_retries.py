"""Transient database errors are retried a bounded number of times, then answered with 503."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.app import create_app
from api.db.engine import Database, DatabaseUnavailable, is_transient
from api.security.tokens import mint_dev_token
from api.settings import Settings


class Serialization(Exception):
    sqlstate = "40001"


async def test_a_transient_error_is_retried(settings: Settings) -> None:
    db = Database(settings)
    calls = 0

    async def flaky(conn: AsyncConnection) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OperationalError("SELECT 1", {}, ConnectionResetError("connection reset by peer"))
        return int((await conn.execute(text("SELECT 41 + 1"))).scalar_one())

    try:
        assert await db.run(flaky, write=True) == 42
        assert calls == 3
    finally:
        await db.dispose()


async def test_retries_are_bounded(settings: Settings) -> None:
    db = Database(dataclasses.replace(settings, database_retry_attempts=2))
    calls = 0

    async def always(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        raise DBAPIError("UPDATE x", {}, Serialization("could not serialize access"))

    try:
        with pytest.raises(DatabaseUnavailable):
            await db.run(always, write=True)
        assert calls == 2
    finally:
        await db.dispose()


async def test_other_errors_are_not_retried(settings: Settings) -> None:
    db = Database(settings)
    calls = 0

    async def buggy(conn: AsyncConnection) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not the database")

    try:
        with pytest.raises(ValueError, match="a bug"):
            await db.run(buggy)
        assert calls == 1
    finally:
        await db.dispose()


def test_classification() -> None:
    assert is_transient(DBAPIError("x", {}, Serialization()))
    assert is_transient(OperationalError("x", {}, Exception("database is locked")))
    assert not is_transient(DBAPIError("x", {}, Exception("syntax error")))
    assert not is_transient(ValueError())


async def test_an_unreachable_database_is_a_503(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'faddl.db'}",
        stripe_webhook_secrets=("whsec_x",),
        stripe_api_key="sk_test_x",
        auth_dev_mode=True,
        var_dir=tmp_path / "var",
        rate_limits_enabled=False,
    )
    token = mint_dev_token(settings, "u", [])
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.get("/api/subscription", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    body = answer.json()
    assert body["type"] == "urn:faddl:problem:database"
    assert body["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "5"
    assert "sqlite" not in answer.text.lower()
