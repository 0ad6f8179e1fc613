"""The periodic analytics pass the worker runs (and ``faddl alerts evaluate`` runs once): append new
events to the Parquet export, compute the KPI document, keep it as the newest snapshot (what the
admin dashboard API answers from), and evaluate the business alerts."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from analytics.alerts.delivery import Notifier
from analytics.alerts.evaluation import Change, evaluate
from analytics.alerts.rules import load_rules
from analytics.alerts.signals import Context, utcnow
from analytics.engine import Facts
from analytics.export import export_events
from analytics.output import kpi_document
from api.db.engine import Database
from api.db.models import kpi_snapshots
from api.settings import Settings

__all__ = ["KEEP_SNAPSHOTS", "RefreshResult", "latest_snapshot", "refresh"]

KEEP_SNAPSHOTS = 48


@dataclass(frozen=True)
class RefreshResult:
    exported: int
    seconds: float
    document: dict[str, Any]
    changes: list[Change]


async def latest_snapshot(db: Database) -> tuple[dict[str, Any], Any] | None:
    """The newest KPI document and when it was computed, or None before the first pass."""
    query = select(kpi_snapshots).order_by(kpi_snapshots.c.id.desc()).limit(1)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return json.loads(row.document), row.computed_at


async def refresh(db: Database, settings: Settings, *, alerts: bool = True) -> RefreshResult:
    started = time.perf_counter()
    export = await export_events(db, settings.analytics_path)
    facts = Facts(settings.analytics_path)
    try:
        _, document = await asyncio.to_thread(kpi_document, facts)
        seconds = time.perf_counter() - started
        now = utcnow()
        async with db.write() as conn:
            await conn.execute(
                insert(kpi_snapshots).values(
                    computed_at=now,
                    computed_until=int(document.get("computed_until") or 0),
                    duration_ms=int(seconds * 1000),
                    document=json.dumps(document),
                )
            )
            keep = select(kpi_snapshots.c.id).order_by(kpi_snapshots.c.id.desc()).limit(KEEP_SNAPSHOTS)
            await conn.execute(delete(kpi_snapshots).where(kpi_snapshots.c.id.not_in(keep)))
        changes: list[Change] = []
        if alerts:
            rules = load_rules(settings.alert_rules_file)
            context = Context(db=db, facts=facts, document=document, now=now)
            changes = await evaluate(context, rules, Notifier(settings.alert_channels))
    finally:
        facts.close()
    return RefreshResult(export.exported, seconds, document, changes)
