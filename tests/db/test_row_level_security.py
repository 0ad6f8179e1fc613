"""PostgreSQL row-level security: a user-bound session sees and touches only that user's rows."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError

from api.db.engine import Database
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.projections.projector import customers, invoices, subscriptions
from api.settings import Settings
from tests.factories import invoice, make_event, subscription

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
        with pytest.raises(DBAPIError, match="read-only"):
            async with db.user_bound("user_a") as conn:
                await conn.execute(
                    update(subscriptions).where(subscriptions.c.user_id == "user_b").values(status="canceled")
                )
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
        with pytest.raises(DBAPIError, match="read-only"):
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


ESCAPES = [
    ("RESET ROLE; SELECT count(*) FROM user_subscriptions", None),
    ("SET ROLE faddl_service", "permission denied"),
    ("SET ROLE postgres", "permission denied"),
    ("SET SESSION AUTHORIZATION postgres", "permission denied"),
    ("UPDATE user_subscriptions SET status = 'canceled' WHERE user_id = 'user_a'", "read-only"),
    ("DELETE FROM user_subscriptions WHERE user_id = 'user_a'", "read-only"),
    ("SELECT set_config('transaction_read_only', 'off', true)", "read-write"),
    ("CREATE TABLE faddl_escape (x int)", "read-only"),
]


@pytest.mark.parametrize(("statement", "refused"), ESCAPES)
async def test_a_user_bound_session_cannot_escape(postgres: Settings, statement: str, refused: str | None) -> None:
    """Each way out of a user-bound session: back to the login role, to the service role, writes
    (even to the user's own rows), turning read-only off. A session is the user role itself."""
    db = Database(postgres)
    try:
        await seed(db)
        if refused is None:
            async with db.user_bound("user_a") as conn:
                for part in statement.split("; "):
                    result = await conn.execute(text(part))
                assert result.scalar_one() == 1, "RESET ROLE leads back to the user role, not to every row"
                assert (await conn.execute(text("SELECT current_user, session_user"))).one() == (
                    "faddl_user",
                    "faddl_user",
                )
            return
        with pytest.raises(DBAPIError, match=refused):
            async with db.user_bound("user_a") as conn:
                await conn.execute(text(statement))
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE user_subscriptions SET status = 'canceled' WHERE user_id = 'user_a'",
        "DELETE FROM customers WHERE user_id = 'user_a'",
        "INSERT INTO subscription_usage (user_id, feature, period_start, period_end, quantity) "
        "VALUES ('user_a', 'x', now(), now(), 1)",
        "SELECT nextval(pg_get_serial_sequence('customers', 'id'))",
    ],
)
async def test_the_user_role_may_only_read_even_in_a_read_write_transaction(postgres: Settings, statement: str) -> None:
    """Read-only is the role's default and the session's setting; below both, its grants: SELECT only."""
    db = Database(postgres)
    try:
        await seed(db)
        async with db.user_engine.connect() as conn, conn.begin():
            await conn.execute(text("SET LOCAL transaction_read_only = off"))  # before any query: allowed
            await conn.execute(text("SELECT set_config('app.user_id', 'user_a', true)"))
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(text(statement))
    finally:
        await db.dispose()


async def test_the_per_user_tables_are_exactly_the_tables_with_row_level_security(postgres: Settings) -> None:
    """``api.db.models.PER_USER_TABLES`` is the one list of what row-level security guards (each
    migration keeps its own frozen copy): the migrated database agrees, forced and with the user
    role granted SELECT and nothing more, and every one of them has the ``user_id`` column."""
    from api.db.models import PER_USER_TABLES, Base

    db = Database(postgres)
    try:
        async with db.read() as conn:
            guarded = {
                row.relname
                for row in await conn.execute(
                    text(
                        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relrowsecurity AND relforcerowsecurity "
                        "AND relnamespace = 'public'::regnamespace"
                    )
                )
            }
            privileges = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            grants = {
                (table, privilege)
                for table in Base.metadata.tables
                for privilege in privileges
                if (
                    await conn.execute(
                        text("SELECT has_table_privilege('faddl_user', :t, :p)"), {"t": table, "p": privilege}
                    )
                ).scalar_one()
            }
    finally:
        await db.dispose()
    assert guarded == set(PER_USER_TABLES)
    assert grants == {(table, "SELECT") for table in PER_USER_TABLES}
    assert all("user_id" in Base.metadata.tables[table].c for table in PER_USER_TABLES)
