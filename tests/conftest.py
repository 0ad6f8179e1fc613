"""Shared fixtures, in layers: services (PostgreSQL and Redis, skipped or failed without them), then
databases (a copy of a template migrated once per session, per test), then the app and its client.
Stripe-shaped objects, events and signed delivery are in :mod:`tests.factories`."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import make_url

from api.app import create_app
from api.db.engine import Database
from api.db.migrate import upgrade
from api.ingest.processing import EventProcessor
from api.settings import Settings
from tests.factories import SECRET

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# -- temporary directories in memory -------------------------------------------------------------
# SQLite commits with synchronous=FULL, an fsync each: the tests do not test the disk, and on
# tmpfs (/dev/shm) the same commits are about a fifth faster. The controller makes one directory
# (xdist workers each get a folder of it) and removes it at the end; --basetemp still wins.
_MEMORY = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp or hasattr(config, "workerinput") or not _MEMORY.is_dir():
        return
    if not os.access(_MEMORY, os.W_OK):
        return
    config.option.basetemp = tempfile.mkdtemp(prefix="faddl-tests-", dir=_MEMORY)
    config.stash[_BASETEMP] = Path(config.option.basetemp)


def pytest_unconfigure(config: pytest.Config) -> None:
    made = config.stash.get(_BASETEMP, None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


_BASETEMP = pytest.StashKey[Path]()


def service_missing(reason: str) -> None:
    """Skip, or fail under REQUIRE_SERVICES=1 (CI), when a test's service is not running."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


# -- databases ----------------------------------------------------------------------------------
def sqlite_settings(path: Path, **overrides: Any) -> Settings:
    """Settings on the SQLite file at ``path``; any field can be overridden."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{path}",
        "stripe_webhook_secrets": (SECRET,),
        "stripe_api_key": "sk_test_not_used",
        "log_json": True,
        "rate_limits_enabled": False,  # tests of the limits turn them on
        "stripe_catchup_seconds": 0,  # the worker's own calls to Stripe: tests of them set a stand-in
        "stripe_reconcile_seconds": 0,
        "var_dir": path.parent / "var",
    }
    return Settings(**(values | overrides))


async def _pg_admin(statement: str) -> None:
    from bench.pg import admin_execute

    await admin_execute(PG_ADMIN_URL, statement)


def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database (empty, or a copy of ``template``); dropped afterwards."""
    name = f"faddl_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"{copy}'))
    except (OSError, ImportError) as exc:
        service_missing(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    except Exception as exc:
        if "connect" in str(exc).lower() or "refused" in str(exc).lower():
            service_missing(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
        raise
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pg_settings(url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=url,
        stripe_webhook_secrets=(SECRET,),
        stripe_api_key="sk_test_not_used",
        rate_limits_enabled=False,  # tests of the limits turn them on
        stripe_catchup_seconds=0,  # the worker's own calls to Stripe: tests of them set a stand-in
        stripe_reconcile_seconds=0,
        **overrides,
    )


# -- migrated databases, copied from one template per test session ------------------------------
# Migrating costs about 0.3 s on SQLite and 0.7 s on PostgreSQL; a copy of a migrated template
# costs a few milliseconds (a file copy; CREATE DATABASE ... TEMPLATE). Each xdist worker makes its
# own templates, so no two copies of one template run at once.
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "faddl.db"
    upgrade(sqlite_settings(path))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the one file
    return path


def migrated_sqlite(template: Path, path: Path, **overrides: Any) -> Settings:
    """Settings on a migrated SQLite file at ``path``, copied from ``template``."""
    shutil.copyfile(template, path)
    return sqlite_settings(path, **overrides)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a migrated PostgreSQL database that tests' databases are copied from."""
    for url in postgres_database():
        upgrade(pg_settings(url))
        yield str(make_url(url).database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Migrated settings on each database the test should run on."""
    if request.param == "sqlite":
        yield migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "faddl.db")
        return
    for url in postgres_database(request.getfixturevalue("postgres_template")):
        yield pg_settings(url)


@pytest.fixture
def redis_url() -> str:
    """The test Redis (skipped without it, or failing under REQUIRE_SERVICES=1)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def sqlite_only(tmp_path: Path, sqlite_template: Path) -> Settings:
    return migrated_sqlite(sqlite_template, tmp_path / "faddl.db")


@pytest.fixture
def postgres(postgres_template: str) -> Iterator[Settings]:
    for url in postgres_database(postgres_template):
        yield pg_settings(url)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
async def processor(db: Database) -> EventProcessor:
    return EventProcessor(db, db.settings)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


# -- Stripe-shaped events -------------------------------------------------------------------------
