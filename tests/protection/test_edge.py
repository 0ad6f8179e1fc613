"""What every response carries: a request id (header, problem body, log lines), security headers
(also on router 404s), one problem model (categories, never a trace); and FORCE_HTTPS."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from tests.protection.helpers import auth, demo


async def test_request_ids(sqlite_only: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        fresh = await client.get("/api/subscription")
        given = await client.get("/api/subscription", headers={"X-Request-ID": "trace-abc-12345"})
        junk = await client.get("/api/subscription", headers={"X-Request-ID": "bad id\nwith newline"})
    assert len(fresh.headers["x-request-id"]) == 32
    assert fresh.json()["request_id"] == fresh.headers["x-request-id"]
    assert given.headers["x-request-id"] == "trace-abc-12345"
    assert given.json()["request_id"] == "trace-abc-12345"
    assert junk.headers["x-request-id"] != "bad id\nwith newline"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(entry.get("request_id") == "trace-abc-12345" and entry["status"] == 401 for entry in logged)


@pytest.mark.parametrize(
    ("method", "path", "status", "category"),
    [
        ("GET", "/api/nowhere", 404, "not_found"),
        ("GET", "/api/subscription", 401, "authentication"),
        ("DELETE", "/api/plans", 405, "method_not_allowed"),
        ("GET", "/api/admin/events?limit=9999", 401, "authentication"),
    ],
)
async def test_every_error_is_a_problem_with_security_headers(
    sqlite_only: Settings, method: str, path: str, status: int, category: str
) -> None:
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        answer = await client.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["type"] == f"urn:faddl:problem:{category}"
    assert {"title", "status", "detail", "request_id"} <= set(body)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in answer.headers


async def test_field_errors_name_the_field(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.post(
            "/api/usage", json={"feature": "api_calls", "quantity": 0}, headers=auth(settings, "f")
        )
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert any("quantity" in str(e.get("key")) or "quantity" in str(e.get("message")) for e in errors)


async def test_an_unexpected_error_shows_no_internals(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    app = create_app(settings)

    class Broken:
        async def create_checkout_session(self, params: Any) -> Any:
            raise RuntimeError("secret internal detail at /work/main/api/x.py: SELECT * FROM users")

    app.state.billing.gateway = Broken()
    async with AsyncTestClient(app) as client:
        answer = await client.post("/api/checkout", json={"plan": "pro"}, headers=auth(settings, "boom"))
    assert answer.status_code == 500
    body = answer.json()
    assert body["type"] == "urn:faddl:problem:internal"
    assert "request id" in body["detail"]
    for leak in ("secret", "SELECT", "/work/", "Traceback", "RuntimeError"):
        assert leak not in answer.text


async def test_html_pages_and_docs_have_their_own_policies(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    async with AsyncTestClient(create_app(settings)) as client:
        docs = await client.get("/api/schema/swagger")
        page = await client.get("/demo/return")
    assert "https:" not in docs.headers["content-security-policy"], "the docs load nothing from elsewhere"
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    assert "https://" not in docs.text
    async with AsyncTestClient(create_app(settings)) as client:
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
            served = await client.get(f"/api/schema/assets/{asset}")
            assert served.status_code == 200, asset
            assert f"/api/schema/assets/{asset}" in docs.text
    assert "script-src" not in page.headers["content-security-policy"], "demo pages allow no script at all"
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_force_https(sqlite_only: Settings) -> None:
    settings = dataclasses.replace(sqlite_only, force_https=True, trusted_proxies=("10.0.0.0/8",))

    async def call(method: str, path: str, peer: str, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings), client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as client:
            return await client.request(method, path, headers=headers)

    redirected = await call("GET", "/api/plans?x=1", "203.0.113.5")
    assert redirected.status_code == 308
    assert redirected.headers["location"] == "https://api.example/api/plans?x=1"
    refused = await call("POST", "/api/webhooks/stripe", "203.0.113.5")
    assert refused.status_code == 400
    assert "HTTPS" in refused.json()["detail"]
    via_proxy = await call("GET", "/api/plans", "10.1.2.3", **{"X-Forwarded-Proto": "https"})
    assert via_proxy.status_code == 200
    assert via_proxy.headers["strict-transport-security"].startswith("max-age=")
    spoofed = await call("GET", "/api/plans", "203.0.113.5", **{"X-Forwarded-Proto": "https"})
    assert spoofed.status_code == 308, "only a trusted proxy can vouch for HTTPS"
    probe = await call("GET", "/api/health/live", "10.9.9.9")
    assert probe.status_code == 200, "health probes are exempt"
