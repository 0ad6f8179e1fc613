"""Gauges computed from the database: business state (subscriptions by plan and status, MRR by
currency, past-due and stale counts) and the webhook backlog (failed and dead events, oldest
failed age).

They are read at scrape time, but at most once every ``METRICS_REFRESH_SECONDS``: a few grouped
queries over indexed columns, never a scan per scrape. MRR here is list price (unit amount x
quantity, per month) of ``active`` and ``past_due`` subscriptions that are not stale (their period
ended more than ``ANALYTICS_STALE_GRACE_DAYS`` ago with no renewal seen); the KPI engine computes
the exact figure with discounts from the event log."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, or_, select

from analytics.mrr import MONTHS_PER_INTERVAL
from api.catalogue.plans import PlanCatalogue
from api.db.engine import Database
from api.db.models import user_subscriptions
from api.events import log
from api.sync import state as sync_state

__all__ = ["BusinessGauges", "GaugeReading"]


@dataclass
class GaugeReading:
    """What the gauges last read from the database (one meaning of "snapshot" elsewhere is an
    object's state in an event; this is a reading of the gauges, taken at ``taken_at``)."""

    subscriptions: dict[tuple[str, str], int] = field(default_factory=dict)
    mrr: dict[str, float] = field(default_factory=dict)
    stale_subscriptions: int = 0
    failed_events: int = 0
    dead_events: int = 0
    oldest_failed_age: float = 0.0
    database_up: bool = True
    memory_percent: float = 0.0
    sync_last_success: dict[str, float] = field(default_factory=dict)
    """Run kind (sync, catchup, reconcile) -> when it last succeeded (Unix time)."""
    open_drift: int = 0
    taken_at: float = 0.0


class _ReadingCollector(Collector):
    def __init__(self, reading: GaugeReading) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Any]:
        snap = self.reading
        subs = GaugeMetricFamily("faddl_subscriptions", "Subscriptions by plan and status.", labels=["plan", "status"])
        for (plan, status), count in sorted(snap.subscriptions.items()):
            subs.add_metric([plan, status], count)
        yield subs
        past_due = sum(count for (_, status), count in snap.subscriptions.items() if status == "past_due")
        yield GaugeMetricFamily("faddl_past_due_subscriptions", "Subscriptions past due.", value=past_due)
        yield GaugeMetricFamily(
            "faddl_stale_subscriptions",
            "Subscriptions still active, past due or trialing whose period ended longer ago than the stale grace "
            "with no renewal seen (missed webhooks, or a history that stops); not counted in MRR.",
            value=snap.stale_subscriptions,
        )
        mrr = GaugeMetricFamily(
            "faddl_mrr_minor_units",
            "List-price MRR of active and past-due subscriptions, in minor units, by currency.",
            labels=["currency"],
        )
        for currency, value in sorted(snap.mrr.items()):
            mrr.add_metric([currency], round(value))
        yield mrr
        yield GaugeMetricFamily(
            "faddl_webhook_failed_events", "Events waiting for a retry (status failed).", value=snap.failed_events
        )
        yield GaugeMetricFamily(
            "faddl_webhook_dead_events", "Events that failed every attempt (status dead).", value=snap.dead_events
        )
        yield GaugeMetricFamily(
            "faddl_webhook_oldest_failed_age_seconds",
            "Age of the oldest failed or dead event (0 when there is none).",
            value=snap.oldest_failed_age,
        )
        last = GaugeMetricFamily(
            "faddl_sync_last_success_timestamp_seconds",
            "When each kind of run against the Stripe API (sync, catchup, reconcile) last succeeded.",
            labels=["kind"],
        )
        for kind, moment in sorted(snap.sync_last_success.items()):
            last.add_metric([kind], moment)
        yield last
        yield GaugeMetricFamily(
            "faddl_sync_open_drift", "Drift reconciliation found and could not heal.", value=snap.open_drift
        )
        yield GaugeMetricFamily(
            "faddl_gauges_age_seconds", "How old these database gauges are.", value=time.time() - snap.taken_at
        )
        yield GaugeMetricFamily(
            "faddl_database_up", "1 when the last gauge refresh reached the database.", value=int(snap.database_up)
        )
        yield GaugeMetricFamily(
            "faddl_system_memory_percent", "Memory in use on the host, in percent.", value=snap.memory_percent
        )


class BusinessGauges:
    def __init__(
        self, db: Database, plans: PlanCatalogue, refresh_seconds: float, *, stale_grace_days: int = 3
    ) -> None:
        self.db = db
        self.plans = plans
        self.refresh_seconds = refresh_seconds
        self.stale_grace = timedelta(days=stale_grace_days)
        self._reading: GaugeReading | None = None
        self._lock = asyncio.Lock()

    async def collector(self) -> Collector:
        async with self._lock:
            if self._reading is None or time.time() - self._reading.taken_at >= self.refresh_seconds:
                try:
                    self._reading = await self._take()
                except Exception:  # the scrape still answers; the alert rules see the database down
                    stale = self._reading or GaugeReading()
                    stale.database_up = False
                    stale.taken_at = time.time()
                    self._reading = stale
                self._reading.memory_percent = psutil.virtual_memory().percent
        return _ReadingCollector(self._reading)

    async def _take(self) -> GaugeReading:
        subs = user_subscriptions
        snap = GaugeReading(taken_at=time.time())
        async with self.db.read() as conn:
            by_price = await conn.execute(
                select(subs.c.price_id, subs.c.status, func.count()).group_by(subs.c.price_id, subs.c.status)
            )
            counts: dict[tuple[str, str], int] = defaultdict(int)
            for price_id, status, count in by_price:
                plan = self.plans.plan_for_price(price_id)
                counts[(plan.id if plan else "other", status)] += int(count)
            snap.subscriptions = dict(counts)
            live = subs.c.status.in_(("active", "past_due", "trialing"))
            stale = and_(live, subs.c.current_period_end < datetime.now(UTC) - self.stale_grace)
            found = await conn.execute(select(func.count()).where(stale))
            snap.stale_subscriptions = int(found.scalar_one())
            revenue = await conn.execute(
                select(
                    subs.c.currency,
                    subs.c.interval,
                    subs.c.interval_count,
                    func.sum(subs.c.unit_amount * func.coalesce(subs.c.quantity, 1)),
                )
                .where(
                    and_(
                        subs.c.status.in_(("active", "past_due")),
                        or_(subs.c.current_period_end.is_(None), ~stale),
                    )
                )
                .group_by(subs.c.currency, subs.c.interval, subs.c.interval_count)
            )
            mrr: dict[str, float] = defaultdict(float)
            for currency, interval, interval_count, total in revenue:
                months = float(MONTHS_PER_INTERVAL.get(interval or "month", 1)) * max(1, int(interval_count or 1))
                mrr[currency or "unknown"] += float(total or 0) / months
            snap.mrr = dict(mrr)
            queue = await log.backlog(conn)
            snap.failed_events, snap.dead_events = queue.failed, queue.dead
            snap.oldest_failed_age = queue.oldest_age_seconds()
            successes = await sync_state.last_successes(conn)
            snap.sync_last_success = {kind: moment.timestamp() for kind, moment in successes.items()}
            snap.open_drift = await sync_state.open_drift_count(conn)
        return snap
