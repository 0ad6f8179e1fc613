"""PostgreSQL under real concurrency and outages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event as sa_event
from sqlalchemy import func, make_url, select

from api.app import create_app
from api.db.engine import Database
from api.events.log import events
from api.projections.projector import subscriptions
from api.settings import Settings
from bench.tcp_proxy import TcpProxy
from tests.factories import make_event, post_event, sign, subscription

pytestmark = pytest.mark.postgres


async def count(settings: Settings, table: Any, *where: Any) -> int:
    db = Database(settings)
    try:
        async with db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())
    finally:
        await db.dispose()


async def test_same_event_twenty_times_at_once_is_stored_and_applied_once(postgres: Settings) -> None:
    event = make_event("customer.subscription.created", subscription(), event_id="evt_twenty")
    body = json.dumps(event)
    async with AsyncTestClient(create_app(postgres)) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/webhooks/stripe", content=body.encode(), headers={"Stripe-Signature": sign(body)})
                for _ in range(20)
            )
        )
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert all(r.status_code == 200 for r in responses)
    assert outcomes == ["duplicate"] * 19 + ["processed"]
    assert await count(postgres, events, events.c.event_id == "evt_twenty") == 1
    assert await count(postgres, subscriptions) == 1


async def test_concurrent_same_second_updates_for_one_customer_keep_the_newest(postgres: Settings) -> None:
    steps = [subscription(quantity=q) for q in range(1, 11)]
    chain = [make_event("customer.subscription.created", steps[0], created=900, event_id="evt_q01")]
    for n in range(1, 10):
        chain.append(
            make_event(
                "customer.subscription.updated",
                steps[n],
                created=900,
                event_id=f"evt_q{n + 1:02d}",
                previous={"items": steps[n - 1]["items"]},
            )
        )
    async with AsyncTestClient(create_app(postgres)) as client:
        responses = await asyncio.gather(*(post_event(client, e) for e in reversed(chain)))
    assert all(r.status_code == 200 for r in responses)
    db = Database(postgres)
    try:
        async with db.read() as conn:
            row = (await conn.execute(select(subscriptions.c.quantity, subscriptions.c.last_event_id))).one()
    finally:
        await db.dispose()
    assert tuple(row) == (10, "evt_q10")


async def test_database_down_means_503_nothing_stored_and_redelivery_succeeds(postgres: Settings) -> None:
    url = make_url(postgres.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    proxied = Settings(
        **{
            **postgres.__dict__,
            "database_url": url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        }
    )
    first = make_event("customer.subscription.created", subscription("sub_1", "cus_1"), event_id="evt_before")
    second = make_event("customer.subscription.created", subscription("sub_2", "cus_2"), event_id="evt_during")
    app = create_app(proxied)
    async with AsyncTestClient(app) as client:
        assert (await post_event(client, first)).status_code == 200
        proxy.stop()
        response = await post_event(client, second)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "10"
        assert "not stored" in response.json()["detail"]
        assert "Traceback" not in response.text
        assert "SELECT" not in response.text
        assert await count(postgres, events, events.c.event_id == "evt_during") == 0

        proxy.start()
        response = await post_event(client, second)
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "processed"
    proxy.close()
    assert await count(postgres, subscriptions) == 2


async def test_connection_lost_mid_transaction_runs_it_again_whole_and_applies_once(postgres: Settings) -> None:
    url = make_url(postgres.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    proxied = Settings(
        **{
            **postgres.__dict__,
            "database_url": url.set(port=proxy.port).render_as_string(hide_password=False),
        }
    )
    app = create_app(proxied)
    db: Database = app.state.db
    armed = {"on": True}

    def cut_before_projection_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The event row is already INSERTed in this transaction when the projection is written.
        if armed["on"] and statement.lstrip().upper().startswith("INSERT INTO USER_SUBSCRIPTIONS"):
            armed["on"] = False
            proxy.cut()

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", cut_before_projection_write)
    event = make_event("customer.subscription.created", subscription(), event_id="evt_cut")
    async with AsyncTestClient(app) as client:
        # The cut transaction is rolled back by the server; the retrying path runs it again on a
        # new connection, so the delivery is stored and applied once, in the one transaction.
        first = await post_event(client, event)
        assert first.status_code == 200, first.text
        assert first.json()["outcome"] == "processed"
        assert armed["on"] is False, "the connection was cut mid-transaction"
        assert await count(postgres, events) == 1
        assert await count(postgres, subscriptions) == 1
        again = await post_event(client, event)
        assert again.json()["outcome"] == "duplicate"
    proxy.close()
    assert await count(postgres, events) == 1
    assert await count(postgres, subscriptions) == 1
