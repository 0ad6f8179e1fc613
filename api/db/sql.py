"""SQL building blocks shared by the hot paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam

__all__ = ["one_of", "utc"]


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
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]
