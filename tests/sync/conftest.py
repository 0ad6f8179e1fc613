"""The sync's tests share one simulated account, served by the Stripe API stand-in."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from api.db.engine import Database
from api.db.models import subscription_events, user_subscriptions
from api.events.model import parse_event
from api.gateway.reading import StripeReader
from api.ingest.processing import EventProcessor
from api.settings import Settings
from api.sync.account import AccountSync
from api.sync.reports import SyncReport
from simulator.engine import SimConfig, Simulation
from simulator.stripe_api import StripeAccount, StripeApiServer
from simulator.truth import ground_truth

KEY = "sk_test_standin"


@pytest.fixture(scope="module")
def simulated() -> tuple[Simulation, dict[str, Any]]:
    sim = Simulation(SimConfig(customers=40, months=6, seed=23)).run()
    return sim, ground_truth(sim)


@pytest.fixture
def stand_in(simulated: tuple[Simulation, dict[str, Any]]) -> Iterator[StripeApiServer]:
    with StripeApiServer(StripeAccount.of(simulated[0]), KEY) as server:
        yield server


def on(settings: Settings, server: StripeApiServer, **overrides: Any) -> Settings:
    return dataclasses.replace(
        settings,
        stripe_api_key=KEY,
        stripe_api_base=server.url,
        stripe_sync_requests_per_second=-1,
        stripe_max_network_retries=overrides.pop("retries", 3),
        **overrides,
    )


async def sync(settings: Settings, clock: Callable[[], float] | None = None, **options: Any) -> SyncReport:
    """One sync; ``clock`` is the account's time (the stand-in's ``as_of``), not the machine's."""
    db = Database(settings)
    reader = StripeReader(settings)
    try:
        sync = AccountSync(EventProcessor(db, settings), reader, **({"clock": clock} if clock else {}))
        return await sync.run(**options)
    finally:
        await reader.close()
        await db.dispose()


async def read(settings: Settings) -> tuple[dict[str, dict[str, Any]], int]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(select(user_subscriptions))).mappings().all()
            count = (await conn.execute(select(func.count()).select_from(subscription_events))).scalar_one()
        return {row["stripe_subscription_id"]: dict(row) for row in rows}, int(count)
    finally:
        await db.dispose()


def assert_matches_truth(subs: dict[str, dict[str, Any]], truth: dict[str, Any]) -> None:
    assert set(subs) == set(truth["subscriptions"])
    for sub_id, expected in truth["subscriptions"].items():
        got = subs[sub_id]
        assert (got["status"], got["quantity"], got["cancel_at_period_end"], got["price_id"]) == (
            expected["status"],
            expected["quantity"],
            expected["cancel_at_period_end"],
            expected["price_id"],
        ), sub_id
        assert got["user_id"] == expected["user_id"], sub_id


async def deliver(settings: Settings, events: list[dict[str, Any]], batch: int = 200) -> None:
    """Raw Stripe events through the processor, as webhook deliveries go, ``batch`` to a
    transaction (letting other tasks run between batches)."""
    db = Database(settings)
    try:
        processor = EventProcessor(db, settings)
        parsed = [parse_event(json.dumps(event)) for event in events]
        for start in range(0, len(parsed), batch):
            await processor.ingest_many(parsed[start : start + batch])
            await asyncio.sleep(0)
    finally:
        await db.dispose()
