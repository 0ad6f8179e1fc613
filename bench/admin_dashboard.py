"""Admin dashboard latency (not a test): ``GET /api/admin/dashboard`` over an event log of 1M rows
on SQLite (and PostgreSQL with ``--postgres URL``), with a KPI snapshot of a 24-month document.

    uv run python bench/admin_dashboard.py [--events 1000000] [--requests 50] [--postgres URL]

The rows are written straight into ``subscription_events`` (small payloads: the answer never
reads them), spread over 30 days of ``received_at``, 0.1% failed and a few dead; on PostgreSQL the
table is then analyzed, as autovacuum would after a bulk load. Prints p50/p95/max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from api.app import create_app  # noqa: E402
from api.db.engine import Database  # noqa: E402
from api.db.migrate import upgrade  # noqa: E402
from api.db.models import kpi_snapshots, subscription_events  # noqa: E402
from api.security.tokens import mint_dev_token  # noqa: E402
from api.settings import Settings  # noqa: E402

BATCH = 20_000


async def fill(settings: Settings, count: int) -> None:
    db = Database(settings)
    now = datetime.now(UTC)
    try:
        for first in range(0, count, BATCH):
            rows = []
            for i in range(first, min(count, first + BATCH)):
                status = "dead" if i % 100_000 == 7 else "failed" if i % 1000 == 3 else "processed"
                rows.append(
                    {
                        "event_id": f"evt_bench_{i}",
                        "source": "stripe",
                        "type": "invoice.paid",
                        "livemode": False,
                        "created": 1_700_000_000 + i,
                        "received_at": now - timedelta(seconds=30 * 86_400 * (count - i) / count),
                        "object_type": "invoice",
                        "object_id": f"in_{i}",
                        "customer_id": f"cus_{i % 50_000}",
                        "payload": "{}",
                        "status": status,
                        "attempts": 1,
                    }
                )
            async with db.write() as conn:
                await conn.execute(insert(subscription_events), rows)
        month = {"month": "2026-10", "mrr": {"usd": 10_000_00}, "arr": {"usd": 120_000_00}}
        month |= {"active_subscriptions": 900, "paying_customers": {"usd": 850}}
        month |= {"logo_churn_rate": {"usd": 0.02}, "nrr": {"usd": 1.04}}
        document = {"computed_until": int(now.timestamp()), "months": [month] * 24, "at_risk_mrr": {"usd": 0}}
        if db.dialect == "postgresql":  # what autovacuum does after a bulk load (as the table's owner)
            owner = await asyncpg.connect(settings.database_url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                await owner.execute("ANALYZE subscription_events")
            finally:
                await owner.close()
        async with db.write() as conn:
            await conn.execute(
                insert(kpi_snapshots).values(
                    computed_at=now, computed_until=int(now.timestamp()), duration_ms=1, document=json.dumps(document)
                )
            )
    finally:
        await db.dispose()


async def measure(settings: Settings, requests: int) -> list[float]:
    headers = {"Authorization": f"Bearer {mint_dev_token(settings, 'ops', ['admin'])}"}
    took: list[float] = []
    async with AsyncTestClient(create_app(settings)) as client:
        for _ in range(requests + 3):
            started = time.perf_counter()
            answer = await client.get("/api/admin/dashboard", headers=headers)
            took.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
    return took[3:]  # the first calls warm the health checks' caches


def report(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"| {name} | {statistics.median(took) * 1000:.0f} | {p95 * 1000:.0f} | {max(took) * 1000:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--postgres", help="A PostgreSQL URL of an empty database to fill as well.")
    args = parser.parse_args()
    rows = ["| database | p50 ms | p95 ms | max ms |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db")]
        if args.postgres:
            targets.append(("PostgreSQL", args.postgres))
        for name, url in targets:
            settings = Settings(database_url=url, auth_dev_mode=True, var_dir=Path(tmp), stripe_api_key="sk_test_bench")
            upgrade(settings)
            started = time.perf_counter()
            asyncio.run(fill(settings, args.events))
            print(f"{name}: {args.events:,} events written in {time.perf_counter() - started:.0f} s", flush=True)
            rows.append(report(name, asyncio.run(measure(settings, args.requests))))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
