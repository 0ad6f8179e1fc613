"""Hostile input over every route of the OpenAPI document: forged and malformed tokens, bodies
(deep, huge, invalid UTF-8, other encodings, odd numbers), headers and signatures. Whatever comes
in, the answer is a 4xx (or the route's success), never a 5xx, and never a trace."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.protection.helpers import demo


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


TOKENS: dict[str, str | None] = {
    "none": None,
    "empty": "Bearer ",
    "garbage": "Bearer not.a.token",
    "alg none": "Bearer " + _unsigned({"alg": "none", "typ": "JWT"}, {"sub": "admin", "metadata": {"role": "admin"}}),
    "HS256 with a guessed secret": "Bearer " + _unsigned({"alg": "HS256", "kid": "dev"}, {"sub": "x"}) + "c2lnbmF0dXJl",
    "huge": "Bearer " + "a" * 20_000,
    "basic": "Basic " + base64.b64encode(b"admin:admin").decode(),
    "non-ascii": "Bearer é☃",
    "three dots": "Bearer ...",
    "header not json": "Bearer " + _b64(b"{{{{") + "." + _b64(b"{}") + ".x",
}

DEEP = b"[" * 5000 + b"]" * 5000
BODIES: dict[str, tuple[bytes, dict[str, str]]] = {
    "deep array": (DEEP, {"Content-Type": "application/json"}),
    "deep object": (b'{"a":' * 3000 + b"1" + b"}" * 3000, {"Content-Type": "application/json"}),
    "huge": (b'{"plan": "' + b"x" * 3_000_000 + b'"}', {"Content-Type": "application/json"}),
    "invalid utf-8": (b'{"plan": "\xff\xfe\xfa"}', {"Content-Type": "application/json"}),
    "utf-16": ('{"plan": "pro"}'.encode("utf-16"), {"Content-Type": "application/json; charset=utf-16"}),
    "nan and infinity": (b'{"quantity": NaN, "x": Infinity}', {"Content-Type": "application/json"}),
    "huge numbers": (
        b'{"quantity": 1e400, "feature": 123456789012345678901234567890}',
        {"Content-Type": "application/json"},
    ),
    "null bytes": (b'{"plan": "pro\\u0000", "\\u0000": 1}', {"Content-Type": "application/json"}),
    "duplicate keys": (b'{"plan": "pro", "plan": "business"}', {"Content-Type": "application/json"}),
    "truncated": (b'{"plan": "pr', {"Content-Type": "application/json"}),
    "xml": (
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><x>&a;</x>",
        {"Content-Type": "application/xml"},
    ),
    "form": (b"plan=pro&plan[]=x", {"Content-Type": "application/x-www-form-urlencoded"}),
    "multipart": (
        b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n--b--',
        {"Content-Type": "multipart/form-data; boundary=b"},
    ),
    "gzip claimed": (b"not gzip at all", {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    "gzip bomb": (gzip.compress(b"[" * 1_000_000), {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    "no content type": (b'{"plan": "pro"}', {}),
    "odd content type": (b'{"plan": "pro"}', {"Content-Type": "application/json; charset=ebcdic; boundary=\x01"}),
}

HEADERS: dict[str, dict[str, str]] = {
    "idempotency key huge": {"Idempotency-Key": "k" * 5000},
    "idempotency key non-ascii": {"Idempotency-Key": "ключ"},
    "forwarded garbage": {"X-Forwarded-For": "not-an-ip, 999.999.1.1, ::ffff:zz", "Forwarded": 'for="[::1'},
    "stripe signature many t": {"Stripe-Signature": ",".join(f"t={i}" for i in range(2000)) + ",v1=00"},
    "stripe signature garbage": {"Stripe-Signature": "\x00\x01=;;==,,t=-1,v1=zz"},
    "request id injection": {"X-Request-ID": "abc\r\nSet-Cookie: x=1"[:20].replace("\r\n", " ") + "x" * 300},
    "accept odd": {"Accept": "application/xml;q=2, */*;q=-1"},
    "range": {"Range": "bytes=0-1,2-3,4-5"},
}


def _routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    routes: list[tuple[str, str]] = []
    for path, item in document["paths"].items():
        concrete = path
        for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
            concrete = concrete.replace(f"{{{name}}}", "x")
        routes.extend(
            (method.upper(), concrete) for method in item if method in ("get", "post", "put", "patch", "delete")
        )
    return sorted(routes)


@pytest.fixture
def hostile_settings(sqlite_only: Settings, tmp_path: Path) -> Settings:
    # Blocking would answer 403 before the input is even read.
    return demo(sqlite_only, tmp_path, block_after_incidents=0)


async def test_no_input_makes_a_5xx_on_any_route(hostile_settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {mint_dev_token(hostile_settings, 'hostile', ['admin'])}"}
    problems: list[str] = []
    async with AsyncTestClient(create_app(hostile_settings)) as client:
        document = (await client.get("/api/schema/openapi.json")).json()
        routes = _routes(document)
        assert len(routes) >= 15, routes

        async def check(label: str, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> None:
            raw = {name: value.encode() for name, value in headers.items()}  # non-ASCII sent as UTF-8
            response = await client.request(method, path, headers=raw, **kwargs)
            if response.status_code >= 500 or "Traceback" in response.text:
                problems.append(f"{label}: {method} {path} -> {response.status_code} {response.text[:200]}")

        for method, path in routes:
            for name, value in TOKENS.items():
                headers = {} if value is None else {"Authorization": value}
                await check(f"token {name}", method, path, headers=headers)
            for name, (body, headers) in BODIES.items():
                if method in ("GET", "DELETE") and name not in ("deep array", "huge"):
                    continue
                await check(f"body {name}", method, path, content=body, headers={**admin, **headers})
            for name, headers in HEADERS.items():
                await check(f"header {name}", method, path, headers={**admin, **headers}, content=b"{}")
            await check("path", method, path.replace("/x", "/x%2F..%2F%00%ff") if "/x" in path else path, admin)
            for query in ("?" + "a=1&" * 2000, "?limit=-1&limit=99999999999999999999", "?%ff%fe=%00", "?status[$ne]=x"):
                await check(f"query {query[:20]}", method, path + query, admin)
    assert problems == [], "\n".join(problems)


async def test_a_body_that_is_not_utf8_is_a_clear_400(hostile_settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {mint_dev_token(hostile_settings, 'hostile', [])}"}
    async with AsyncTestClient(create_app(hostile_settings)) as client:
        answer = await client.post(
            "/api/usage", content=b'{"feature": "\xff"}', headers={**admin, "Content-Type": "application/json"}
        )
    assert answer.status_code == 400
    assert answer.json()["detail"] == "The request body is not valid UTF-8; JSON must be sent as UTF-8 (RFC 8259)."
