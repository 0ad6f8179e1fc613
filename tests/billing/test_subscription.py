"""GET /api/subscription: the caller's own subscription, payment state and entitlements, never
anyone else's (row-level security on PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.billing.subscriptions import PaymentState, entitled
from api.db.engine import Database
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.factories import invoice, make_event, subscription


async def seed(settings: Settings, *events: dict[str, Any]) -> None:
    db = Database(settings)
    try:
        await EventProcessor(db, settings).ingest_many([parse_event(json.dumps(e)) for e in events])
    finally:
        await db.dispose()


def as_dev(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, auth_dev_mode=True, var_dir=tmp_path / "var")


async def get_as(client: AsyncTestClient[Any], settings: Settings, user: str) -> Any:
    token = mint_dev_token(settings, user, [])
    return await client.get("/api/subscription", headers={"Authorization": f"Bearer {token}"})


async def test_each_user_sees_only_their_own(settings: Settings, tmp_path: Path) -> None:
    settings = as_dev(settings, tmp_path)
    await seed(
        settings,
        make_event(
            "customer.subscription.created",
            subscription("sub_a", "cus_a", user="user_a", price="price_pro_monthly_usd"),
        ),
        make_event(
            "customer.subscription.created",
            subscription("sub_b", "cus_b", user="user_b", price="price_business_monthly_usd", amount=9900, quantity=3),
        ),
    )
    async with AsyncTestClient(create_app(settings)) as client:
        a = await get_as(client, settings, "user_a")
        b = await get_as(client, settings, "user_b")
        nobody = await get_as(client, settings, "user_c")
        anonymous = await client.get("/api/subscription")
    assert a.status_code == 200, a.text
    assert (a.json()["subscription_id"], a.json()["plan"], a.json()["access"]) == (
        "sub_a",
        {"id": "pro", "name": "Pro"},
        True,
    )
    assert a.json()["entitlements"] == {"api_calls": 10_000, "projects": 20, "seats": 5}
    assert (b.json()["subscription_id"], b.json()["quantity"], b.json()["plan"]["id"]) == ("sub_b", 3, "business")
    assert nobody.status_code == 404
    assert "no subscription" in nobody.json()["detail"]
    assert anonymous.status_code == 401


async def test_past_due_shows_the_payment_state(settings: Settings, tmp_path: Path) -> None:
    settings = as_dev(settings, tmp_path)
    now = int(datetime.now(UTC).timestamp())
    failing = invoice("in_f", "cus_a", sub_id="sub_a", attempt_count=2, next_attempt=now + 86_400)
    failing["created"] = now - 3600
    await seed(
        settings,
        make_event(
            "customer.subscription.updated",
            subscription("sub_a", "cus_a", status="past_due", price="price_pro_monthly_usd"),
        ),
        make_event("invoice.payment_failed", failing, created=now - 60),
    )
    async with AsyncTestClient(create_app(settings)) as client:
        view = (await get_as(client, settings, "user_a")).json()
    assert view["status"] == "past_due"
    assert view["access"] is True  # within the 7-day grace
    assert view["payment"]["invoice_id"] == "in_f"
    assert view["payment"]["attempt_count"] == 2
    assert view["payment"]["next_payment_attempt"] is not None


async def test_canceled_subscription_grants_nothing(settings: Settings, tmp_path: Path) -> None:
    settings = as_dev(settings, tmp_path)
    await seed(
        settings,
        make_event(
            "customer.subscription.deleted",
            subscription("sub_a", "cus_a", status="canceled", price="price_pro_monthly_usd"),
        ),
    )
    async with AsyncTestClient(create_app(settings)) as client:
        view = (await get_as(client, settings, "user_a")).json()
    assert (view["status"], view["access"], view["entitlements"]) == ("canceled", False, {})


def test_entitlement_policy() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    grace = timedelta(days=7)

    def bill(days_ago: int) -> PaymentState:
        return PaymentState("in", "open", 100, "usd", 1, None, False, None, None, None, now - timedelta(days=days_ago))

    assert entitled("active", None, grace, now)
    assert entitled("trialing", None, grace, now)
    assert entitled("past_due", bill(3), grace, now)
    assert not entitled("past_due", bill(8), grace, now)
    for status in ("incomplete", "unpaid", "paused", "canceled", "incomplete_expired"):
        assert not entitled(status, None, grace, now)
