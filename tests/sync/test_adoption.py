"""Adopting an account at month M of its history: no webhook before M, ``faddl sync`` at M (its
snapshots), webhooks after M. Every month after M has the simulator's MRR, paying customers and
active subscriptions to the cent. The months before M rest on history reconstruction
(:mod:`analytics.reconstruction`): each customer's MRR at each month's end is the simulator's, except
where a change was never invoiced (the simulator's downgrades and seat changes take effect with no
invoice and no proration line, so nothing Stripe keeps dates them before the next invoice); every
such difference is listed and must have that cause."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analytics.engine import Facts
from analytics.export import export_events
from analytics.facts import SCALE
from analytics.report import analyze
from api.db.engine import Database
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

    facts = Facts(tmp_path / "analytics")
    movements = facts.movements(facts.change_points(facts.timelines()))
    before = [m for m in truth["months"] if m["end"] <= installed]
    assert {m["month"] for m in before} <= {m.month for m in ours.values() if m.reconstructed}
    differences = [
        (month["month"], customer)
        for month in before
        for customer, (expected, got) in _per_customer(sim, movements, month["end"]).items()
        if expected != got
    ]
    unexplained = [(m, c) for m, c in differences if not _uninvoiced_change(sim, c, _end_of(truth, m))]
    assert not unexplained, unexplained
    exact = [m["month"] for m in before if m["month"] not in {month for month, _ in differences}]
    assert len(exact) >= len(before) // 2, (exact, differences)


def _end_of(truth: dict[str, Any], month: str) -> int:
    return int(next(m["end"] for m in truth["months"] if m["month"] == month))


def _per_customer(sim: Simulation, movements: pl.DataFrame, end: int) -> dict[str, tuple[int, int]]:
    """Each customer's MRR at ``end`` (in cents): the simulator's and ours."""
    expected: dict[str, int] = defaultdict(int)
    for at, customer, _currency, kind, delta in sim.changes:
        if at < end:
            expected[customer] += -delta if kind in ("churn", "contraction") else delta
    got: dict[str, int] = {}
    for row in movements.filter(pl.col("at") < end).iter_rows(named=True):
        got[row["customer"]] = round(Fraction(row["after"], SCALE))
    return {c: (expected.get(c, 0), got.get(c, 0)) for c in set(expected) | set(got)}


def _uninvoiced_change(sim: Simulation, customer: str, end: int) -> bool:
    """Whether the customer's price or quantity changed before ``end`` with no invoice of the
    subscription from that change until ``end``: nothing the account keeps dates the change."""
    invoiced: dict[str, list[int]] = defaultdict(list)
    for event in sim.events:
        if event["type"] == "invoice.created":
            invoiced[str(event["data"]["object"].get("customer"))].append(int(event["created"]))
    for event in sim.events:
        obj, previous = event["data"]["object"], (event["data"].get("previous_attributes") or {})
        if obj.get("customer") != customer or event["type"] != "customer.subscription.updated":
            continue
        # The items changed outside a renewal (a renewal names its new invoice).
        changed = "items" in previous and "latest_invoice" not in previous
        at = int(event["created"])
        if changed and at < end and not any(at <= moment < end for moment in invoiced[customer]):
            return True
    return False
