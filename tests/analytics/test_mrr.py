"""The KPI engine against the simulator's own ground truth, to the cent, for several seeds and
sizes; the movement identity; invariance to delivery order and duplicates, including through the
webhook endpoint and the database."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from analytics.engine import Facts, net_movement
from analytics.export import export_events
from analytics.facts import facts_table
from analytics.report import MOVEMENT_KINDS, MonthKpis, analyze, monthly_kpis
from api.app import create_app
from api.db.engine import Database
from api.events.model import ParsedEvent
from api.settings import Settings
from tests.analytics.simulation import simulate_account
from tests.factories import post_event


def simulated(customers: int, months: int, seed: int) -> tuple[list[ParsedEvent], dict[str, Any], date, date]:
    account = simulate_account(customers, months, seed)
    return account.parsed, account.truth, account.first, account.last


def comparable(month: MonthKpis) -> dict[str, Any]:
    data = month.as_dict()
    return {k: data[k] for k in ("mrr", "arr", "mrr_movements", "paying_customers", "active_subscriptions")}


@pytest.mark.parametrize(("customers", "months", "seed"), [(60, 12, 1), (150, 12, 7), (250, 12, 3), (120, 18, 11)])
def test_exact_against_the_simulators_truth(customers: int, months: int, seed: int) -> None:
    events, truth, first, last = simulated(customers, months, seed)
    report = monthly_kpis(events, first, last)
    assert [m.month for m in report] == [m["month"] for m in truth["months"]]
    for ours, expected in zip(report, truth["months"], strict=True):
        want = {k: expected[k] for k in ("mrr", "arr", "mrr_movements", "paying_customers", "active_subscriptions")}
        assert comparable(ours) == want, ours.month


def test_the_movement_identity_holds_every_month() -> None:
    events, _, first, last = simulated(150, 12, 7)
    report = monthly_kpis(events, first, last)
    previous: dict[str, int] = {}
    for month in report:
        for currency, moves in month.mrr_movements.items():
            start = previous.get(currency, 0)
            assert start + net_movement(moves) == month.mrr.get(currency, 0)
        previous = month.mrr


def test_every_movement_names_the_events_behind_it() -> None:
    events, _, first, last = simulated(60, 12, 1)
    ids = {event.event_id for event in events}
    report = monthly_kpis(events, first, last)
    for month in report:
        for currency, kinds in month.movement_event_ids.items():
            for kind in MOVEMENT_KINDS:
                assert set(kinds[kind]) <= ids
                assert bool(kinds[kind]) == bool(month.mrr_movements[currency][kind]), (month.month, kind)


def test_order_and_duplicates_do_not_matter() -> None:
    events, _, first, last = simulated(100, 12, 5)
    rng = random.Random(5)
    shuffled = events + rng.sample(events, len(events) // 3)
    rng.shuffle(shuffled)
    assert [comparable(m) for m in monthly_kpis(shuffled, first, last)] == [
        comparable(m) for m in monthly_kpis(events, first, last)
    ]


async def test_the_same_through_the_webhook_endpoint(settings: Settings, tmp_path: Path) -> None:
    """Shuffled, 30% duplicated deliveries over HTTP, then read back from the event log."""
    events, truth, first, last = simulated(30, 6, 21)
    rng = random.Random(21)
    deliveries = [json.loads(e.raw) for e in events]
    deliveries += rng.sample(deliveries, len(deliveries) * 3 // 10)
    rng.shuffle(deliveries)
    async with AsyncTestClient(create_app(settings)) as client:
        for event in deliveries:
            assert (await post_event(client, event)).status_code == 200
    db = Database(settings)
    try:
        export = await export_events(db, tmp_path / "analytics")
    finally:
        await db.dispose()
    assert export.exported == facts_table(events).num_rows
    report = analyze(Facts(tmp_path / "analytics"), first, last).months
    for ours, expected in zip(report, truth["months"], strict=True):
        assert ours.mrr == expected["mrr"]
        assert ours.mrr_movements == expected["mrr_movements"]


def test_a_range_that_starts_late_keeps_the_earlier_mrr() -> None:
    events, truth, first, last = simulated(60, 12, 1)
    later = date(first.year, first.month + 3, 1)
    report = monthly_kpis(events, later, last)
    assert [comparable(m) for m in report] == [
        {k: m[k] for k in ("mrr", "arr", "mrr_movements", "paying_customers", "active_subscriptions")}
        for m in truth["months"][3:]
    ]
