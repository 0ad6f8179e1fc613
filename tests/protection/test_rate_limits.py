"""Rate limits: per tier and key, 429 with Retry-After and RateLimit-* headers, abuse recorded,
clients behind trusted proxies told apart, and Redis: shared exactly between API processes,
fail open or closed when it is unreachable."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from tests.factories import make_event, post_event, subscription
from tests.processes import faddl, free_port, service_env, start_server, stop, wait_ready
from tests.protection.helpers import auth, demo, incidents


def limited(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    return demo(settings, tmp_path, rate_limits_enabled=True, **overrides)


async def test_a_tier_refuses_over_its_limit_per_user(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = limited(sqlite_only, tmp_path, rate_limit_checkout="5/minute")
    async with AsyncTestClient(create_app(settings)) as client:
        answers = [
            await client.post("/api/checkout", json={"plan": "pro"}, headers=auth(settings, "ann")) for _ in range(6)
        ]
        other = await client.post("/api/checkout", json={"plan": "pro"}, headers=auth(settings, "bob"))
        reads = await client.get("/api/plans")
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    refused = answers[-1]
    assert refused.headers["ratelimit-limit"] == "5"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    assert refused.headers["ratelimit-reset"] == refused.headers["retry-after"]
    problem = refused.json()
    assert problem["type"] == "urn:faddl:problem:rate_limit"
    assert "at most 5 per minute" in problem["detail"]
    assert other.status_code == 201, "another user has their own budget"
    assert reads.status_code == 200, "another tier has its own budget"


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_idempotent_replays_and_refusals_do_not_count_against_a_write_tier(
    sqlite_only: Settings, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """A client retrying with its idempotency key, or a person trying actions that are refused,
    keeps the write budget for what it does (in this process's store and in Redis)."""
    redis = {"redis_url": request.getfixturevalue("redis_url")} if store == "redis" else {}
    settings = limited(sqlite_only, tmp_path, rate_limit_checkout="2/minute", **redis)
    me = auth(settings, f"retrier_{uuid.uuid4().hex[:8]}")
    async with AsyncTestClient(create_app(settings)) as client:

        async def checkout(key: str, plan: str = "pro") -> httpx.Response:
            return await client.post("/api/checkout", json={"plan": plan}, headers={**me, "Idempotency-Key": key})

        first = [await checkout("key-a") for _ in range(3)]
        refused = [await checkout(f"key-bad-{n}", plan="no-such-plan") for n in range(3)]
        second, third = await checkout("key-b"), await checkout("key-c")
    assert [a.status_code for a in first] == [201, 201, 201]
    assert [a.headers.get("idempotent-replayed") for a in first] == [None, "true", "true"]
    assert {a.status_code for a in refused} <= {400, 404, 422}
    assert second.status_code == 201
    assert third.status_code == 429, "two checkouts done: the budget of two is spent"


async def test_each_tier_has_its_own_limit(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = limited(
        sqlite_only,
        tmp_path,
        rate_limit_subscription_read="2/minute",
        rate_limit_subscription_write="1/minute",
        rate_limit_usage="3/minute",
        rate_limit_default="4/minute",
    )
    me = auth(settings, "tiers")
    async with AsyncTestClient(create_app(settings)) as client:
        reads = [(await client.get("/api/usage", headers=me)).status_code for _ in range(3)]
        writes = [(await client.post("/api/subscription/resume", headers=me)).status_code for _ in range(2)]
        usage = [
            (await client.post("/api/usage", json={"feature": "api_calls"}, headers=me)).status_code for _ in range(4)
        ]
        default = [(await client.get("/api/me", headers=me)).status_code for _ in range(5)]
        probes = [(await client.get("/api/health/live")).status_code for _ in range(10)]
    assert reads == [200, 200, 429]
    assert writes == [409, 409], "a refused action does not count against a write tier"
    assert usage[-1] == 429
    assert usage.count(429) == 1
    assert default == [200, 200, 200, 200, 429]
    assert probes == [200] * 10, "health probes are never limited"


async def test_verified_webhooks_are_never_limited(sqlite_only: Settings) -> None:
    """1,000 signed deliveries from one address in well under a minute, ten times the default
    webhook tier of 100 a minute: every one answered 200 (Stripe's renewal runs used to get 429)."""
    settings = dataclasses.replace(sqlite_only, rate_limits_enabled=True)
    assert settings.rate_limit_webhook.startswith("100/")
    events = [make_event("customer.subscription.created", subscription(f"sub_w{n}", f"cus_w{n}")) for n in range(50)]
    started = asyncio.get_running_loop().time()
    async with AsyncTestClient(create_app(settings)) as client:
        codes = [(await post_event(client, events[n % 50])).status_code for n in range(1_000)]
    assert asyncio.get_running_loop().time() - started < 60
    assert set(codes) == {200}


async def test_deliveries_failing_verification_are_limited_per_source(sqlite_only: Settings) -> None:
    settings = dataclasses.replace(
        sqlite_only, rate_limits_enabled=True, rate_limit_webhook="3/minute", rate_limit_abuse_factor=2
    )
    event = make_event("customer.subscription.created", subscription("sub_w", "cus_w", user="u_w"))
    async with AsyncTestClient(create_app(settings)) as client:
        forged = [(await post_event(client, event, secret="whsec_wrong")).status_code for _ in range(8)]
        genuine = (await post_event(client, event)).status_code
    assert forged == [400, 400, 400] + [429] * 5
    assert genuine == 200  # a verified delivery from the same address still goes through
    # Refused as often again as the tier allows: abuse, recorded once per window as for other tiers.
    assert [row["kind"] for row in await incidents(settings)] == ["rate_limit_abuse"]


async def test_trusted_proxies_tell_clients_apart(sqlite_only: Settings, tmp_path: Path) -> None:
    behind = limited(sqlite_only, tmp_path, rate_limit_default="1/minute", trusted_proxies=("127.0.0.1/32",))
    app = create_app(behind)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 5555)), base_url="http://test"
    ) as client:
        first = await client.get("/api/schema/openapi.json", headers={"X-Forwarded-For": "203.0.113.7"})
        same = await client.get("/api/schema/openapi.json", headers={"X-Forwarded-For": "203.0.113.7"})
        other = await client.get("/api/schema/openapi.json", headers={"X-Forwarded-For": "198.51.100.9, 127.0.0.1"})
    assert (first.status_code, same.status_code, other.status_code) == (200, 429, 200)
    untrusted = limited(sqlite_only, tmp_path, rate_limit_default="1/minute")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(untrusted), client=("10.1.1.1", 5555)), base_url="http://test"
    ) as client:
        a = await client.get("/api/schema/openapi.json", headers={"X-Forwarded-For": "203.0.113.1"})
        b = await client.get("/api/schema/openapi.json", headers={"X-Forwarded-For": "203.0.113.2"})
    assert (a.status_code, b.status_code) == (200, 429), "X-Forwarded-For is ignored unless the peer is trusted"


