"""The periodic analytics pass the worker runs (and ``faddl alerts evaluate`` runs once): append new
events to the Parquet export, compute the KPI document, keep it as the newest snapshot (what the
admin dashboard API answers from), and evaluate the business alerts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analytics.alerts.delivery import Notifier
from analytics.alerts.evaluation import Change, evaluate
from analytics.alerts.rules import load_rules
from analytics.alerts.signals import Context
from analytics.engine import Facts
from analytics.export import export_events
from analytics.output import kpi_document
from analytics.snapshots import store_snapshot
from api.catalogue.plans import configured_catalogue
from api.db.engine import Database
from api.settings import Settings

__all__ = ["RefreshResult", "refresh"]


@dataclass(frozen=True)
class RefreshResult:
    exported: int
    seconds: float
    document: dict[str, Any]
    changes: list[Change]


async def refresh(db: Database, settings: Settings, *, alerts: bool = True) -> RefreshResult:
    started = time.perf_counter()
    export = await export_events(db, settings.analytics_path)
    facts = Facts(settings.analytics_path, stale_grace_days=settings.analytics_stale_grace_days)
    try:
        catalogue = configured_catalogue(settings)
        _, document = await asyncio.to_thread(lambda: kpi_document(facts, catalogue=catalogue))
        seconds = time.perf_counter() - started
        now = datetime.now(UTC)
        await store_snapshot(db, document, now, seconds)
        changes: list[Change] = []
        if alerts:
            rules = load_rules(settings.alert_rules_file)
            context = Context(db=db, facts=facts, document=document, now=now)
            changes = await evaluate(context, rules, Notifier(settings.alert_channels))
    finally:
        facts.close()
    return RefreshResult(export.exported, seconds, document, changes)
