"""What the dashboard shows, read through the one KPI implementation (``analytics``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from analytics.mrr import Movement
from analytics.report import MonthKpis, analyze
from analytics.retention import RetentionKpis, retention
from analytics.sources import events_from_database
from api.db.engine import Database
from api.settings import Settings

__all__ = ["Kpis", "load_kpis"]


@dataclass(frozen=True)
class Kpis:
    months: list[MonthKpis]
    retention: list[RetentionKpis]
    movements: list[Movement]

    @property
    def currencies(self) -> list[str]:
        return sorted({c for month in self.months for c in month.mrr})


def load_kpis(settings: Settings) -> Kpis:
    async def read() -> Kpis:
        db = Database(settings)
        try:
            events = await events_from_database(db)
        finally:
            await db.dispose()
        months, movements = analyze(events)
        return Kpis(months, retention(movements, months), movements)

    return asyncio.run(read())
