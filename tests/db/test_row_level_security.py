"""PostgreSQL row-level security: a user-bound session sees and touches only that user's rows."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError

from api.db.engine import Database
from api.events.model import parse_event
from api.events.processing import EventProcessor
from api.projections.projector import customers, invoices, subscriptions
from api.settings import Settings
from tests.conftest import invoice, make_event, subscription

pytestmark = pytest.mark.postgres


async def seed(db: Database) -> None:
    processor = EventProcessor(db, db.settings)
    for user, customer in (("user_a", "cus_A"), ("user_b", "cus_B")):
        for event in (
            make_event("customer.subscription.created", subscription(f"sub_{user}", customer, user=user)),
            make_event("invoice.paid", invoice(f"in_{user}", customer, sub_id=f"sub_{user}", status="paid")),
        ):
            await processor.ingest(parse_event(json.dumps(event)))


async def test_user_sees_only_own_rows(postgres: Settings) -> None:
    db = Database(postgres)
    try:
        await seed(db)
        async with db.read() as conn:  # the service role sees everyone
            assert len((await conn.execute(select(subscriptions))).all()) == 2
        async with db.user_bound("user_a") as conn:
            assert [r.user_id for r in await conn.execute(select(subscriptions))] == ["user_a"]
            assert [r.user_id for r in await conn.execute(select(invoices))] == ["user_a"]
            assert [r.user_id for r in await conn.execute(select(customers))] == ["user_a"]
            # Even asking for the other user's row by id finds nothing.
            found = await conn.execute(
                select(subscriptions).where(subscriptions.c.stripe_subscription_id == "sub_user_b")
            )
            assert found.all() == []
            changed = await conn.execute(
                update(subscriptions).where(subscriptions.c.user_id == "user_b").values(status="canceled")
            )
            assert changed.rowcount == 0
        async with db.user_bound("nobody") as conn:
            assert (await conn.execute(select(subscriptions))).all() == []
        async with db.read() as conn:
            statuses = sorted(r.status for r in await conn.execute(select(subscriptions)))
        assert statuses == ["active", "active"]
    finally:
        await db.dispose()


async def test_user_cannot_write_rows_for_someone_else(postgres: Settings) -> None:
    db = Database(postgres)
    try:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with db.user_bound("user_a") as conn:
                await conn.execute(
                    insert(customers).values(
                        stripe_customer_id="cus_X",
                        user_id="user_b",
                        deleted=False,
                        last_event_id="",
                        last_event_created=0,
                    )
                )
    finally:
        await db.dispose()


async def test_event_log_is_not_reachable_from_a_user_session(postgres: Settings) -> None:
    db = Database(postgres)
    try:
        with pytest.raises(DBAPIError, match="permission denied"):
            async with db.user_bound("user_a") as conn:
                await conn.execute(text("SELECT count(*) FROM subscription_events"))
    finally:
        await db.dispose()
