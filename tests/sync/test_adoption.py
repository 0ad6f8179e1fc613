"""Adopting an account at month M of its history: no webhook before M, ``faddl sync`` at M (its
snapshots, and the Events API's last 30 days), webhooks after M. Every month after M has the
simulator's MRR, paying customers and active subscriptions to the cent. (The months before M rest
on history reconstruction, which is not built yet; they are not compared here.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.engine import Facts
from analytics.export import export_events
from analytics.report import analyze
from api.db.engine import Database
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.settings import Settings
from simulator.clock import add_months
from simulator.engine import Simulation
from simulator.stripe_api import StripeApiServer
from tests.sync.conftest import on, sync

INSTALLED_AT_MONTH = 3


async def test_every_month_after_installation_matches_the_truth(
    settings: Settings, tmp_path: Path, stand_in: StripeApiServer, simulated: tuple[Simulation, dict[str, Any]]
) -> None:
    sim, truth = simulated
    installed = add_months(sim.start, INSTALLED_AT_MONTH)
    stand_in.account.as_of = installed
    settings = on(settings, stand_in)
    report = await sync(settings, clock=lambda: installed)
    assert report.total("failed") == 0

    later = [e for e in sorted(sim.events, key=lambda e: e["created"]) if e["created"] > installed]
    db = Database(settings)
    try:
        processor = EventProcessor(db, settings)
        parsed = [parse_event(json.dumps(event)) for event in later]
        for start in range(0, len(parsed), 200):
            await processor.ingest_many(parsed[start : start + 200])
        await export_events(db, tmp_path / "analytics")
    finally:
        await db.dispose()

    months = [m for m in truth["months"] if m["start"] >= installed]
    assert months, "the history should go on after the installation"
    first = datetime.fromtimestamp(truth["months"][0]["start"], tz=UTC).date()
    last = datetime.fromtimestamp(truth["months"][-1]["start"], tz=UTC).date()
    ours = {m.month: m for m in analyze(Facts(tmp_path / "analytics"), first, last).months}
    for expected in months:
        got = ours[expected["month"]]
        assert got.mrr == expected["mrr"], expected["month"]
        assert got.paying_customers == expected["paying_customers"], expected["month"]
        assert got.active_subscriptions == expected["active_subscriptions"], expected["month"]