async def test_hammering_is_a_security_incident_once_per_window(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = limited(sqlite_only, tmp_path, rate_limit_default="2/minute", rate_limit_abuse_factor=10)
    me = auth(settings, "hammer")
    async with AsyncTestClient(create_app(settings)) as client:
        codes = [(await client.get("/api/me", headers=me)).status_code for _ in range(30)]
    assert codes.count(200) == 2
    recorded = [r for r in await incidents(settings) if r["kind"] == "rate_limit_abuse"]
    assert len(recorded) == 1, "2 allowed + 18 refused = 10x the limit: reported once"
    assert recorded[0]["user_id"] == "hammer"


# -- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
def two_servers(tmp_path: Path, redis_url: str) -> Iterator[list[str]]:
    env = service_env(
        tmp_path,
        REDIS_URL=redis_url,
        RATE_LIMITS_ENABLED="1",
        RATE_LIMIT_CHECKOUT="5/minute",
        AUTH_DEV_MODE="1",
        STRIPE_API_KEY="",
    )
    faddl(env, "db", "upgrade")
    ports = [free_port(), free_port()]
    processes = [start_server(env, port) for port in ports]
    try:
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}")
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            stop(process)


def test_two_processes_share_one_budget_through_redis(two_servers: list[str], tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", auth_dev_mode=True)
    user = f"shared_{uuid.uuid4().hex[:8]}"
    headers = auth(settings, user)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            requests = [
                client.post(f"{two_servers[i % 2]}/api/checkout", json={"plan": "pro"}, headers=headers)
                for i in range(20)
            ]
            return [r.status_code for r in await asyncio.gather(*requests)]

    codes = asyncio.run(burst())
    assert codes.count(201) == 5, codes
    assert codes.count(429) == 15


async def test_redis_unreachable_fails_open_for_reads_and_closed_for_checkout(
    sqlite_only: Settings, tmp_path: Path
) -> None:
    settings = limited(sqlite_only, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    me = auth(settings, "no_redis")
    async with AsyncTestClient(create_app(settings)) as client:
        read = await client.get("/api/usage", headers=me)
        checkout = await client.post("/api/checkout", json={"plan": "pro"}, headers=me)
    assert read.status_code == 200, read.text
    assert checkout.status_code == 503
    assert "Rate limiting is unavailable" in checkout.json()["detail"]
    assert checkout.headers["retry-after"] == "5"


def test_every_route_names_a_tier_that_exists(sqlite_only: Settings) -> None:
    """A route's ``rate_limit`` opt is a tier of the one mapping (a misspelt tier would silently
    fall back to the default one), and its ``idempotency`` opt a known lifetime."""
    app = create_app(sqlite_only)
    tiers = set(sqlite_only.rate_limit_tiers)
    named = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            named[(route.path, tuple(sorted(handler.http_methods)))] = (
                handler.opt.get("rate_limit", "default"),
                handler.opt.get("idempotency"),
            )
    assert {tier for tier, _ in named.values()} - tiers - {None} == set()
    assert {key for _, key in named.values()} <= {None, "checkout", "modify"}
    assert named[("/api/webhooks/stripe", ("POST",))][0] == "webhook"
