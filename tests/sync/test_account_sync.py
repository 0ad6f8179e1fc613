"""The sync against a simulated account served by the Stripe API stand-in (a real HTTP server,
read by the real SDK), on each database: the projections it builds match the simulator's truth;
a second sync stores nothing; a sync that Stripe stops answering mid-run resumes where it stopped
and stores nothing twice; 429 storms and a 500 on one page only slow it down."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from api.db.engine import Database
from api.db.models import subscription_events, user_subscriptions
from api.gateway.reading import StripeReader, StripeUnreachable
from api.ingest.processing import EventProcessor
from api.settings import Settings
from api.sync.account import AccountSync, SyncReport
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


async def sync(settings: Settings, **options: Any) -> SyncReport:
    db = Database(settings)
    reader = StripeReader(settings)
    try:
        return await AccountSync(EventProcessor(db, settings), reader).run(**options)
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


async def test_an_account_is_brought_in_and_a_second_sync_stores_nothing(
    settings: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, dict[str, Any]]
) -> None:
    settings = on(settings, stand_in)
    report = await sync(settings)
    assert report.total("failed") == 0
    assert report.total("stored") == report.total("fetched") - report.total("skipped")
    assert {r.name: r.unavailable for r in report.resources if r.unavailable} == {}
    subs, rows = await read(settings)
    assert_matches_truth(subs, simulated[1])
    assert rows == report.total("stored")

    again = await sync(settings)
    assert again.total("stored") == 0
    assert again.total("unchanged") == report.total("stored")
    assert (await read(settings))[1] == rows


async def test_a_sync_stopped_by_stripe_resumes_and_stores_nothing_twice(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, dict[str, Any]]
) -> None:
    settings = on(sqlite_only, stand_in, retries=0)
    stand_in.account.faults.down_from = 6  # Stripe gone after five pages
    with pytest.raises(StripeUnreachable):
        await sync(settings)
    stopped_at = (await read(settings))[1]
    assert stopped_at > 0

    stand_in.account.faults.down_from = None
    resumed = await sync(settings)
    assert len([r for r in resumed.resources if r.resumed_after]) == 1  # the list it stopped in
    subs, rows = await read(settings)
    assert_matches_truth(subs, simulated[1])
    # Every object stored exactly once over both runs.
    lists, _ = stand_in.account._state()
    expected = sum(1 for name, objects in lists.items() for o in objects if _kept(name, o))
    assert rows == expected


def _kept(name: str, obj: dict[str, Any]) -> bool:
    return name != "checkout/sessions" or obj.get("status") in ("complete", "expired")


async def test_429_storms_and_a_failing_page_only_slow_it_down(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, dict[str, Any]]
) -> None:
    settings = on(sqlite_only, stand_in, retries=4)
    stand_in.account.faults.rate_limit_every = 4
    stand_in.account.faults.fail_requests = {3}
    report = await sync(settings)
    assert report.total("failed") == 0
    assert_matches_truth((await read(settings))[0], simulated[1])
