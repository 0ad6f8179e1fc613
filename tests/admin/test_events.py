"""Admin routes over failed and dead events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from api.db.engine import Database
from api.db.migrate import upgrade
from api.events.log import events
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.factories import SECRET, make_event, post_event, subscription


def broken(event_id: str) -> dict[str, Any]:
    sub = subscription("sub_x", "cus_x")
    sub["items"]["data"][0]["price"]["unit_amount"] = 10**30  # no database integer holds it
    return make_event("customer.subscription.updated", sub, event_id=event_id)


async def test_list_and_requeue_dead_events(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        stripe_api_key="sk_test_x",
        stripe_webhook_secrets=(SECRET,),
        auth_dev_mode=True,
        var_dir=tmp_path / "var",
        retry_max_attempts=1,
    )
    await asyncio.to_thread(upgrade, settings)
    admin = {"Authorization": f"Bearer {mint_dev_token(settings, 'ops', ['admin'])}"}
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await post_event(client, broken("evt_dead"))).json()["outcome"] == "dead"
        listed = await client.get("/api/admin/events", headers=admin)
        assert listed.status_code == 200
        (row,) = listed.json()
        assert (row["event_id"], row["status"], row["attempts"]) == ("evt_dead", "dead", 1)
        assert "Overflow" in row["last_error"] or "too large" in row["last_error"]
        assert (await client.get("/api/admin/events?status=failed", headers=admin)).json() == []
        assert (await client.get("/api/admin/events?status=lost", headers=admin)).status_code == 400
        assert (await client.get("/api/admin/events?limit=0", headers=admin)).status_code == 400

        requeued = await client.post("/api/admin/events/evt_dead/retry", headers=admin)
        assert requeued.status_code == 202
        assert requeued.json()["status"] == "failed"
        missing = await client.post("/api/admin/events/evt_nope/retry", headers=admin)
        assert missing.status_code == 404
        assert "evt_nope" in missing.json()["detail"]
    db = Database(settings)
    try:
        async with db.read() as conn:
            status = (await conn.execute(select(events.c.status).where(events.c.event_id == "evt_dead"))).scalar()
    finally:
        await db.dispose()
    assert status == "failed"  # the worker will pick it up at its next pass
