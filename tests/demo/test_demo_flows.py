"""Demo mode end to end: without Stripe credentials every billing flow works, the simulator plays
Stripe, and every change arrives as signed webhook events in the log (so replay agrees)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from api.db.engine import Database
from api.db.models import payment_history, subscription_events
from api.ingest.processing import EventProcessor
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.state import projection_state


def demo(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        settings, stripe_api_key="", stripe_webhook_secrets=(), auth_dev_mode=True, var_dir=tmp_path / "var"
    )


def auth(settings: Settings, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(settings, user, [])}"}


async def log_rows(settings: Settings) -> list[tuple[str, str, str]]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(subscription_events.c.source, subscription_events.c.type, subscription_events.c.status).order_by(
                    subscription_events.c.id
                )
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        await db.dispose()


async def subscribe(client: AsyncTestClient[Any], settings: Settings, user: str, **body: Any) -> Any:
    started = await client.post("/api/checkout", json={"plan": "pro", **body}, headers=auth(settings, user))
    assert started.status_code == 201, started.text
    path = started.json()["url"].removeprefix(settings.public_base_url)
    paid = await client.post(path, data={"card": "4242"}, follow_redirects=False)
    assert paid.status_code == 303, paid.text
    return started.json()


async def test_checkout_page_completes_a_purchase(settings: Settings, tmp_path: Path) -> None:
    settings = demo(settings, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        started = await client.post(
            "/api/checkout", json={"plan": "pro", "currency": "eur"}, headers=auth(settings, "u1")
        )
        assert started.status_code == 201, started.text
        body = started.json()
        assert body["session_id"].startswith("cs_test_")
        assert body["price_id"] == "price_pro_monthly_eur"
        path = body["url"].removeprefix(settings.public_base_url)
        assert path == f"/demo/checkout/{body['session_id']}"

        page = await client.get(path)
        assert page.status_code == 200
        assert "Subscribe to Pro" in page.text
        assert "29.00 EUR" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert (await client.get("/api/subscription", headers=auth(settings, "u1"))).status_code == 404

        declined = await client.post(path, data={"card": "0002"})
        assert declined.status_code == 402
        assert "declined" in declined.text
        assert (await client.get("/api/subscription", headers=auth(settings, "u1"))).status_code == 404

        paid = await client.post(path, data={"card": "4242"}, follow_redirects=False)
        assert paid.status_code == 303
        assert paid.headers["location"].endswith(f"/demo/return?checkout=success&session_id={body['session_id']}")
        after_first = await log_rows(settings)
        again = await client.post(path, data={"card": "4242"}, follow_redirects=False)
        assert again.status_code == 303
        assert await log_rows(settings) == after_first, "a double submit must not act twice"
        reopened = await client.get(path)  # the back button after paying
        assert reopened.status_code == 200
        assert "This checkout is paid." in reopened.text
        assert 'id="pay"' not in reopened.text, "a paid checkout never offers to pay again"

        sub = (await client.get("/api/subscription", headers=auth(settings, "u1"))).json()
        assert (sub["status"], sub["plan"]["id"], sub["currency"], sub["access"]) == ("active", "pro", "eur", True)
        assert sub["entitlements"]["api_calls"] == 10_000
        assert (await client.get("/demo/return?checkout=success")).status_code == 200

    stripe_types = [t for source, t, _ in after_first if source == "stripe"]
    assert stripe_types[:3] == ["customer.created", "checkout.session.completed", "customer.subscription.created"]
    assert {"invoice.paid", "charge.succeeded", "customer.subscription.updated"} <= set(stripe_types)
    assert all(status == "processed" for source, _, status in after_first if source == "stripe")
    assert [t for source, t, _ in after_first if source == "service"] == ["checkout.started"]


async def test_every_action_is_a_signed_event_and_replay_agrees(settings: Settings, tmp_path: Path) -> None:
    settings = demo(settings, tmp_path)
    me = auth(settings, "u2")
    async with AsyncTestClient(create_app(settings)) as client:
        await subscribe(client, settings, "u2", trial_days=14)
        sub = (await client.get("/api/subscription", headers=me)).json()
        assert (sub["status"], sub["access"]) == ("trialing", True)

        again = await client.post("/api/checkout", json={"plan": "starter"}, headers=me)
        assert again.status_code == 409
        assert "change-plan" in again.json()["detail"]
        assert "You already have a trialing subscription" in again.json()["detail"]

        changed = await client.post(
            "/api/subscription/change-plan", json={"plan": "business", "proration": "always_invoice"}, headers=me
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["plan"]["id"], changed.json()["price_id"]) == ("business", "price_business_monthly_usd")
        same = await client.post("/api/subscription/change-plan", json={"plan": "business"}, headers=me)
        assert same.status_code == 409

        canceled = await client.post("/api/subscription/cancel", json={}, headers=me)
        assert canceled.status_code == 200, canceled.text
        assert (canceled.json()["cancel_at_period_end"], canceled.json()["access"]) == (True, True)
        assert (await client.post("/api/subscription/cancel", json={}, headers=me)).status_code == 409

        resumed = await client.post("/api/subscription/resume", headers=me)
        assert resumed.status_code == 200
        assert resumed.json()["cancel_at_period_end"] is False
        assert (await client.post("/api/subscription/resume", headers=me)).status_code == 409

        portal = await client.post("/api/billing-portal", headers=me)
        assert portal.status_code == 201, portal.text
        page = await client.get(portal.json()["url"].removeprefix(settings.public_base_url))
        assert page.status_code == 200
        assert "price_business_monthly_usd" in page.text

        ended = await client.post("/api/subscription/cancel", json={"immediately": True}, headers=me)
        assert ended.status_code == 200
        assert (ended.json()["status"], ended.json()["access"]) == ("canceled", False)

        back = await client.post("/api/checkout", json={"plan": "starter"}, headers=me)
        assert back.status_code == 201, "after churn the user may subscribe again"

    rows = await log_rows(settings)
    assert [t for source, t, _ in rows if source == "service"] == [
        "checkout.started",
        "subscription.plan_change_requested",
        "subscription.cancel_requested",
        "subscription.resume_requested",
        "billing_portal.opened",
        "subscription.cancel_requested",
        "checkout.started",
    ]
    assert all(status == "processed" for _, _, status in rows)
    db = Database(settings)
    try:
        async with db.read() as conn:
            reasons = (await conn.execute(select(payment_history.c.billing_reason))).scalars().all()
            assert "subscription_update" in reasons, "an upgrade with always_invoice is invoiced at once"
            checkout = json.loads(
                (
                    await conn.execute(
                        select(subscription_events.c.payload)
                        .where(subscription_events.c.type == "checkout.started")
                        .order_by(subscription_events.c.id.desc())
                        .limit(1)
                    )
                ).scalar_one()
            )
        assert checkout["data"]["object"]["customer"].startswith("cus_"), "the second checkout reuses the customer"
        live = await projection_state(db)
        await EventProcessor(db, settings).replay()
        assert await projection_state(db) == live
    finally:
        await db.dispose()


async def test_users_act_only_on_their_own_subscription(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        await subscribe(client, settings, "owner")
        other = auth(settings, "intruder")
        for path, body in (
            ("/api/subscription/cancel", {"immediately": True}),
            ("/api/subscription/resume", None),
            ("/api/subscription/change-plan", {"plan": "business"}),
        ):
            answer = await client.post(path, json=body, headers=other)
            assert answer.status_code == 409, (path, answer.text)
        assert (await client.post("/api/billing-portal", headers=other)).status_code == 404
        assert (await client.get("/api/subscription", headers=other)).status_code == 404
        owner = (await client.get("/api/subscription", headers=auth(settings, "owner"))).json()
        assert (owner["status"], owner["cancel_at_period_end"]) == ("active", False)
        assert (await client.post("/api/checkout", json={"plan": "pro"})).status_code == 401


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"plan": "platinum"}, "no plan 'platinum'"),
        ({"plan": "pro", "currency": "jpy"}, "no monthly JPY price"),
        ({"plan": "pro", "interval": "week"}, "interval"),
        ({"plan": "pro", "trial_days": 0}, "trial_days"),
        ({"plan": "pro", "coupon": "FREE"}, "coupon"),
        ({}, "plan"),
    ],
)
async def test_bad_checkout_requests_are_explained(
    sqlite_only: Settings, tmp_path: Path, body: dict[str, Any], needle: str
) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.post("/api/checkout", json=body, headers=auth(settings, "u3"))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert needle in answer.text
    assert await log_rows(settings) == []


async def test_unknown_and_expired_pages(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/demo/checkout/cs_test_nothing")).status_code == 404
        assert (await client.post("/demo/checkout/cs_test_nothing", data={"card": "4242"})).status_code == 404
        assert (await client.get("/demo/billing-portal/bps_nothing")).status_code == 404
        page = await client.get('/demo/return?checkout=I <3 "this"')
        assert "I &lt;3 &quot;this&quot;" in page.text
        attack = await client.get("/demo/return?checkout=<script>alert(1)</script>")
        assert attack.status_code == 400, "screening refuses it before the page renders"


async def test_an_empty_checkout_body_says_what_is_missing(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        for content in (None, b""):
            answer = await client.post(
                "/api/checkout", content=content, headers={**auth(settings, "u4"), "Content-Type": "application/json"}
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["detail"] == "The request has no body; this route needs a JSON object."
            assert "'data'" not in answer.text


async def test_session_urls_are_unguessable_and_expire(sqlite_only: Settings, tmp_path: Path) -> None:
    """Knowing a user id and the client's idempotency key does not give the session's URL: the id is
    keyed by a secret of this installation; the same key still finds the same session (a retry)."""
    import hashlib
    import time as clock

    settings = demo(sqlite_only, tmp_path)
    key = {"Idempotency-Key": "checkout-1"}
    async with AsyncTestClient(create_app(settings)) as client:
        headers = {**auth(settings, "u5"), **key}
        first = (await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)).json()
        again = (await client.post("/api/checkout", json={"plan": "pro"}, headers=headers)).json()
        assert again["session_id"] == first["session_id"]
        from api.billing.actions import action_key

        unkeyed = hashlib.sha256(action_key("u5", "checkout", "checkout-1").encode()).hexdigest()
        assert unkeyed[:40] not in first["session_id"], "the session id must not be derivable without the secret"
        assert (settings.var_dir / "demo-session.key").stat().st_mode & 0o077 == 0
        await subscribe(client, settings, "u5b")
        portal = await client.post("/api/billing-portal", headers=auth(settings, "u5b"))
        path = portal.json()["url"].removeprefix(settings.public_base_url)
        assert (await client.get(path)).status_code == 200
        later = clock.time() + 3601
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("api.demo.pages.time.time", lambda: later)
            expired = await client.get(path)
        assert expired.status_code == 410
        assert "expired" in expired.text


async def test_demo_pages_do_not_exist_with_stripe_credentials(sqlite_only: Settings) -> None:
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        assert (await client.get("/demo/checkout/cs_test_x")).status_code in (401, 404)
        assert (await client.get("/demo/return")).status_code in (401, 404)
