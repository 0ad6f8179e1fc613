"""Usage metering: limits enforced atomically, clear refusals, every record in the event log, and
the counters rebuilt by replay."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from api.db.engine import Database
from api.db.models import subscription_events, subscription_usage
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.factories import make_event, subscription


async def setup(settings: Settings, tmp_path: Path, *, status: str = "active") -> Settings:
    settings = dataclasses.replace(settings, auth_dev_mode=True, var_dir=tmp_path / "var")
    now = int(time.time())
    sub = subscription(
        "sub_u",
        "cus_u",
        user="user_u",
        status=status,
        price="price_starter_monthly_usd",
        amount=900,
        period=(now - 86_400, now + 29 * 86_400),
    )
    db = Database(settings)
    try:
        await EventProcessor(db, settings).ingest_many(
            [parse_event(json.dumps(make_event("customer.subscription.created", sub, created=now - 86_400)))]
        )
    finally:
        await db.dispose()
    return settings


def auth(settings: Settings, user: str = "user_u") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(settings, user, [])}"}


async def test_record_read_and_refuse_over_the_limit(settings: Settings, tmp_path: Path) -> None:
    settings = await setup(settings, tmp_path)
    headers = auth(settings)
    async with AsyncTestClient(create_app(settings)) as client:
        first = await client.post("/api/usage", json={"feature": "api_calls", "quantity": 600}, headers=headers)
        assert first.status_code == 201, first.text
        assert (first.json()["used"], first.json()["limit"]) == (600, 1000)
        over = await client.post("/api/usage", json={"feature": "api_calls", "quantity": 401}, headers=headers)
        assert over.status_code == 403
        body = over.json()
        assert (body["limit"], body["used"]) == (1000, 600)
        assert "limit of 1000" in body["detail"]
        report_resets = next(f for f in (await client.get("/api/usage", headers=headers)).json()["features"])
        # One RFC 3339 form in every answer (a refusal's extension members and the report alike).
        assert body["resets_at"] == report_resets["resets_at"]
        assert body["resets_at"].endswith("Z")
        assert "+00:00" not in over.text
        exact = await client.post("/api/usage", json={"feature": "api_calls", "quantity": 400}, headers=headers)
        assert exact.json()["used"] == 1000
        report = (await client.get("/api/usage", headers=headers)).json()
        assert {"feature": "api_calls", "used": 1000, "limit": 1000}.items() <= next(
            f for f in report["features"] if f["feature"] == "api_calls"
        ).items()
        missing = await client.post("/api/usage", json={"feature": "gpu_hours"}, headers=headers)
        assert missing.status_code == 400  # a mistake in the request, not a limit
        assert missing.json()["detail"] == (
            "Your plan has no feature 'gpu_hours'; its features are: api_calls, projects, seats."
        )
        assert missing.json()["errors"][0]["key"] == "feature"
        nobody = await client.post("/api/usage", json={"feature": "api_calls"}, headers=auth(settings, "user_x"))
        assert nobody.status_code == 403
        assert "no active subscription" in nobody.json()["detail"]


async def test_bad_usage_requests_are_400(settings: Settings, tmp_path: Path) -> None:
    settings = await setup(settings, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        for body in (
            {"feature": "api_calls", "quantity": 0},
            {"feature": "API CALLS"},
            {"quantity": 1},
            {"feature": "api_calls", "colour": "red"},
            {"feature": "api_calls", "quantity": "many"},
        ):
            response = await client.post("/api/usage", json=body, headers=auth(settings))
            assert response.status_code == 400, (body, response.text)
            assert "Traceback" not in response.text


async def test_concurrent_requests_never_overshoot_and_replay_rebuilds(settings: Settings, tmp_path: Path) -> None:
    settings = await setup(settings, tmp_path)
    headers = auth(settings)
    async with AsyncTestClient(create_app(settings)) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/usage", json={"feature": "api_calls", "quantity": 50}, headers=headers)
                for _ in range(30)
            )
        )
    assert sorted(r.status_code for r in responses) == [201] * 20 + [403] * 10
    db = Database(settings)
    try:
        async with db.read() as conn:
            before = (await conn.execute(select(subscription_usage.c.quantity))).scalars().all()
            logged = (
                await conn.execute(
                    select(subscription_events.c.event_id).where(subscription_events.c.type == "usage.recorded")
                )
            ).all()
        assert before == [1000]
        assert len(logged) == 20
        await EventProcessor(db, settings).replay()
        async with db.read() as conn:
            after = (await conn.execute(select(subscription_usage.c.quantity))).scalars().all()
        assert after == before
    finally:
        await db.dispose()


async def test_past_grace_or_canceled_has_no_usage(settings: Settings, tmp_path: Path) -> None:
    settings = await setup(settings, tmp_path, status="canceled")
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.post("/api/usage", json={"feature": "api_calls"}, headers=auth(settings))
        report = await client.get("/api/usage", headers=auth(settings))
    assert response.status_code == 403
    assert report.json() == {"period_start": None, "period_end": None, "features": []}
