"""The one module that knows SQLite from PostgreSQL in statements (the engine's own settings, WAL
and roles, are :mod:`api.db.engine`): upserts, row locks, advisory locks, list parameters, and
timestamps as each driver hands them back. Everything else asks here, by dialect name."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import ARRAY, ColumnElement, Table, Text, any_, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

__all__ = ["advisory_locks", "for_update", "insert", "is_postgres", "one_of", "utc"]


def is_postgres(dialect: str) -> bool:
    return dialect == "postgresql"


def insert(table: Table, dialect: str) -> Any:
    """The dialect's ``INSERT`` for ``table``, which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (both databases speak ``ON CONFLICT``)."""
    module = postgresql if is_postgres(dialect) else sqlite
    return module.insert(table)


def for_update(query: Select[Any], dialect: str) -> Select[Any]:
    """``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time and no row locks."""
    return query.with_for_update() if is_postgres(dialect) else query


_ADVISORY_LOCKS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM (SELECT unnest(:keys) AS k ORDER BY 1) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(Text())))


async def advisory_locks(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Hold ``keys`` until the transaction ends: PostgreSQL advisory locks, taken in sorted order in
    one statement (so two transactions never wait on each other in a cycle). Nothing on SQLite,
    which already runs one writer at a time."""
    ordered = sorted(set(keys))
    if ordered and is_postgres(conn.dialect.name):
        await conn.execute(_ADVISORY_LOCKS, {"keys": ordered})


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime: SQLite hands them back naive (they are UTC),
    and an API must not send a date-time without its offset."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def one_of(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``: ``= ANY(:name)`` on PostgreSQL, so the
    statement text (and the server's prepared statement) does not change with the list's length;
    an expanding ``IN`` elsewhere."""
    if is_postgres(dialect):
        return column == any_(bindparam(name, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]
