"""``/metrics``: HTTP, webhook, protection and database gauges with the right values, and one
sum over several worker processes (prometheus-client multiprocess mode)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import httpx
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.db.engine import Database
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.settings import Settings
from tests.factories import make_event, post_event, subscription
from tests.processes import faddl_here, free_port, service_env, start_server, stop, wait_ready


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_requests_webhooks_and_gauges_are_measured(sqlite_only: Settings) -> None:
    settings = dataclasses.replace(sqlite_only, metrics_refresh_seconds=0)
    db = Database(settings)
    processor = EventProcessor(db, settings)
    now = int(time.time())
    current = (now - 10 * 86_400, now + 20 * 86_400)
    pro = subscription("sub_m1", "cus_m1", user="u1", price="price_pro_monthly_usd", amount=2900, period=current)
    # Its period ended 10 days ago and no renewal came: stale, not in MRR.
    stale = subscription(
        "sub_m3",
        "cus_m3",
        user="u3",
        price="price_pro_monthly_usd",
        amount=2900,
        period=(now - 40 * 86_400, now - 10 * 86_400),
    )
    business = subscription(
        "sub_m2",
        "cus_m2",
        user="u2",
        price="price_business_monthly_usd",
        amount=9900,
        quantity=3,
        status="past_due",
        period=current,
    )
    await processor.ingest_many(
        [parse_event(json.dumps(make_event("customer.subscription.created", s))) for s in (pro, business, stale)]
    )
    await db.dispose()
    async with AsyncTestClient(create_app(settings)) as client:
        before = (await client.get("/metrics")).text
        for _ in range(3):
            await client.get("/api/plans")
        await client.get("/api/subscription")  # 401: no token
        await client.get("/api/nowhere")  # unrouted 404
        event = make_event(
            "customer.subscription.updated", {**pro, "cancel_at_period_end": True}, created=1_750_000_100
        )
        await post_event(client, event)
        await post_event(client, event)
        await client.post("/api/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
        scrape = await client.get("/metrics")
        after = scrape.text

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("faddl_http_requests_total", method="GET", route="/api/plans", status="200") == 3
    assert grew("faddl_http_requests_total", method="GET", route="/api/subscription", status="401") == 1
    assert grew("faddl_http_requests_total", method="GET", route="unrouted", status="404") == 1
    assert grew("faddl_http_request_duration_seconds_count", method="GET", route="/api/plans") == 3
    assert grew("faddl_auth_failures_total", reason="missing") == 1
    assert grew("faddl_webhook_events_total", type="customer.subscription.updated", outcome="processed") == 1
    assert grew("faddl_webhook_events_total", type="customer.subscription.updated", outcome="duplicate") == 1
    assert grew("faddl_webhook_rejections_total", reason="signature") == 1
    assert grew("faddl_webhook_processing_seconds_count") == 2
    assert value(after, "faddl_subscriptions", plan="pro", status="active") == 2
    assert value(after, "faddl_stale_subscriptions") == 1
    assert value(after, "faddl_subscriptions", plan="business", status="past_due") == 1
    assert value(after, "faddl_past_due_subscriptions") == 1
    assert value(after, "faddl_mrr_minor_units", currency="usd") == 2900 + 3 * 9900
    assert value(after, "faddl_webhook_failed_events") == 0
    assert "faddl_http_requests_in_flight" in after
    content_type = scrape.headers["content-type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset") == 1, content_type


def test_several_worker_processes_sum_into_one_scrape(tmp_path: Path) -> None:
    env = service_env(tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    faddl_here(env, "db", "upgrade")
    port = free_port()
    process = start_server(env, port, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(40):
                assert client.get("/api/plans").status_code == 200
            scrapes = [client.get("/metrics").text for _ in range(4)]
    finally:
        stop(process)
    counts = {
        value(text, "faddl_http_requests_total", method="GET", route="/api/plans", status="200") for text in scrapes
    }
    assert counts == {40.0}, "every scrape, whichever worker answers it, sums both workers"
