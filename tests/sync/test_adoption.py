"""Adopting an account at month M of its history: no webhook before M, ``faddl sync`` at M (its
snapshots), webhooks after M. Every month after M has the simulator's MRR, movements, paying
customers and active subscriptions to the cent. The months before M rest on history reconstruction
(:mod:`analytics.reconstruction`) and are marked: each customer's MRR at each month's end is the
simulator's, except where a change's proration lines were still pending at M (billed by an invoice
after M, or never: the subscription ended first), so nothing synced dates the change; every
difference must have that cause."""

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

    assert any(m["start"] < installed for m in truth["months"]), "the history should start before the installation"
    first = datetime.fromtimestamp(truth["months"][0]["start"], tz=UTC).date()
    last = datetime.fromtimestamp(truth["months"][-1]["start"], tz=UTC).date()
    ours = {m.month: m for m in analyze(Facts(tmp_path / "analytics"), first, last).months}
    for expected in truth["months"]:
        got = ours[expected["month"]]
        month = expected["month"]
        assert got.reconstructed == (expected["start"] < installed), month
        if expected["start"] < installed:
            continue
        assert got.mrr == expected["mrr"], month
        assert got.paying_customers == expected["paying_customers"], month
        assert got.active_subscriptions == expected["active_subscriptions"], month
        if expected["start"] > installed:  # the installation month's movements settle what reconstruction missed
            assert got.mrr_movements == expected["mrr_movements"], month

    facts = Facts(tmp_path / "analytics")
    movements = facts.movements(facts.change_points(facts.timelines()))
    before = [m for m in truth["months"] if m["end"] <= installed]
    differences = [
        (month["month"], customer)
        for month in before
        for customer, (expected, got) in _per_customer(sim, movements, month["end"]).items()
        if expected != got
    ]
    ends = {m["month"]: m["end"] for m in truth["months"]}
    unexplained = [(m, c) for m, c in differences if not _pending_at(sim, c, ends[m], installed)]
    assert not unexplained, unexplained
    exact = {m["month"] for m in before} - {month for month, _ in differences}
    assert len(exact) >= len(before) // 2, differences


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


def _pending_at(sim: Simulation, customer: str, end: int, installed: int) -> bool:
    """Whether a proration of the customer's dated before ``end`` was still pending at the
    installation: billed by an invoice after it, or never (the subscription ended first). Nothing
    the sync read dates that change."""
    billed_later = [
        line
        for invoice in sim.invoices.values()
        if invoice["customer"] == customer and invoice["created"] > installed
        for line in invoice.get("prorations") or []
    ]
    never_billed = [
        line
        for sub in sim.subscriptions.values()
        if sub["customer"] == customer
        for line in sub.get("prorations") or []
    ]
    return any(line["period"][0] < end for line in billed_later + never_billed)
