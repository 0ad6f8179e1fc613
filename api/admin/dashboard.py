"""``GET /api/admin/dashboard``: one answer for an operator's overview. Everything in it is cheap
to read: the headline KPIs come from the newest KPI snapshot the worker computed (with its as-of
time), never from a recomputation, so the answer does not grow with the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, get
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from analytics.alerts.history import AlertView, recent_alerts
from analytics.snapshots import latest_snapshot
from api.admin.sync import SyncOverview, sync_overview
from api.db.dialects import utc
from api.db.engine import Database
from api.db.models import security_incidents
from api.events import log
from api.monitoring.health import HealthChecker
from api.observability.metrics import AUTH_FAILURES, RATE_LIMIT_REJECTIONS
from api.observability.summary import HttpSummary, http_summary
from api.protection.layers import Protection

__all__ = ["AdminDashboard", "AdminDashboardController"]


class HealthOverview(msgspec.Struct):
    status: str
    score: int
    issues: list[str]
    """One line per component that is not ok."""


class HeadlineKpis(msgspec.Struct):
    as_of: datetime | None
    """When the worker computed them (``None`` before its first pass)."""
    computed_until: datetime | None
    """The newest event they include."""
    month: str | None
    mrr: dict[str, int]
    arr: dict[str, int]
    active_subscriptions: int | None
    paying_customers: dict[str, int]
    logo_churn_rate: dict[str, float | None]
    nrr: dict[str, float | None]
    payment_failure_rate_7d: float | None
    at_risk_mrr: dict[str, int]


class SecurityOverview(msgspec.Struct):
    incidents_24h: dict[str, int]
    """By kind."""
    blocked_clients: int
    rate_limit_rejections: int
    """Since this instance started."""
    auth_failures: int
    """Since this instance started."""


class WebhookPipeline(msgspec.Struct):
    backlog: int
    """Failed events waiting for a retry."""
    failed_24h: int
    dead: int
    received_24h: int
    last_received_at: datetime | None


class RecentEvent(msgspec.Struct):
    event_id: str
    type: str
    source: str
    status: str
    created: datetime
    received_at: datetime


class AdminDashboard(msgspec.Struct):
    generated_at: datetime
    health: HealthOverview
    kpis: HeadlineKpis
    security: SecurityOverview
    api: HttpSummary
    webhooks: WebhookPipeline
    recent_events: list[RecentEvent]
    recent_alerts: list[AlertView]
    stripe_sync: SyncOverview
    """When the sync, the Events API catch-up and reconciliation last succeeded; drift not healed."""


def _counter_total(counter: Any) -> int:
    return int(sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total")))


def _kpis(snapshot: tuple[dict[str, Any], Any] | None) -> HeadlineKpis:
    if snapshot is None:
        return HeadlineKpis(None, None, None, {}, {}, None, {}, {}, {}, None, {})
    document, computed_at = snapshot
    last: dict[str, Any] = (document.get("months") or [{}])[-1]
    window = (document.get("payment_windows") or {}).get("last_7_days") or {}
    until = document.get("computed_until")
    return HeadlineKpis(
        as_of=utc(computed_at),
        computed_until=datetime.fromtimestamp(until, tz=UTC) if until else None,
        month=last.get("month"),
        mrr=last.get("mrr", {}),
        arr=last.get("arr", {}),
        active_subscriptions=last.get("active_subscriptions"),
        paying_customers=last.get("paying_customers", {}),
        logo_churn_rate=last.get("logo_churn_rate", {}),
        nrr=last.get("nrr", {}),
        payment_failure_rate_7d=window.get("payment_failure_rate"),
        at_risk_mrr=document.get("at_risk_mrr", {}),
    )


async def _pipeline(db: Database, since: datetime) -> WebhookPipeline:
    """Counts that each ride an index (status; received_at), so they cost the same at 1M events."""

    async def read(conn: AsyncConnection) -> WebhookPipeline:
        queue, recent = await log.backlog(conn), await log.activity(conn, since)
        return WebhookPipeline(queue.failed, recent.failed, queue.dead, recent.received, recent.last_received)

    return await db.run(read)


async def _recent_events(db: Database, limit: int) -> list[RecentEvent]:
    rows = await db.run(lambda conn: log.recent_rows(conn, limit))
    return [
        RecentEvent(
            row.event_id,
            row.type,
            row.source,
            row.status,
            datetime.fromtimestamp(row.created, tz=UTC),
            utc(row.received_at),
        )
        for row in rows
    ]


async def _incidents(db: Database, since: datetime) -> dict[str, int]:
    query = (
        select(security_incidents.c.kind, func.count())
        .where(security_incidents.c.created_at >= since)
        .group_by(security_incidents.c.kind)
    )

    async def read(conn: AsyncConnection) -> dict[str, int]:
        return {kind: int(count) for kind, count in (await conn.execute(query)).all()}

    return await db.run(read)


class AdminDashboardController(Controller):
    path = "/dashboard"
    tags = ["admin"]

    @get(
        "/",
        summary="Operator overview",
        description=(
            "Health score and issues; headline KPIs from the newest snapshot (with its as-of time); "
            "security (incidents in 24 h, blocks, rate-limit rejections, auth failures); API performance "
            "from the service's own metrics (request rate, error rate, p95/p99 since start); the webhook "
            "pipeline (backlog, failures, dead events); recent events and alerts; when the Stripe sync, catch-up and "
            "reconciliation last succeeded, and the drift not healed. Admin role only."
        ),
    )
    async def dashboard(self, request: Request[Any, Any, Any]) -> AdminDashboard:
        db: Database = request.app.state.db
        checker: HealthChecker = request.app.state.health
        protection: Protection = request.app.state.protection
        now = datetime.now(UTC)
        since = now - timedelta(hours=24)
        report, snapshot, pipeline = await asyncio.gather(checker.report(), latest_snapshot(db), _pipeline(db, since))
        events, incidents, blocks, alerts, stripe_sync = await asyncio.gather(
            _recent_events(db, 10),
            _incidents(db, since),
            protection.blocker.current(),
            recent_alerts(db, 10),
            sync_overview(db),
        )
        issues = [f"{name}: {c.detail}" for name, c in report.components.items() if c.status != "ok"]
        if snapshot is None:
            issues.append("kpis: no KPI snapshot yet (the worker computes one every ANALYTICS_REFRESH_SECONDS)")
        return AdminDashboard(
            generated_at=now,
            health=HealthOverview(report.status, report.score, issues),
            kpis=_kpis(snapshot),
            security=SecurityOverview(
                incidents_24h=incidents,
                blocked_clients=len(blocks),
                rate_limit_rejections=_counter_total(RATE_LIMIT_REJECTIONS),
                auth_failures=_counter_total(AUTH_FAILURES),
            ),
            api=http_summary(),
            webhooks=pipeline,
            recent_events=events,
            recent_alerts=alerts,
            stripe_sync=stripe_sync,
        )
