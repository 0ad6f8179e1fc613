"""What the dashboard shows, read through the one KPI implementation (``analytics``) from the
Parquet export of the event log (brought up to date on each refresh)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from analytics.engine import Facts
from analytics.export import export_events
from analytics.mrr import Movement
from analytics.output import kpi_document
from analytics.report import MonthKpis
from analytics.retention import RetentionKpis, retention
from api.db.engine import Database
from api.settings import Settings

__all__ = ["Kpis", "load_kpis"]


@dataclass(frozen=True)
class Kpis:
    months: list[MonthKpis]
    retention: list[RetentionKpis]
    movements: list[Movement]
    document: dict[str, Any]
    """The whole KPI set, as ``faddl kpis --format json`` prints it."""

    @property
    def currencies(self) -> list[str]:
        return sorted({c for month in self.months for c in month.mrr})


def load_kpis(settings: Settings) -> Kpis:
    async def refresh() -> None:
        db = Database(settings)
        try:
            await export_events(db, settings.analytics_path)
        finally:
            await db.dispose()

    asyncio.run(refresh())
    facts = Facts(settings.analytics_path)
    try:
        report, document = kpi_document(facts)
    finally:
        facts.close()
    return Kpis(report.months, retention(report.movements, report.months), report.movements, document)
