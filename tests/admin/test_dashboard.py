"""``GET /api/admin/dashboard``: admin only; before and after the worker's first KPI snapshot; its
KPIs are the snapshot's (the same as ``kpi_document``), its API figures come from real requests,
and it is documented in the OpenAPI schema."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from litestar.testing import AsyncTestClient

from analytics.refresh import refresh
from api.app import create_app
from api.db.engine import Database
from api.observability.summary import quantile
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.analytics.simulation import simulate_account
from tests.factories import post_event


async def test_dashboard(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, auth_dev_mode=True, var_dir=tmp_path / "var")
    admin = {"Authorization": f"Bearer {mint_dev_token(settings, 'ops', ['admin'])}"}
    user = {"Authorization": f"Bearer {mint_dev_token(settings, 'someone', [])}"}
    account = simulate_account(25, 4, 31)
    deliveries = list(account.events)
    random.Random(31).shuffle(deliveries)
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/api/admin/dashboard")).status_code == 401
        assert (await client.get("/api/admin/dashboard", headers=user)).status_code == 403
        before = (await client.get("/api/admin/dashboard", headers=admin)).json()
        assert before["kpis"]["as_of"] is None
        assert any(issue.startswith("kpis: no KPI snapshot yet") for issue in before["health"]["issues"])
        for event in deliveries:
            assert (await post_event(client, event)).status_code == 200
        db = Database(settings)
        try:
            result = await refresh(db, settings)
        finally:
            await db.dispose()
        answer = await client.get("/api/admin/dashboard", headers=admin)
        assert answer.status_code == 200
        data = answer.json()
    last = result.document["months"][-1]
    assert data["kpis"]["as_of"] is not None
    assert data["kpis"]["mrr"] == last["mrr"] == account.truth["months"][-1]["mrr"]
    assert data["kpis"]["active_subscriptions"] == last["active_subscriptions"]
    assert data["kpis"]["month"] == last["month"]
    assert not any(issue.startswith("kpis:") for issue in data["health"]["issues"])
    assert data["webhooks"]["received_24h"] == len(deliveries)
    assert data["webhooks"]["dead"] == 0
    assert len(data["recent_events"]) == 10
    assert data["api"]["requests"] >= len(deliveries)
    assert data["api"]["p99_ms"] is not None
    assert data["api"]["p95_ms"] <= data["api"]["p99_ms"]
    assert data["security"]["auth_failures"] >= 0
    assert {"status", "score", "issues"} <= set(data["health"])


async def test_the_dashboard_is_in_the_openapi_schema(sqlite_only: Settings) -> None:
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        schema = (await client.get("/api/schema/openapi.json")).json()
    operation = schema["paths"]["/api/admin/dashboard"]["get"]
    assert "Admin role only" in operation["description"]
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response["$ref"].endswith("AdminDashboard")
    properties = schema["components"]["schemas"]["AdminDashboard"]["properties"]
    assert {"health", "kpis", "security", "api", "webhooks", "recent_events", "recent_alerts"} <= set(properties)


def test_quantiles_from_histogram_buckets() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert quantile(buckets, 0.5) == 0.1
    assert quantile(buckets, 0.7) == 0.1 + 0.4 * (20 / 40)
    assert quantile(buckets, 0.99) == 0.5 + 0.5 * (9 / 10)
    assert quantile({}, 0.99) is None
    assert quantile({0.1: 0.0, float("inf"): 0.0}, 0.5) is None
