"""Business alerts: every rule with data that must fire and data that must not; the rules file;
deduplication, resolution and cooldown in the alerts table; delivery to a local webhook receiver
through apprise; acknowledgement through the admin API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import insert, select

from analytics.alerts.delivery import Notifier
from analytics.alerts.evaluation import evaluate, fires
from analytics.alerts.rules import Rule, RuleError, load_rules
from analytics.alerts.signals import MEASURES, Context
from analytics.engine import Facts
from analytics.facts import FACT_SCHEMA
from api.app import create_app
from api.db.engine import Database
from api.db.models import alerts, security_incidents
from api.events.log import events
from api.security.tokens import mint_dev_token
from api.settings import Settings

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
LOG_NOW = int(NOW.timestamp())
DAY = 86_400
RULES = load_rules()


def facts_of(rows: list[dict[str, Any]]) -> Facts:
    full = [{name: row.get(name) for name in FACT_SCHEMA.names} for row in rows]
    return Facts(pa.Table.from_pylist(full, schema=FACT_SCHEMA))


def renewals(attempts: int, failed: int) -> list[dict[str, Any]]:
    rows = []
    for index in range(attempts):
        kind = "invoice.payment_failed" if index < failed else "invoice.paid"
        rows.append(
            {
                "event_id": f"evt_inv_{index}",
                "created": LOG_NOW - DAY - index,
                "type": kind,
                "source": "stripe",
                "object_type": "invoice",
                "object_id": f"in_{index}",
                "currency": "usd",
                "amount": 2900,
                "billing_reason": "subscription_cycle",
                "subscription_id": f"sub_{index}",
                "attempt_count": 1,
            }
        )
    return rows


def charges(count: int, disputes: int) -> list[dict[str, Any]]:
    rows = [
        {"event_id": f"evt_ch_{i}", "created": LOG_NOW - DAY, "type": "charge.succeeded", "object_type": "charge"}
        | {"object_id": f"ch_{i}", "source": "stripe"}
        for i in range(count)
    ]
    rows += [
        {"event_id": f"evt_dp_{i}", "created": LOG_NOW - DAY, "type": "charge.dispute.created"}
        | {"object_type": "dispute", "object_id": f"dp_{i}", "charge_id": f"ch_{i}", "source": "stripe"}
        for i in range(disputes)
    ]
    return rows


def document(months: list[dict[str, Any]], at_risk_mrr: dict[str, int] | None = None) -> dict[str, Any]:
    return {"computed_until": LOG_NOW, "months": months, "at_risk_mrr": at_risk_mrr or {}}


def month(name: str, mrr: int, paying: int, churn: float | None) -> dict[str, Any]:
    return {"month": name, "mrr": {"usd": mrr}, "paying_customers": {"usd": paying}, "logo_churn_rate": {"usd": churn}}


async def measure(name: str, db: Database, facts: Facts | None = None, doc: dict[str, Any] | None = None) -> list[bool]:
    ctx = Context(db=db, facts=facts or facts_of([]), document=doc or document([]), now=NOW)
    rule = RULES[name]
    return [fires(rule, o) for o in await MEASURES[name](ctx, rule)]


# -- each rule ------------------------------------------------------------------------------------------
async def test_payment_failure_rate(db: Database) -> None:
    assert await measure("payment_failure_rate", db, facts_of(renewals(25, 5))) == [True]  # 20% > 15%
    assert await measure("payment_failure_rate", db, facts_of(renewals(25, 3))) == [False]  # 12%
    assert await measure("payment_failure_rate", db, facts_of(renewals(10, 5))) == [False]  # under 20 attempts


async def test_dispute_activity(db: Database) -> None:
    assert await measure("dispute_activity", db, facts_of(charges(200, 2))) == [True]  # 1% > 0.75%
    assert await measure("dispute_activity", db, facts_of(charges(200, 1))) == [False]  # 0.5%
    assert await measure("dispute_activity", db, facts_of(charges(50, 5))) == [False]  # under 100 charges


async def test_dead_webhook_events(db: Database) -> None:
    assert await measure("dead_webhook_events", db) == [False]
    await log_event(db, "evt_dead", "customer.subscription.updated", status="dead", source="stripe")
    assert await measure("dead_webhook_events", db) == [True]


async def test_payment_escalations(db: Database) -> None:
    await log_event(db, "faddl_esc_old", "billing.payment_escalated", created=LOG_NOW - 5 * DAY, object_id="in_old")
    ctx_doc = document([])
    assert await measure("payment_escalations", db, doc=ctx_doc) == []  # outside the 3-day window
    await log_event(db, "faddl_esc_new", "billing.payment_escalated", created=LOG_NOW - DAY, object_id="in_new")
    ctx = Context(db=db, facts=facts_of([]), document=ctx_doc, now=NOW)
    found = await MEASURES["payment_escalations"](ctx, RULES["payment_escalations"])
    assert [(o.key, fires(RULES["payment_escalations"], o)) for o in found] == [("in_new", True)]


async def test_security_incident_burst_and_rate_limit_storm(db: Database) -> None:
    await incidents(db, "sql_injection", 20, NOW - timedelta(minutes=5))
    await incidents(db, "xss", 30, NOW - timedelta(hours=2))  # old
    assert await measure("security_incident_burst", db) == [False]  # 20 is not above 20
    await incidents(db, "xss", 1, NOW - timedelta(minutes=1))
    assert await measure("security_incident_burst", db) == [True]
    await incidents(db, "rate_limit_abuse", 10, NOW - timedelta(minutes=3))
    assert await measure("rate_limit_storm", db) == [False]
    await incidents(db, "rate_limit_abuse", 1, NOW - timedelta(minutes=3))
    assert await measure("rate_limit_storm", db) == [True]


async def test_churn_spike(db: Database) -> None:
    calm = [month(f"2025-{m:02d}", 100_000, 100, 0.02) for m in range(6, 12)]
    spike = document([*calm, month("2025-12", 90_000, 92, 0.05)])  # 2.5x the average
    normal = document([*calm, month("2025-12", 100_000, 100, 0.03)])
    few = document([*(replace_paying(m, 10) for m in calm), month("2025-12", 9_000, 8, 0.2)])
    assert await measure("churn_spike", db, doc=spike) == [True]
    assert await measure("churn_spike", db, doc=normal) == [False]
    assert await measure("churn_spike", db, doc=few) == [False]  # 10 paying customers: no rate worth an alert


async def test_mrr_drop(db: Database) -> None:
    before = month("2025-11", 100_000, 50, 0.02)
    assert await measure("mrr_drop", db, doc=document([before, month("2025-12", 90_000, 45, 0.1)])) == [True]
    assert await measure("mrr_drop", db, doc=document([before, month("2025-12", 97_000, 49, 0.02)])) == [False]
    small = month("2025-11", 10_000, 5, 0.0)
    assert await measure("mrr_drop", db, doc=document([small, month("2025-12", 5_000, 3, 0.4)])) == [False]


async def test_at_risk_mrr(db: Database) -> None:
    now = month("2025-12", 100_000, 40, 0.02)
    assert await measure("at_risk_mrr", db, doc=document([now], {"usd": 20_000})) == [True]  # 20% > 15%
    assert await measure("at_risk_mrr", db, doc=document([now], {"usd": 10_000})) == [False]


def replace_paying(data: dict[str, Any], paying: int) -> dict[str, Any]:
    return {**data, "paying_customers": {"usd": paying}}


async def log_event(
    db: Database,
    event_id: str,
    event_type: str,
    *,
    created: int = LOG_NOW,
    status: str = "processed",
    source: str = "service",
    object_id: str = "obj",
) -> None:
    body = {"id": event_id, "object": "event", "type": event_type, "created": created, "data": {"object": {}}}
    async with db.write() as conn:
        await conn.execute(
            insert(events).values(
                event_id=event_id,
                source=source,
                type=event_type,
                livemode=False,
                created=created,
                received_at=NOW,
                object_type="invoice",
                object_id=object_id,
                customer_id="cus_1",
                payload=json.dumps(body),
                status=status,
                attempts=1,
            )
        )


async def incidents(db: Database, kind: str, count: int, at: datetime) -> None:
    async with db.write() as conn:
        await conn.execute(
            insert(security_incidents),
            [{"kind": kind, "created_at": at, "client_ip": f"10.0.0.{i}"} for i in range(count)],
        )


# -- the rules file --------------------------------------------------------------------------------------
def test_every_default_rule_is_measured_and_the_design_defaults_hold() -> None:
    assert set(RULES) == set(MEASURES)
    assert RULES["payment_failure_rate"].threshold == 0.15
    assert RULES["payment_failure_rate"].severity == "critical"
    assert RULES["dead_webhook_events"].severity == "critical"
    assert all(rule.recommendation and rule.cooldown_minutes > 0 for rule in RULES.values())


def test_a_rules_file_overrides_fields(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[mrr_drop]\nthreshold = 0.1\nseverity = "critical"\n\n[rate_limit_storm]\nenabled = false\n')
    rules = load_rules(path)
    assert (rules["mrr_drop"].threshold, rules["mrr_drop"].severity) == (0.1, "critical")
    assert rules["mrr_drop"].cooldown_minutes == RULES["mrr_drop"].cooldown_minutes
    assert not rules["rate_limit_storm"].enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nope]\nthreshold = 1\n", "Unknown alert rule 'nope'"),
        ("[mrr_drop]\nthreshold = 'high'\n", "threshold must be a float"),
        ("[mrr_drop]\nseverity = 'urgent'\n", "severity must be one of low, medium, high, critical"),
        ("[mrr_drop]\ncooldown_minutes = -1\n", "cannot be negative"),
        ("[mrr_drop]\ncolour = 'red'\n", "unknown field 'colour'"),
        ("[mrr_drop\n", "is not valid TOML"),
    ],
)
def test_a_bad_rules_file_is_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RuleError, match=message):
        load_rules(path)


# -- lifecycle and delivery ------------------------------------------------------------------------------
@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver: apprise's ``json://`` posts land in the list."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


async def test_fire_dedupe_resolve_and_cooldown(db: Database, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    rules = {"dead_webhook_events": RULES["dead_webhook_events"]}  # critical, 60-minute cooldown
    notifier = Notifier({"critical": (url, "console://")})

    async def run(at: datetime) -> list[tuple[str, str | None]]:
        ctx = Context(db=db, facts=facts_of([]), document=document([]), now=at)
        return [(c.kind, c.delivery) for c in await evaluate(ctx, rules, notifier)]

    await log_event(db, "evt_dead", "customer.subscription.updated", status="dead", source="stripe")
    assert await run(NOW) == [("fired", "delivered to 2 channels")]
    assert received[-1]["title"].startswith("[CRITICAL]")
    assert "What to do:" in received[-1]["message"]
    assert await run(NOW + timedelta(minutes=1)) == [], "still firing: no second alert, no second delivery"
    async with db.read() as conn:
        rows = (await conn.execute(select(alerts))).all()
    assert len(rows) == 1
    assert rows[0].status == "firing"

    await set_dead(db, "evt_dead", False)
    assert await run(NOW + timedelta(minutes=2)) == [("resolved", "delivered to 2 channels")]
    assert received[-1]["title"].startswith("[RESOLVED]")

    await set_dead(db, "evt_dead", True)
    changes = await run(NOW + timedelta(minutes=3))
    assert changes[0][0] == "suppressed", "fired again within the cooldown: recorded, not delivered"
    assert len(received) == 2
    await set_dead(db, "evt_dead", False)
    assert await run(NOW + timedelta(minutes=4)) == [], "a suppressed firing's resolution is not delivered"
    await set_dead(db, "evt_dead", True)
    assert await run(NOW + timedelta(minutes=70)) == [("fired", "delivered to 2 channels")]
    async with db.read() as conn:
        history = (await conn.execute(select(alerts.c.status, alerts.c.delivery).order_by(alerts.c.id))).all()
    assert [h.status for h in history] == ["resolved", "resolved", "firing"]
    assert history[1].delivery is not None
    assert history[1].delivery.startswith("suppressed")


async def test_a_failing_channel_is_reported_without_its_secret(db: Database) -> None:
    rules = {"dead_webhook_events": RULES["dead_webhook_events"]}
    notifier = Notifier({"critical": ("json://127.0.0.1:9/secret-token-path",)})  # nothing listens on port 9
    await log_event(db, "evt_dead", "customer.subscription.updated", status="dead", source="stripe")
    ctx = Context(db=db, facts=facts_of([]), document=document([]), now=NOW)
    [change] = await evaluate(ctx, rules, notifier)
    assert change.delivery == "delivered to 0 of 1 channels; failed: json://"
    assert "secret" not in change.delivery
    async with db.read() as conn:
        notified = (await conn.execute(select(alerts.c.notified_at))).scalar_one()
    assert notified is None, "nothing was delivered, so no cooldown starts"


async def set_dead(db: Database, event_id: str, dead: bool) -> None:
    async with db.write() as conn:
        await conn.execute(
            events.update().where(events.c.event_id == event_id).values(status="dead" if dead else "processed")
        )


async def test_disabled_rules_and_severities_without_channels(db: Database) -> None:
    rule: Rule = replace(RULES["dead_webhook_events"], enabled=False)
    await log_event(db, "evt_dead", "customer.subscription.updated", status="dead", source="stripe")
    ctx = Context(db=db, facts=facts_of([]), document=document([]), now=NOW)
    assert await evaluate(ctx, {"dead_webhook_events": rule}, Notifier({})) == []
    [change] = await evaluate(ctx, {"dead_webhook_events": RULES["dead_webhook_events"]}, Notifier({}))
    assert change.delivery == "no channel configured"


async def test_admin_lists_and_acknowledges_alerts(tmp_path: Path, sqlite_only: Settings) -> None:
    settings = replace(sqlite_only, auth_dev_mode=True)
    db = Database(settings)
    try:
        await log_event(db, "evt_dead", "customer.subscription.updated", status="dead", source="stripe")
        ctx = Context(db=db, facts=facts_of([]), document=document([]), now=NOW)
        await evaluate(ctx, {"dead_webhook_events": RULES["dead_webhook_events"]}, Notifier({}))
    finally:
        await db.dispose()
    admin = {"Authorization": f"Bearer {mint_dev_token(settings, 'ops', ['admin'])}"}
    user = {"Authorization": f"Bearer {mint_dev_token(settings, 'someone', [])}"}
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/api/admin/alerts", headers=user)).status_code == 403
        listed = (await client.get("/api/admin/alerts", headers=admin)).json()
        assert [a["rule"] for a in listed] == ["dead_webhook_events"]
        assert listed[0]["acknowledged_at"] is None
        done = await client.post(f"/api/admin/alerts/{listed[0]['id']}/acknowledge", headers=admin)
        assert done.status_code == 200
        assert done.json()["acknowledged_by"] == "ops"
        assert done.json()["status"] == "firing"
        missing = await client.post("/api/admin/alerts/999/acknowledge", headers=admin)
        assert missing.status_code == 404
        assert "no alert 999" in missing.json()["detail"]
        bad = await client.get("/api/admin/alerts?status=bogus", headers=admin)
        assert bad.status_code == 400
