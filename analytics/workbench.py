"""What the analysts' notebooks open: the service's own data, found from any working directory.

- ``FADDL_EVENTS`` (a JSON-lines file of Stripe events, as ``faddl simulate --out`` writes): that
  file, and the ``truth.json`` beside it (or ``FADDL_TRUTH``) when there is one.
- Otherwise the service's event log, read with the service's settings (``DATABASE_URL``,
  ``VAR_DIR``, ``ANALYTICS_DIR``): the Parquet export is brought up to date first, as
  ``faddl kpis`` does. Left unset, the relative defaults (``./var``) are taken from the project's
  root, not from where Jupyter was started (``notebooks/``), so ``make run``'s data is found.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from analytics.engine import Facts
from analytics.export import export_events
from analytics.facts import facts_table
from analytics.sources import events_from_file
from api.db.engine import Database
from api.events.log import stripe_event_pages
from api.events.model import ParsedEvent
from api.settings import Settings

__all__ = ["ROOT", "Workbench", "open_workbench", "service_settings"]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
"""The project's root (where ``make run`` keeps ``var/``)."""


@dataclass
class Workbench:
    """The data a notebook works on."""

    facts: Facts
    """The typed columns the KPI engine reads."""
    events: list[ParsedEvent]
    """The Stripe events themselves, oldest first (for readings of the raw log)."""
    truth: dict[str, Any] | None
    """The simulator's ground truth for a simulated history, when there is one."""
    source: str
    """Where the data came from, for a person."""


def service_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The service's settings, with the unset relative defaults taken from the project's root."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    if not env.get("VAR_DIR"):
        settings = dataclasses.replace(settings, var_dir=ROOT / "var")
    if not env.get("DATABASE_URL"):
        settings = dataclasses.replace(settings, database_url=f"sqlite+aiosqlite:///{ROOT / 'var' / 'faddl.db'}")
    return settings


def open_workbench(environ: Mapping[str, str] | None = None) -> Workbench:
    """The events file ``FADDL_EVENTS`` names, else the service's log (see the module's text)."""
    env = os.environ if environ is None else environ
    if env.get("FADDL_EVENTS"):
        path = Path(env["FADDL_EVENTS"]).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"FADDL_EVENTS names {path}, which does not exist")
        events = list(events_from_file(path))
        truth_path = Path(env.get("FADDL_TRUTH") or path.with_name("truth.json"))
        truth = json.loads(truth_path.read_text(encoding="utf-8")) if truth_path.exists() else None
        return Workbench(Facts(facts_table(events)), events, truth, f"{len(events)} events from {path}")
    settings = service_settings(env)
    events = _run_apart(lambda: _read_log(settings))
    facts = Facts(settings.analytics_path, stale_grace_days=settings.analytics_stale_grace_days)
    where = settings.describe()["database_url"]
    return Workbench(facts, events, None, f"{len(events)} Stripe events from the log at {where}")


def _run_apart(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from synchronous code, also under Jupyter, whose kernel already
    runs an event loop in this thread (``asyncio.run`` refuses to start a second one there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


async def _read_log(settings: Settings) -> list[ParsedEvent]:
    """Bring the export up to date and read the log's Stripe events."""
    db = Database(settings)
    try:
        await export_events(db, settings.analytics_path)
        found: list[ParsedEvent] = []
        async with db.read() as conn:
            async for page in stripe_event_pages(conn, 2_000):
                found.extend(event for event, _, _ in page)
        return found
    finally:
        await db.dispose()
