"""Every way a delivery is refused: the status code, a message a person understands, nothing stored."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from api.app import create_app
from api.db.engine import Database
from api.events.log import events
from api.settings import Settings
from tests.factories import SECRET, make_event, post_event, sign, subscription

URL = "/api/webhooks/stripe"


async def stored_count(settings: Settings) -> int:
    db = Database(settings)
    try:
        async with db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())
    finally:
        await db.dispose()


def body() -> str:
    return json.dumps(make_event("customer.subscription.updated", subscription()))


async def post_raw(client: AsyncTestClient[Any], content: bytes, headers: dict[str, str]) -> Any:
    return await client.post(URL, content=content, headers=headers)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing Stripe-Signature header"),
        ({"Stripe-Signature": "garbage"}, "Malformed Stripe-Signature header"),
        ({"Stripe-Signature": "t=123"}, "Malformed Stripe-Signature header"),
        ({"Stripe-Signature": f"t={int(time.time())},v1=deadbeef"}, "does not match"),
    ],
)
async def test_bad_or_missing_signature(
    client: AsyncTestClient[Any], settings: Settings, headers: dict[str, str], message: str
) -> None:
    response = await post_raw(client, body().encode(), headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert message in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_signature_with_another_secret(client: AsyncTestClient[Any], settings: Settings) -> None:
    payload = body()
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": sign(payload, "whsec_other")})
    assert response.status_code == 400
    assert "does not match" in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_tampered_body(client: AsyncTestClient[Any], settings: Settings) -> None:
    payload = body()
    header = sign(payload)
    response = await post_raw(client, payload.replace("active", "canceled").encode(), {"Stripe-Signature": header})
    assert response.status_code == 400
    assert await stored_count(settings) == 0


async def test_stale_timestamp(client: AsyncTestClient[Any], settings: Settings) -> None:
    payload = body()
    header = sign(payload, timestamp=int(time.time()) - 301)
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": header})
    assert response.status_code == 400
    assert "older than 300 s" in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_timestamp_far_in_the_future(client: AsyncTestClient[Any], settings: Settings) -> None:
    payload = body()
    header = sign(payload, timestamp=int(time.time()) + 3600)
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": header})
    assert response.status_code == 400
    assert "future" in response.json()["detail"]
    assert await stored_count(settings) == 0


@pytest.mark.parametrize(
    ("first", "separator", "reason"),
    [
        ("t", ",", "more than one timestamp"),  # two `t` entries
        (" t", ",", "in the future"),  # the SDK skips ` t`: the timestamp it verified is checked
        (" t", ", ", "Malformed"),  # no entry named `t` at all
    ],
)
async def test_a_second_timestamp_never_lets_a_future_signature_in(
    client: AsyncTestClient[Any], settings: Settings, first: str, separator: str, reason: str
) -> None:
    """A delivery signed a year ahead, with a current ``t`` put first: the SDK read one entry and
    our future check another (accepted before), unless the header is parsed once, the SDK's way."""
    payload = body()
    ahead = sign(payload, timestamp=int(time.time()) + 365 * 86_400)
    header = f"{first}={int(time.time())}{separator}{ahead}"
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": header})
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_within_tolerance_is_accepted(client: AsyncTestClient[Any]) -> None:
    payload = body()
    header = sign(payload, timestamp=int(time.time()) - 250)
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": header})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"id": "evt_1", "type": ', "not valid JSON"),
        ("[1, 2, 3]", "must be a JSON object"),
        ('{"type": "customer.updated", "created": 1, "data": {"object": {}}}', "no usable `id`"),
        ('{"id": "evt_1", "created": 1, "data": {"object": {}}}', "no usable `type`"),
        ('{"id": "evt_1", "type": "x", "created": "yesterday", "data": {"object": {}}}', "`created`"),
        ('{"id": "evt_1", "type": "x", "created": 1, "data": {}}', "no `data.object`"),
    ],
)
async def test_malformed_event_with_valid_signature(
    client: AsyncTestClient[Any], settings: Settings, payload: str, message: str
) -> None:
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": sign(payload)})
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert "Traceback" not in response.text
    assert await stored_count(settings) == 0


