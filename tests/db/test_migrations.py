"""Migrations: up, down and up again; the models and the migrations describe the same schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database
from api.db.migrate import downgrade, expected_heads, upgrade
from api.db.models import Base, customers
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


def test_a_downgrade_leaves_the_other_databases_on_the_server_served(postgres: Settings) -> None:
    """Roles belong to the whole PostgreSQL server: downgrading one database (here to 0004) must
    not take the user role's LOGIN away from the others (it did, and user-bound reads elsewhere
    failed with 'role "faddl_user" is not permitted to log in')."""
    from tests.conftest import pg_settings, postgres_database

    for other_url in postgres_database():
        other = pg_settings(other_url)
        upgrade(other)
        downgrade(other, "0004")

        async def read_as_a_user() -> int:
            db = Database(postgres)
            try:
                return await db.run(_count_customers, user_id="user_a")
            finally:
                await db.dispose()

        assert asyncio.run(read_as_a_user()) == 0


async def _count_customers(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(customers))).scalar_one())
