"""The sync's edges against the stand-in: one bad object is counted, kept with its reason and
skipped while the rest go in; ``--since`` takes only what was created since; a sync racing live
webhook deliveries ends in the same projections as the deliveries alone followed by the sync."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from api.db.engine import Database
from api.settings import Settings
from simulator.engine import Simulation
from simulator.stripe_api import StripeApiServer
from tests.conftest import migrated_sqlite
from tests.state import projection_state
from tests.sync.conftest import assert_matches_truth, deliver, on, read, sync


async def test_one_bad_object_is_recorded_and_skipped(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, Any]
) -> None:
    _, latest = stand_in.account._state()
    customer = next(o for o in latest.values() if o.get("object") == "customer")
    bad = copy.deepcopy(customer)
    bad["id"] = "cus_" + "x" * 300  # longer than any id the log can store
    stand_in.account.change(bad)
    report = await sync(on(sqlite_only, stand_in), only=["customers", "subscriptions"])
    customers = next(r for r in report.resources if r.name == "customers")
    assert customers.failed == 1
    assert customers.failures[0]["object_id"] == bad["id"]
    assert "255" in customers.failures[0]["reason"]
    assert customers.stored == customers.fetched - 1
    assert_matches_truth((await read(on(sqlite_only, stand_in)))[0], simulated[1])


async def test_since_takes_only_what_was_created_since(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, Any]
) -> None:
    lists, _ = stand_in.account._state()
    created = sorted(int(o["created"]) for o in lists["customers"])
    since = created[len(created) // 2]
    report = await sync(on(sqlite_only, stand_in), only=["customers"], since=since)
    assert report.resources[0].fetched == sum(1 for moment in created if moment >= since)


async def test_a_sync_racing_live_deliveries_ends_as_either_order_would(
    sqlite_only: Settings, sqlite_template: Any, tmp_path: Any, stand_in: StripeApiServer, simulated: Any
) -> None:
    events = sorted(simulated[0].events, key=lambda e: e["created"])
    as_of = stand_in.account.as_of
    racing = on(sqlite_only, stand_in)
    objects = ["customers", "subscriptions"]
    await asyncio.gather(deliver(racing, events, batch=25), sync(racing, clock=lambda: as_of, only=objects))
    one_after_the_other = on(migrated_sqlite(sqlite_template, tmp_path / "apart.db"), stand_in)
    await deliver(one_after_the_other, events, batch=25)
    await sync(one_after_the_other, clock=lambda: as_of, only=objects)

    async def state(settings: Settings) -> dict[str, Any]:
        db = Database(settings)
        try:
            return await projection_state(db)
        finally:
            await db.dispose()

    raced, apart = await state(racing), await state(one_after_the_other)
    assert raced["user_subscriptions"] == apart["user_subscriptions"]
    assert raced["customers"] == apart["customers"]
    assert_matches_truth((await read(racing))[0], simulated[1])
