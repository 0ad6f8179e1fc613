"""Engine and transactions: how the service connects to SQLite and to PostgreSQL (the differences in
statements are :mod:`api.db.dialects`).

* SQLite (embedded default): WAL, ``synchronous=FULL`` (a 2xx means the event is on disk), and
  every write transaction starts with ``BEGIN IMMEDIATE`` so two processes never dead-end in a
  lock upgrade; inside one process writers queue on an asyncio lock instead of busy-waiting.
* PostgreSQL: asyncpg; each pooled connection assumes the service role (which bypasses row-level
  security). :meth:`Database.user_bound` reads through a second pool logged in as the RLS-bound
  user role itself (``DATABASE_USER_URL``), read-only: that role is a member of no other role, so
  neither ``RESET ROLE`` nor ``SET ROLE`` leads out of it, and it is granted ``SELECT`` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from api.settings import Settings

__all__ = ["Database", "DatabaseUnavailable", "is_transient"]

logger = structlog.get_logger(__name__)

T = TypeVar("T")

_READ_ONLY = "faddl_read_only"
_BIND_USER = text("SELECT set_config('app.user_id', :uid, true), set_config('transaction_read_only', 'on', true)")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or kept failing; nothing was done (answer 503)."""


_TRANSIENT_SQLSTATES = {"40001", "40P01", "08000", "08003", "08006", "57P01", "57P03"}
"""Serialization failure, deadlock, connection exceptions, admin shutdown, cannot connect now."""


def is_transient(exc: BaseException) -> bool:
    """True for errors that a new transaction may not meet: connection loss, refused or reset
    connections, pool time-outs, serialization failures and deadlocks, SQLite's busy database."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if sqlstate in _TRANSIENT_SQLSTATES:
            return True
    return isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError | OSError | TimeoutError
    )


class Database:
    """Owns the engine; hands out write, read and user-bound transactions."""

    def __init__(self, settings: Settings, *, assume_service_role: bool = True) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.is_sqlite = settings.is_sqlite
        self._write_lock = asyncio.Lock()
        self.engine: AsyncEngine = self._create_engine(assume_service_role)
        self._user_engine: AsyncEngine | None = None

    @property
    def user_engine(self) -> AsyncEngine:
        """The pool of user-bound reads (PostgreSQL), made at first use."""
        if self._user_engine is None:
            self._user_engine = self._postgres_engine(self.settings.user_database_url)
        return self._user_engine

    def _create_engine(self, assume_service_role: bool) -> AsyncEngine:
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(self.url, connect_args={"timeout": 30})
            _configure_sqlite(engine)
            return engine
        engine = self._postgres_engine(self.url)
        role = self.settings.database_service_role
        if assume_service_role and role:
            _assume_role_on_connect(engine, role)
        return engine

    def _postgres_engine(self, url: str) -> AsyncEngine:
        return create_async_engine(
            url,
            pool_size=self.settings.database_pool_size,
            max_overflow=self.settings.database_pool_size,
            # No ping at check-out (a round trip on every transaction, the webhook path's included):
            # a connection the server dropped fails its first statement, SQLAlchemy then discards
            # the pool's older connections, and Database.run runs the transaction again on a new one.
            pool_pre_ping=False,
            pool_recycle=1800,
            connect_args={"timeout": 5, "command_timeout": 30},
        )

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on error."""
        if self.is_sqlite:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (deferred on SQLite, so it never waits for writers)."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{_READ_ONLY: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def user_bound(self, user_id: str) -> AsyncIterator[AsyncConnection]:
        """A transaction that can only see ``user_id``'s rows. On PostgreSQL this is enforced by
        row-level security (the user role and ``app.user_id``); SQLite has no RLS, so queries made
        through it must still filter by user."""
        if self.is_sqlite:
            async with self.read() as conn:
                yield conn
            return
        async with self.user_engine.connect() as conn, conn.begin():
            # One round trip: whose rows, and no writes (the role's default too, and its grants).
            await conn.execute(_BIND_USER, {"uid": user_id})
            yield conn

    async def run(
        self,
        op: Callable[[AsyncConnection], Awaitable[T]],
        *,
        write: bool = False,
        user_id: str | None = None,
    ) -> T:
        """Run ``op`` in a transaction (a write one, or one bound to ``user_id``, or a read one),
        again on a transient error (connection lost or reset, serialization failure, deadlock,
        SQLite busy) up to ``DATABASE_RETRY_ATTEMPTS`` times in all, with a short back-off; then
        raise :class:`DatabaseUnavailable`. ``op`` must be safe to run again: it runs in a new
        transaction each time, the failed one rolled back."""
        attempts = max(1, self.settings.database_retry_attempts)
        for attempt in range(1, attempts + 1):
            try:
                if write:
                    async with self.write() as conn:
                        return await op(conn)
                async with self.user_bound(user_id) if user_id is not None else self.read() as conn:
                    return await op(conn)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                logger.warning("transient database error", attempt=attempt, attempts=attempts, error=type(exc).__name__)
                if attempt == attempts:
                    raise DatabaseUnavailable(f"{type(exc).__name__} after {attempts} attempts") from exc
                await asyncio.sleep(0.05 * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._user_engine is not None:
            await self._user_engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver, so BEGIN is ours (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _assume_role_on_connect(engine: AsyncEngine, role: str) -> None:
    statement = f"SET ROLE {_quote_ident(role)}"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
