"""Migrations: up, down and up again; the models and the migrations describe the same schema."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from api.db.engine import Database
from api.db.migrate import current_heads, downgrade, expected_heads, upgrade
from api.db.models import Base
from api.settings import Settings


async def _schema_diff(settings: Settings) -> list[object]:
    db = Database(settings, assume_service_role=False)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await db.dispose()


async def _tables(settings: Settings) -> set[str]:
    db = Database(settings, assume_service_role=False)
    try:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await db.dispose()


async def _heads(settings: Settings) -> set[str]:
    db = Database(settings, assume_service_role=False)
    try:
        async with db.engine.connect() as conn:
            return await current_heads(conn)
    finally:
        await db.dispose()


def test_models_match_migrations(settings: Settings) -> None:
    assert asyncio.run(_schema_diff(settings)) == []
    assert asyncio.run(_heads(settings)) == expected_heads(settings)


def test_downgrade_to_base_and_upgrade_again(settings: Settings) -> None:
    assert "subscription_events" in asyncio.run(_tables(settings))
    downgrade(settings, "base")
    assert asyncio.run(_tables(settings)) <= {"alembic_version"}
    upgrade(settings)
    upgrade(settings)  # idempotent
    assert {
        "subscription_events",
        "user_subscriptions",
        "payment_history",
        "subscription_usage",
        "customers",
    } <= (asyncio.run(_tables(settings)))
