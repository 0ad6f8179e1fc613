"""The Events API catch-up: deliveries lost within Stripe's 30 days are filled with the exact
events (same ids), events both delivered and fetched are stored once, and the projections end as
if nothing had been lost."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from api.db.engine import Database
from api.db.models import subscription_events
from api.settings import Settings
from api.sync.events import FOLLOWED_OBJECTS, RETENTION_SECONDS
from simulator.clock import DAY
from simulator.engine import Simulation
from simulator.stripe_api import StripeApiServer
from tests.state import projection_state
from tests.sync.conftest import deliver, on, sync


async def logged(settings: Settings) -> tuple[set[str], dict[str, Any]]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            query = select(subscription_events.c.event_id).where(subscription_events.c.source != "service")
            ids = {row[0] for row in await conn.execute(query)}
        return ids, await projection_state(db)
    finally:
        await db.dispose()


async def test_a_gap_in_deliveries_within_30_days_is_filled_with_the_exact_events(
    settings: Settings,
    sqlite_template: Any,
    tmp_path: Any,
    stand_in: StripeApiServer,
    simulated: tuple[Simulation, Any],
) -> None:
    from tests.conftest import migrated_sqlite

    events = sorted(simulated[0].events, key=lambda e: e["created"])
    as_of = stand_in.account.as_of = events[-1]["created"]
    gap = (as_of - 20 * DAY, as_of - 10 * DAY)  # ten days of deliveries lost
    delivered = [e for e in events if not gap[0] <= e["created"] < gap[1]]
    lost = [e for e in events if gap[0] <= e["created"] < gap[1]]
    assert lost, "the history should have events in the gap"

    settings = on(settings, stand_in)
    await deliver(settings, delivered)
    report = await sync(settings, clock=lambda: as_of, only=["events"])
    (events_report,) = report.resources
    in_window = [e for e in events if e["created"] >= as_of - RETENTION_SECONDS]
    followed = [e for e in in_window if e["data"]["object"]["object"] in FOLLOWED_OBJECTS]
    assert events_report.fetched == len(in_window)
    assert events_report.stored == len(lost)  # the lost ones, exactly
    assert events_report.unchanged == len(followed) - len(lost)  # delivered before: stored once
    ids, state = await logged(settings)
    assert ids == {e["id"] for e in events}

    everything = migrated_sqlite(sqlite_template, tmp_path / "everything.db")
    await deliver(everything, events)
    assert state == (await logged(everything))[1]

    again = await sync(settings, clock=lambda: as_of, only=["events"])
    assert again.resources[0].stored == 0