async def test_body_not_utf8(client: AsyncTestClient[Any], settings: Settings) -> None:
    response = await post_raw(client, b'{"id": "\xff\xfe"}', {"Stripe-Signature": "t=1,v1=00"})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_body_over_one_mebibyte(client: AsyncTestClient[Any], settings: Settings) -> None:
    event = make_event("customer.subscription.updated", subscription())
    event["data"]["object"]["metadata"]["padding"] = "x" * (1024 * 1024)
    payload = json.dumps(event)
    response = await post_raw(client, payload.encode(), {"Stripe-Signature": sign(payload)})
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == 1024 * 1024
    assert "limit of 1,024 KiB" in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_secret_rotation_accepts_either_secret(tmp_path: Any) -> None:
    from api.db.migrate import upgrade
    from tests.conftest import sqlite_settings

    settings = sqlite_settings(tmp_path / "r.db").__class__(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        stripe_webhook_secrets=("whsec_old", "whsec_new"),
        stripe_api_key="sk_test_x",
    )
    await asyncio.to_thread(upgrade, settings)
    async with AsyncTestClient(create_app(settings)) as client:
        for secret in ("whsec_old", "whsec_new"):
            response = await post_event(
                client, make_event("customer.subscription.updated", subscription()), secret=secret
            )
            assert response.status_code == 200, response.text
        # Stripe sends one v1 per secret during a rotation: a header with both verifies.
        payload = json.dumps(make_event("customer.subscription.updated", subscription()))
        both = sign(payload, "whsec_old") + "," + sign(payload, "whsec_new").split(",", 1)[1]
        response = await post_raw(client, payload.encode(), {"Stripe-Signature": both})
        assert response.status_code == 200
        response = await post_event(
            client, make_event("customer.subscription.updated", subscription()), secret="whsec_retired"
        )
        assert response.status_code == 400


async def test_no_secret_configured_outside_demo_mode(tmp_path: Any) -> None:
    from api.db.migrate import upgrade

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", stripe_api_key="sk_live_x")
    await asyncio.to_thread(upgrade, settings)
    async with AsyncTestClient(create_app(settings)) as client:
        response = await post_event(client, make_event("customer.subscription.updated", subscription()))
        assert response.status_code == 503
        assert "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
    assert await stored_count(settings) == 0


async def test_demo_mode_uses_the_public_demo_secret(tmp_path: Any) -> None:
    from api.db.migrate import upgrade
    from api.settings import DEMO_WEBHOOK_SECRET

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    await asyncio.to_thread(upgrade, settings)
    assert settings.demo_mode
    async with AsyncTestClient(create_app(settings)) as client:
        event = make_event("customer.subscription.updated", subscription())
        assert (await post_event(client, event, secret=DEMO_WEBHOOK_SECRET)).status_code == 200
        assert (await post_event(client, event, secret=SECRET)).status_code == 400


async def test_a_deep_body_is_a_rejected_delivery(client: AsyncTestClient[Any], settings: Settings) -> None:
    """A signed event with 1,000 nested arrays in its metadata was a 500; it is a 400 that says why."""
    event = make_event("customer.subscription.updated", subscription())
    text = json.dumps(event).replace('"metadata": {', '"deep": ' + "[" * 1000 + "]" * 1000 + ', "metadata": {', 1)
    response = await post_raw(client, text.encode(), {"Stripe-Signature": sign(text)})
    assert response.status_code == 400, response.text
    assert "nested deeper than 64 levels" in response.json()["detail"]
    assert await stored_count(settings) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"created": 2**63}, "`created` is not a timestamp"),
        ({"api_version": "2025-03-31." + "x" * 30}, "api_version is 41 characters long; at most 32"),
        ({"object_id": "sub_" + "x" * 252}, "object id is 256 characters long; at most 255"),
        ({"object_type": "x" * 65}, "object type is 65 characters long; at most 64"),
    ],
)
async def test_an_event_that_cannot_be_stored_is_refused_the_same_on_both_databases(
    client: AsyncTestClient[Any], settings: Settings, change: dict[str, Any], reason: str
) -> None:
    """PostgreSQL answered 500 and stored nothing, SQLite stored it: both refuse it now, with 400."""
    event = make_event("customer.subscription.updated", subscription())
    if "created" in change:
        event["created"] = change["created"]
    if "api_version" in change:
        event["api_version"] = change["api_version"]
    if "object_id" in change:
        event["data"]["object"]["id"] = change["object_id"]
    if "object_type" in change:
        event["data"]["object"]["object"] = change["object_type"]
    text = json.dumps(event)
    response = await post_raw(client, text.encode(), {"Stripe-Signature": sign(text)})
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    assert await stored_count(settings) == 0
