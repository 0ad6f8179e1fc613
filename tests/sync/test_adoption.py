"""Adopting an account at month M of its history: no webhook before M, ``faddl sync`` at M (its
snapshots, pending invoice items included), webhooks after M. Every month has the simulator's MRR,
movements, paying customers and active subscriptions to the cent: after M from the snapshots and
webhooks, before M from history reconstruction (:mod:`analytics.reconstruction`), which marks
exactly those months."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.engine import Facts
from analytics.export import export_events
from analytics.facts import facts_table
from analytics.payments import payments
from analytics.report import analyze
from api.db.engine import Database
from api.events.model import parse_event
from api.settings import Settings
from api.sync.resources import resource_names
from simulator.clock import add_months
from simulator.engine import SimConfig, Simulation
from simulator.stripe_api import StripeAccount, StripeApiServer
from simulator.truth import ground_truth
from tests.sync.conftest import KEY, deliver, on, sync

INSTALLED_AT_MONTH = 8
OBJECTS = resource_names()


@pytest.fixture(scope="module")
def longer() -> tuple[Simulation, dict[str, Any]]:
    """Long enough for yearly subscriptions to go months without an event."""
    sim = Simulation(SimConfig(customers=150, months=14, seed=31)).run()
    return sim, ground_truth(sim)


async def test_every_month_after_installation_matches_the_truth(
    settings: Settings, tmp_path: Path, longer: tuple[Simulation, dict[str, Any]]
) -> None:
    sim, truth = longer
    installed = add_months(sim.start, INSTALLED_AT_MONTH)
    with StripeApiServer(StripeAccount.of(sim), KEY) as stand_in:
        stand_in.account.as_of = installed
        await _adopt(on(settings, stand_in), sim, truth, installed, tmp_path)


async def _adopt(settings: Settings, sim: Simulation, truth: dict[str, Any], installed: int, tmp_path: Path) -> None:
    # The objects alone, without the Events API's 30 days: monthly renewals put most subscriptions
    # in that window anyway, and the point is that the snapshots carry the state at M.
    report = await sync(settings, clock=lambda: installed, only=OBJECTS)
    assert report.total("failed") == 0

    await deliver(settings, [e for e in sorted(sim.events, key=lambda e: e["created"]) if e["created"] > installed])
    db = Database(settings)
    try:
        await export_events(db, tmp_path / "analytics")
    finally:
        await db.dispose()

    assert any(m["start"] < installed for m in truth["months"]), "the history should start before the installation"
    first = datetime.fromtimestamp(truth["months"][0]["start"], tz=UTC).date()
    last = datetime.fromtimestamp(truth["months"][-1]["start"], tz=UTC).date()
    facts = Facts(tmp_path / "analytics")
    report = analyze(facts, first, last)
    ours = {m.month: m for m in report.months}
    for expected in truth["months"]:
        got = ours[expected["month"]]
        month = expected["month"]
        assert got.reconstructed == (expected["start"] < installed), month
        assert got.mrr == expected["mrr"], month
        assert got.paying_customers == expected["paying_customers"], month
        assert got.active_subscriptions == expected["active_subscriptions"], month
        assert got.mrr_movements == expected["mrr_movements"], month

    # Payments: as an account connected from its first day counts them (its every event).
    always = Facts(facts_table([parse_event(json.dumps(event)) for event in sim.events]))
    adopted = {p.month: p for p in payments(facts, report.all_months)}
    connected = {p.month: p for p in payments(always, analyze(always, first, last).all_months)}
    for month, expected_payments in connected.items():
        got_payments = adopted[month]
        for name in ("renewal_attempts", "failed_amount", "recovered_amount", "successful_charges", "refunds"):
            assert getattr(got_payments, name) == getattr(expected_payments, name), (month, name)
        assert got_payments.disputes_created == expected_payments.disputes_created, month
