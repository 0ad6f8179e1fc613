"""Every client route is in the OpenAPI document, with request examples where there is a body."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings

CLIENT_ROUTES = {
    ("get", "/api/plans"),
    ("get", "/api/subscription"),
    ("post", "/api/checkout"),
    ("post", "/api/subscription/cancel"),
    ("post", "/api/subscription/resume"),
    ("post", "/api/subscription/change-plan"),
    ("post", "/api/billing-portal"),
    ("get", "/api/usage"),
    ("post", "/api/usage"),
}


async def test_client_routes_are_documented_with_examples(sqlite_only: Settings) -> None:
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        schema: dict[str, Any] = (await client.get("/api/schema/openapi.json")).json()
    paths = schema["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert documented >= CLIENT_ROUTES
    for method, path in CLIENT_ROUTES:
        operation = paths[path][method]
        assert operation.get("summary"), (method, path)
        body = operation.get("requestBody")
        if body is not None:
            media = body["content"]["application/json"]
            assert media.get("examples") or media["schema"].get("examples"), (method, path)
    checkout = paths["/api/checkout"]["post"]
    assert {"400", "409", "503"} <= set(checkout["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in checkout["parameters"])
    assert not any(path.startswith("/demo") for path in paths)
