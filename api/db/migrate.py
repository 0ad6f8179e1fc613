"""Schema migrations (Alembic), driven from ``faddl db``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from api.settings import Settings

__all__ = ["alembic_config", "current_heads", "downgrade", "expected_heads", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointing at our migrations and the configured database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``; then give the user role the password of
    ``DATABASE_USER_URL``, when it has one (so the role's password follows the setting)."""
    command.upgrade(alembic_config(settings), revision)
    password = make_url(settings.user_database_url).password if not settings.is_sqlite else None
    if password:
        asyncio.run(_set_user_role_password(settings, str(password)))


async def _set_user_role_password(settings: Settings, password: str) -> None:
    from api.db.engine import Database

    database = Database(settings, assume_service_role=False)
    role = settings.database_user_role.replace('"', '""')
    literal = password.replace("'", "''")  # a utility statement takes no bind parameters
    try:
        async with database.engine.begin() as conn:
            await conn.exec_driver_sql(f"ALTER ROLE \"{role}\" PASSWORD '{literal}'")
    finally:
        await database.dispose()


def downgrade(settings: Settings, revision: str) -> None:
    """Take the database schema down to ``revision`` (``base`` drops everything)."""
    command.downgrade(alembic_config(settings), revision)


def expected_heads(settings: Settings) -> set[str]:
    """The revisions a fully migrated database is at."""
    return set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


async def current_heads(conn: AsyncConnection) -> set[str]:
    """The revisions the connected database is at."""

    def _heads(sync_conn: object) -> set[str]:
        return set(MigrationContext.configure(sync_conn).get_current_heads())  # type: ignore[arg-type]

    return await conn.run_sync(_heads)
