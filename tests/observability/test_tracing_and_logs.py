"""Traces (request, database, webhook and Stripe spans, W3C propagation) and logs (trace ids on
lines, secrets never written)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.app import create_app
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.factories import SECRET, make_event, post_event, sign, subscription

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK provider with an in-memory exporter (installed once per test process, as in
    production, where OTEL_EXPORTER_OTLP_ENDPOINT installs the OTLP one)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


async def test_spans_for_requests_database_and_webhooks(spans: InMemorySpanExporter, sqlite_only: Settings) -> None:
    event = make_event("customer.subscription.created", subscription("sub_t", "cus_t", user="u_t"))
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with AsyncTestClient(create_app(sqlite_only)) as client:
        answer = await post_event(client, event, headers={"traceparent": incoming})
    assert answer.status_code == 200
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.name == "POST /api/webhooks/stripe")
    assert server.attributes["http.route"] == "/api/webhooks/stripe"
    assert server.attributes["http.response.status_code"] == 200
    assert format(server.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736", "continues the caller's trace"
    webhook = next(s for s in finished if s.name == "webhook customer.subscription.created")
    assert webhook.attributes["stripe.event.id"] == event["id"]
    assert webhook.attributes["faddl.outcome"] == "processed"
    assert webhook.parent is not None
    assert webhook.parent.span_id == server.context.span_id
    statements = [s for s in finished if s.attributes and s.attributes.get("db.system") == "sqlite"]
    assert statements, "database statements are traced"
    assert all(s.context.trace_id == server.context.trace_id for s in statements)


async def test_stripe_calls_are_spans(spans: InMemorySpanExporter, sqlite_only: Settings) -> None:
    from api.gateway.stripe_client import StripeGateway

    gateway = StripeGateway(
        dataclasses.replace(sqlite_only, stripe_api_base="http://127.0.0.1:9", stripe_max_network_retries=0)
    )
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 (Stripe is unreachable: ProviderUnavailable)
            await gateway.resume_subscription("sub_x", idempotency_key="k")
    finally:
        await gateway.close()
    call = next(s for s in spans.get_finished_spans() if s.name == "stripe subscriptions.update")
    assert call.attributes["stripe.outcome"] == "APIConnectionError"


async def test_log_lines_carry_trace_and_request_ids(
    spans: InMemorySpanExporter, sqlite_only: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = dataclasses.replace(sqlite_only, slow_request_seconds=0.0)
    async with AsyncTestClient(create_app(settings)) as client:
        await client.get("/api/plans", headers={"X-Request-ID": "req-slow-0001"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    slow = next(line for line in lines if line["event"] == "slow request")
    server = next(s for s in spans.get_finished_spans() if s.name == "GET /api/plans")
    assert slow["trace_id"] == format(server.context.trace_id, "032x")
    assert slow["request_id"] == "req-slow-0001"
    assert slow["route"] == "/api/plans"


async def test_secrets_are_never_logged(
    sqlite_only: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlog

    settings = dataclasses.replace(sqlite_only, auth_dev_mode=True, var_dir=tmp_path / "var")
    token = mint_dev_token(settings, "u_secret", [])
    body = json.dumps(make_event("customer.subscription.created", subscription("sub_s", "cus_s", user="u_secret")))
    signature = sign(body, SECRET)
    card = "4242 4242 4242 4242"
    async with AsyncTestClient(create_app(settings)) as client:
        await client.get("/api/subscription", headers={"Authorization": f"Bearer {token}"})
        await client.get("/api/subscription", headers={"Authorization": f"Bearer {token}x"})  # a refused token
        await client.post("/api/webhooks/stripe", content=body.encode(), headers={"Stripe-Signature": signature + "0"})
        await client.post(
            "/api/usage", json={"feature": "api_calls", "card": card}, headers={"Authorization": f"Bearer {token}"}
        )
    log = structlog.get_logger("test")
    log.warning(
        "everything a careless caller might log",
        authorization=f"Bearer {token}",
        stripe_signature=signature,
        api_key="sk_live_51abcdefghijklmnop",
        note=f"card {card}, secret {SECRET}, key sk_test_abcdefghijkl, token {token}",
        amount=1_750_000_000,
    )
    output = capsys.readouterr().err
    assert output, "something was logged"
    for secret in (
        token,
        signature.split("v1=")[1],
        "sk_live_51abcdefghijklmnop",
        "sk_test_abcdefghijkl",
        SECRET,
        card,
    ):
        assert secret not in output, f"{secret[:12]}... leaked into the logs"
    assert "[redacted]" in output
    assert "1750000000" in output, "plain numbers (timestamps, amounts) are kept"
