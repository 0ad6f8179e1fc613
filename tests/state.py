"""The projection state of a database, comparable row by row across databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from api.db.engine import Database
from api.projections.projector import PROJECTION_TABLES


def _normal(value: Any) -> Any:
    # SQLite hands back naive UTC datetimes, PostgreSQL aware ones.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def projection_state(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, without surrogate ids and wall-clock timestamps, sorted."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for table in PROJECTION_TABLES:
            columns = [c for c in table.c if c.name not in ("id", "updated_at")]
            result = await conn.execute(select(*columns))
            state[table.name] = sorted(
                (tuple(_normal(v) for v in row) for row in result), key=lambda r: tuple(str(v) for v in r)
            )
    return state
