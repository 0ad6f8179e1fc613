"""Reconciliation against the Stripe API stand-in: nothing drifts after a sync; a change made at
Stripe behind the service's back is found field by field, stored, counted and healed; the
command exits 1 when it found drift and 0 when there was none."""

from __future__ import annotations

import copy
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select

from api.db.engine import Database
from api.db.models import sync_drift
from api.gateway.reading import StripeReader
from api.ingest.processing import EventProcessor
from api.settings import Settings
from api.sync.account import AccountSync
from api.sync.reconcile import Reconciler, ReconcileReport
from simulator.engine import Simulation
from simulator.stripe_api import StripeApiServer
from tests.processes import faddl_here
from tests.sync.conftest import KEY, on, read, sync


async def reconcile(settings: Settings, as_of: int) -> ReconcileReport:
    db = Database(settings)
    reader = StripeReader(settings)
    try:
        account_sync = AccountSync(EventProcessor(db, settings), reader, clock=lambda: as_of)
        return await Reconciler(account_sync, settings).run()
    finally:
        await reader.close()
        await db.dispose()


async def drift_rows(settings: Settings) -> list[dict[str, Any]]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            return [dict(row) for row in (await conn.execute(select(sync_drift))).mappings()]
    finally:
        await db.dispose()


def drift_count(field: str) -> float:
    return REGISTRY.get_sample_value("faddl_reconcile_drift_total", {"object": "subscription", "field": field}) or 0.0


async def test_drift_behind_our_back_is_found_stored_counted_and_healed(
    settings: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, Any]
) -> None:
    settings = on(settings, stand_in)
    as_of = stand_in.account.as_of
    await sync(settings, clock=lambda: as_of)
    clean = await reconcile(settings, as_of)
    assert clean.checked > 0
    assert clean.drift == []

    subs, _ = await read(settings)
    live = next(s for s in subs.values() if s["status"] == "active" and s["quantity"] == 1)
    _, latest = stand_in.account._state()
    changed = copy.deepcopy(latest[live["stripe_subscription_id"]])
    item = changed["items"]["data"][0]
    item["quantity"] = 4
    changed["cancel_at_period_end"] = True
    stand_in.account.change(changed)
    before = drift_count("quantity")

    found = await reconcile(settings, as_of)
    assert [(d.object_id, sorted(d.fields), d.healed) for d in found.drift] == [
        (live["stripe_subscription_id"], ["cancel_at_period_end", "quantity"], True)
    ]
    assert found.drift[0].fields["quantity"] == (1, 4)
    assert drift_count("quantity") == before + 1
    healed = (await read(settings))[0][live["stripe_subscription_id"]]
    assert (healed["quantity"], healed["cancel_at_period_end"]) == (4, True)
    (row,) = await drift_rows(settings)
    assert (row["object_id"], row["healed_at"] is not None) == (live["stripe_subscription_id"], True)

    assert (await reconcile(settings, as_of)).drift == []


def test_the_command_exits_1_on_drift_and_0_without(
    sqlite_only: Settings, stand_in: StripeApiServer, simulated: tuple[Simulation, Any]
) -> None:
    settings = on(sqlite_only, stand_in)
    env = {
        "DATABASE_URL": settings.database_url,
        "VAR_DIR": str(settings.var_dir),
        "STRIPE_API_KEY": KEY,
        "STRIPE_API_BASE": stand_in.url,
        "STRIPE_WEBHOOK_SECRET": "whsec_not_used_here",
        "STRIPE_SYNC_REQUESTS_PER_SECOND": "-1",
    }
    faddl_here(env, "sync", "--only", "customers,subscriptions,invoices")
    assert faddl_here(env, "reconcile").returncode == 0
    _, latest = stand_in.account._state()
    sub = next(o for o in latest.values() if o.get("object") == "subscription" and o["status"] == "active")
    changed = copy.deepcopy(sub)
    changed["status"] = "past_due"
    stand_in.account.change(changed)
    result = faddl_here(env, "reconcile", check=False)
    assert result.returncode == 1
    assert f"subscription {sub['id']}: status active -> past_due (healed)" in result.stdout
    assert faddl_here(env, "reconcile").returncode == 0
