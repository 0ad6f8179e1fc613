"""Migrations: up, down and up again; the models and the migrations describe the same schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from api.db.engine import Database
from api.db.migrate import downgrade, expected_heads, upgrade
from api.db.models import Base
from api.settings import Settings

T = TypeVar("T")


async def _inspect(settings: Settings, look: Callable[[Connection], T]) -> T:
    """Run ``look`` on a plain (non-role) connection to the database."""
    db = Database(settings, assume_service_role=False)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await db.dispose()


def _schema_diff(settings: Settings) -> list[object]:
    return asyncio.run(_inspect(settings, lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)))


def _tables(settings: Settings) -> set[str]:
    return asyncio.run(_inspect(settings, lambda c: set(inspect(c).get_table_names())))


def _heads(settings: Settings) -> set[str]:
    return asyncio.run(_inspect(settings, lambda c: set(MigrationContext.configure(c).get_current_heads())))


def test_models_match_migrations(settings: Settings) -> None:
    assert _schema_diff(settings) == []
    assert _heads(settings) == expected_heads(settings)


def test_downgrade_to_base_and_upgrade_again(settings: Settings) -> None:
    assert "subscription_events" in _tables(settings)
    downgrade(settings, "base")
    assert _tables(settings) <= {"alembic_version"}
    upgrade(settings)
    upgrade(settings)  # idempotent
    assert {
        "subscription_events",
        "user_subscriptions",
        "payment_history",
        "subscription_usage",
        "customers",
    } <= (_tables(settings))
