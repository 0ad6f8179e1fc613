"""A log with something in every section of every dashboard page: a simulated account adopted as a
real one is (``faddl sync`` through the stand-in at month 4 of 8, its webhooks after: months that
rest on reconstruction), with disputes and failed payments, security incidents of several kinds,
and the business alerts evaluated over it (some firing)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine

from api.db.engine import Database
from api.db.migrate import upgrade
from api.db.models import security_incidents
from api.demo.adoption import adopt
from api.ingest.processing import EventProcessor
from api.settings import Settings
from simulator.clock import add_months
from simulator.engine import SimConfig, Simulation
from tests.conftest import sqlite_settings
from tests.processes import faddl_here, service_env

START = datetime(2025, 1, 1, tzinfo=UTC)
# (kind, days ago, how many): a burst of attacks and of rate-limit abuse now, enough for the
# security_incident_burst (high) and rate_limit_storm (medium) alerts to fire.
INCIDENTS = (
    ("sql_injection", 1, 2),
    ("xss", 0, 25),
    ("rate_limit_abuse", 0, 12),
    ("rate_limit_abuse", 1, 1),
    ("blocked", 0, 1),
)


def every_section(tmp_path: Path) -> dict[str, str]:
    """The environment of a service over such a log in ``tmp_path``."""
    # The pages themselves are tested here; the login in front of them apart (DASHBOARD_LOGIN on).
    env = service_env(tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x", DASHBOARD_LOGIN="0")
    settings = sqlite_settings(tmp_path / "faddl.db")
    upgrade(settings)
    sim = Simulation(SimConfig(customers=40, months=8, seed=8, start=START)).run()
    assert any(e["type"] == "charge.dispute.created" for e in sim.events)
    asyncio.run(_adopt(dataclasses.replace(settings, var_dir=Path(env["VAR_DIR"])), sim))
    _record_incidents(env["DATABASE_URL"])
    faddl_here(env, "alerts", "evaluate", check=False)  # exits 1 when an alert fires
    return env


async def _adopt(settings: Settings, sim: Simulation) -> None:
    db = Database(settings)
    try:
        await adopt(EventProcessor(db, settings), sim, add_months(sim.start, 4))
    finally:
        await db.dispose()


def _record_incidents(url: str) -> None:
    """Security incidents of four kinds over two days, as the protection layer records them."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    rows = [
        {"kind": kind, "created_at": now - timedelta(days=day), "route": "/api/subscription", "method": "GET"}
        for kind, day, count in INCIDENTS
        for _ in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(security_incidents.insert(), rows)
    engine.dispose()
