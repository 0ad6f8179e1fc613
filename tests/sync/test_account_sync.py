"""The sync against a simulated account served by the Stripe API stand-in (a real HTTP server,
read by the real SDK), on each database: the projections it builds match the simulator's truth;
a second sync stores nothing; a sync that Stripe stops answering mid-run resumes where it stopped
and stores nothing twice; 429 storms and a 500 on one page only slow it down."""

from __future__ import annotations

from typing import Any

import pytest

from api.gateway.reading import StripeUnreachable
from api.settings import Settings
from simulator.engine import Simulation
from simulator.stripe_api import StripeApiServer
from tests.sync.conftest import assert_matches_truth, on, read, sync


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
    """What the sync keeps: checkout sessions once settled, invoice items while pending."""
    if name == "invoiceitems":
        return obj.get("invoice") is None
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
