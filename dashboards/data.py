"""What the dashboard reads. KPIs: the worker's newest snapshot when it is fresh, else computed
now (export refresh + ``kpi_document``): either way the one KPI implementation (``analytics``),
the same document ``faddl kpis --format json`` prints. Alerts and security incidents: the
service's tables."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import polars as pl
from sqlalchemy import func, select

from analytics.activity import Activity, activity
from analytics.alerts.history import AlertView, acknowledge_alert, recent_alerts
from analytics.engine import Facts
from analytics.export import export_events
from analytics.fx import FxTable, load_rates
from analytics.output import kpi_document
from analytics.report import analyze
from analytics.snapshots import latest_snapshot
from api.catalogue.plans import configured_catalogue
from api.db.dialects import utc
from api.db.engine import Database
from api.db.models import (
    charges,
    customers,
    disputes,
    kpi_snapshots,
    payment_history,
    security_incidents,
    user_subscriptions,
)
from api.settings import Settings

__all__ = [
    "CustomerRecord",
    "Kpis",
    "acknowledge",
    "find_customers",
    "load_activity",
    "load_alerts",
    "load_customer",
    "load_fx",
    "load_incidents",
    "load_kpis",
    "snapshot_version",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Kpis:
    document: dict[str, Any]
    """The whole KPI set, as ``faddl kpis --format json`` prints it."""
    as_of: datetime
    source: str
    """``snapshot`` (the worker's) or ``computed`` (now)."""

    @property
    def months(self) -> list[dict[str, Any]]:
        months: list[dict[str, Any]] = self.document.get("months") or []
        return months

    @property
    def currencies(self) -> list[str]:
        return sorted({c for month in self.months for c in month["mrr"]})

    @property
    def plans(self) -> list[str]:
        return sorted({p for month in self.months for by in month.get("mrr_by_plan", {}).values() for p in by})

    def plans_in(self, currency: str) -> list[str]:
        """The plans that had MRR in ``currency`` in some month."""
        return sorted({p for month in self.months for p in month.get("mrr_by_plan", {}).get(currency, {})})

    def plan_name(self, plan: str) -> str:
        """A plan's name from the plan catalogue or the synced products and prices, else its key
        (the price's lookup key)."""
        names: dict[str, str] = self.document.get("plan_names") or {}
        return names.get(plan, plan)

    @property
    def reconstructed_months(self) -> list[str]:
        """The months that rest on reconstructed history (the account's life before its sync)."""
        return [m["month"] for m in self.months if m.get("reconstructed")]


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def load_kpis(settings: Settings) -> Kpis:
    async def snapshot(db: Database) -> tuple[dict[str, Any], Any] | None:
        return await latest_snapshot(db)

    found = _run(settings, snapshot)
    fresh_after = datetime.now(UTC) - timedelta(seconds=2 * settings.analytics_refresh_seconds)
    if found is not None and utc(found[1]) >= fresh_after:
        return Kpis(found[0], utc(found[1]), "snapshot")

    facts = _fresh_facts(settings)
    try:
        _, document = kpi_document(facts, catalogue=configured_catalogue(settings))
    finally:
        facts.close()
    return Kpis(document, datetime.now(UTC), "computed")


def _fresh_facts(settings: Settings) -> Facts:
    """The KPI engine's facts over the export, brought up to date with the log first."""

    async def export(db: Database) -> None:
        await export_events(db, settings.analytics_path)

    _run(settings, export)
    return Facts(settings.analytics_path, stale_grace_days=settings.analytics_stale_grace_days)


def snapshot_version(settings: Settings) -> str | None:
    """When the newest KPI snapshot was computed (None before the worker's first): what a page
    compares to notice a newer one."""

    async def newest(db: Database) -> Any:
        async with db.read() as conn:
            return (await conn.execute(select(func.max(kpi_snapshots.c.computed_at)))).scalar_one()

    moment = _run(settings, newest)
    return None if moment is None else str(moment)


def load_fx(settings: Settings) -> FxTable | None:
    """The exchange-rate table ``FX_RATES_FILE`` names (None without one; ``ValueError`` for a
    broken one)."""
    return load_rates(settings.fx_rates_file) if settings.fx_rates_file else None


def load_alerts(settings: Settings, limit: int = 200) -> list[AlertView]:
    return _run(settings, lambda db: recent_alerts(db, limit))


def acknowledge(settings: Settings, alert_id: int, who: str) -> None:
    _run(settings, lambda db: acknowledge_alert(db, alert_id, who))


def load_incidents(settings: Settings, days: int) -> pl.DataFrame:
    """Security incidents per day and kind over the last ``days`` days."""

    async def work(db: Database) -> list[tuple[Any, ...]]:
        since = datetime.now(UTC) - timedelta(days=days)
        day = func.date(security_incidents.c.created_at)
        query = (
            select(day, security_incidents.c.kind, func.count())
            .where(security_incidents.c.created_at >= since)
            .group_by(day, security_incidents.c.kind)
            .order_by(day)
        )
        async with db.read() as conn:
            return [tuple(row) for row in (await conn.execute(query)).all()]

    rows = _run(settings, work)
    return pl.DataFrame(
        [(str(d), k, int(c)) for d, k, c in rows],
        schema={"day": pl.String, "kind": pl.String, "incidents": pl.Int64},
        orient="row",
    )


def load_activity(settings: Settings) -> Activity:
    """Every movement with its event, and each customer's MRR by month, from the export brought up
    to date (the same engine and log as the KPIs)."""
    facts = _fresh_facts(settings)
    try:
        return activity(analyze(facts))
    finally:
        facts.close()


def find_customers(settings: Settings, query: str) -> pl.DataFrame:
    """Customers whose Stripe id, e-mail or user id is ``query`` (e-mail case-insensitive)."""
    wanted = query.strip()

    async def work(db: Database) -> list[tuple[Any, ...]]:
        stmt = (
            select(customers.c.stripe_customer_id, customers.c.email, customers.c.user_id, customers.c.name)
            .where(
                (customers.c.stripe_customer_id == wanted)
                | (func.lower(customers.c.email) == wanted.lower())
                | (customers.c.user_id == wanted)
            )
            .order_by(customers.c.stripe_customer_id)
            .limit(50)
        )
        async with db.read() as conn:
            return [tuple(row) for row in (await conn.execute(stmt)).all()]

    rows = _run(settings, work) if wanted else []
    schema = {"customer": pl.String, "email": pl.String, "user_id": pl.String, "name": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass(frozen=True)
class CustomerRecord:
    """A customer's rows in the projections: what Stripe last told us about it."""

    subscriptions: pl.DataFrame
    invoices: pl.DataFrame
    charges: pl.DataFrame
    disputes: pl.DataFrame


def load_customer(settings: Settings, customer_id: str) -> CustomerRecord:
    tables = {
        "subscriptions": (
            user_subscriptions,
            "stripe_subscription_id status price_id quantity unit_amount currency interval current_period_end "
            "cancel_at_period_end canceled_at created",
        ),
        "invoices": (
            payment_history,
            "stripe_invoice_id status amount_due amount_paid currency billing_reason attempt_count failure_code "
            "period_start period_end created",
        ),
        "charges": (charges, "stripe_charge_id status amount amount_refunded currency failure_code disputed created"),
        "disputes": (disputes, "stripe_dispute_id stripe_charge_id status amount currency reason created"),
    }

    async def work(db: Database) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        async with db.read() as conn:
            for name, (table, names) in tables.items():
                columns = [table.c[c] for c in names.split()]
                stmt = select(*columns).where(table.c.stripe_customer_id == customer_id).order_by(table.c.created)
                found[name] = [dict(row) for row in (await conn.execute(stmt)).mappings()]
        return found

    rows = _run(settings, work)
    frames = {
        name: pl.DataFrame(
            [{k: (str(v) if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in rows[name]],
            infer_schema_length=None,
        )
        for name in tables
    }
    return CustomerRecord(**frames)
