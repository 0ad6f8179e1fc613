"""Automatic blocking: repeated incidents block the client (403 for the cooling-off period, on
every route, across processes through Redis); blocks and unblocks are recorded; Stripe's
webhooks are never blocked."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import DEMO_WEBHOOK_SECRET, Settings
from tests.factories import make_event, post_event, subscription
from tests.protection.helpers import auth, demo, incidents

ATTACK = {"feature": "api_calls", "note": "<script>alert(1)</script>"}


async def test_repeated_incidents_block_then_the_block_ends(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=3, block_window_seconds=60, block_seconds=1)
    me = auth(settings, "attacker")
    async with AsyncTestClient(create_app(settings)) as client:
        attacks = [(await client.post("/api/usage", json=ATTACK, headers=me)).status_code for _ in range(3)]
        blocked = await client.get("/api/subscription", headers=me)
        innocent = await client.get("/api/usage", headers=auth(settings, "someone_else"))
        webhook = await post_event(
            client,
            make_event("customer.subscription.created", subscription("sub_b", "cus_b", user="attacker")),
            secret=DEMO_WEBHOOK_SECRET,
        )
        await asyncio.sleep(1.2)
        after = await client.get("/api/usage", headers=me)
    assert attacks == [400, 400, 400]
    assert blocked.status_code == 403
    assert "temporarily blocked" in blocked.json()["detail"]
    assert int(blocked.headers["retry-after"]) >= 1
    assert innocent.status_code == 200
    assert webhook.status_code == 200, "webhooks are never blocked"
    assert after.status_code == 200, "the block ends after BLOCK_SECONDS"
    kinds = [r["kind"] for r in await incidents(settings)]
    assert kinds == ["xss", "xss", "xss", "blocked", "unblocked"]


async def test_anonymous_clients_are_blocked_by_ip(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=2)
    async with AsyncTestClient(create_app(settings)) as client:
        for _ in range(2):
            assert (await client.get("/api/plans?q=1' OR '1'='1")).status_code == 400
        assert (await client.get("/api/plans")).status_code == 403
        webhook = await post_event(
            client,
            make_event("customer.subscription.created", subscription("sub_ip", "cus_ip", user="u_ip")),
            secret=DEMO_WEBHOOK_SECRET,
        )
        assert webhook.status_code == 200, "Stripe's deliveries from a blocked address still get through"
    recorded = await incidents(settings)
    assert recorded[-1]["kind"] == "blocked"
    assert recorded[-1]["client_ip"] == "testclient"


async def test_blocking_can_be_turned_off(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=0)
    async with AsyncTestClient(create_app(settings)) as client:
        for _ in range(8):
            assert (await client.get("/api/plans?q=../../etc/passwd")).status_code == 400
        assert (await client.get("/api/plans")).status_code == 200


async def test_admin_lists_and_lifts_blocks(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=1, block_seconds=600)
    admin = auth(settings, "ops", ["admin"])
    async with AsyncTestClient(create_app(settings)) as client:
        await client.post("/api/usage", json=ATTACK, headers=auth(settings, "eve"))
        listed = await client.get("/api/admin/security/blocks", headers=admin)
        assert listed.status_code == 200, listed.text
        assert [b["client"] for b in listed.json()] == ["user:eve"]
        assert (await client.get("/api/usage", headers=auth(settings, "eve"))).status_code == 403
        lifted = await client.delete("/api/admin/security/blocks/user:eve", headers=admin)
        assert lifted.status_code == 204
        assert (await client.get("/api/usage", headers=auth(settings, "eve"))).status_code == 200
        assert (await client.delete("/api/admin/security/blocks/user:eve", headers=admin)).status_code == 404
        not_admin = await client.get("/api/admin/security/blocks", headers=auth(settings, "eve"))
        assert not_admin.status_code == 403
        listed_incidents = await client.get("/api/admin/security/incidents?limit=10", headers=admin)
    assert [i["kind"] for i in listed_incidents.json()] == ["unblocked", "blocked", "xss"]


@pytest.mark.usefixtures("redis_url")
async def test_a_block_is_shared_through_redis(sqlite_only: Settings, tmp_path: Path, redis_url: str) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=2, redis_url=redis_url)
    user = f"redis_attacker_{tmp_path.name[-12:]}"
    one, two = create_app(settings), create_app(dataclasses.replace(settings))
    async with AsyncTestClient(one) as first, AsyncTestClient(two) as second:
        assert (await first.post("/api/usage", json=ATTACK, headers=auth(settings, user))).status_code == 400
        assert (await second.post("/api/usage", json=ATTACK, headers=auth(settings, user))).status_code == 400
        assert (await first.get("/api/usage", headers=auth(settings, user))).status_code == 403
        assert (await second.get("/api/usage", headers=auth(settings, user))).status_code == 403
        admin = auth(settings, "ops", ["admin"])
        assert (await first.delete(f"/api/admin/security/blocks/user:{user}", headers=admin)).status_code == 204


async def test_invalid_tokens_are_counted_recorded_and_blocked(sqlite_only: Settings, tmp_path: Path) -> None:
    """150 bad tokens from one address: 401 up to the default tier, then 429 with an incident each,
    then the address is blocked (403) like any other source of incidents; a valid token from
    another client is unaffected, and the counts are per address."""
    settings = demo(
        sqlite_only, tmp_path, rate_limits_enabled=True, rate_limit_default="20/minute", block_after_incidents=3
    )
    bad = {"Authorization": "Bearer not-a-token"}
    async with AsyncTestClient(create_app(settings)) as client:
        statuses = [(await client.get("/api/subscription", headers=bad)).status_code for _ in range(150)]
        missing = await client.get("/api/usage")
        valid = await client.get("/api/me", headers=auth(settings, "good"))
    assert statuses[:20] == [401] * 20
    assert statuses[20:23] == [429, 429, 429]
    assert set(statuses[23:]) == {403}, "the address is blocked after BLOCK_AFTER_INCIDENTS incidents"
    assert missing.status_code == 403, "a request with no token from a blocked address"
    assert "failed authentication" in missing.json()["detail"]
    assert valid.status_code == 200, "a valid token is its own client (blocks are per user once authenticated)"
    kinds = [r["kind"] for r in await incidents(settings)]
    assert kinds == ["auth_failures", "auth_failures", "auth_failures", "blocked"]
    assert all(r["client_ip"] for r in await incidents(settings))
