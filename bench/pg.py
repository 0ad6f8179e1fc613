"""One statement on a PostgreSQL server as its admin (create or drop a database, end sessions):
what the benchmarks and the tests' fixtures both need, outside any application pool."""

from __future__ import annotations

import asyncpg
from sqlalchemy import make_url

__all__ = ["admin_execute"]


async def admin_execute(admin_url: str, statement: str) -> None:
    url = make_url(admin_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
