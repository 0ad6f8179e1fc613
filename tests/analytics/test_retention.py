"""Retention KPIs against an independent computation from the simulator's own record of MRR
changes (not from the events), per kpis.md's definitions."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pytest

from analytics.retention import retention
from tests.analytics.simulation import simulate_account


def approx(value: float | None) -> object:
    return None if value is None else pytest.approx(value, abs=1e-6)


def test_retention_matches_an_independent_computation() -> None:
    account = simulate_account(200, 18, 4)
    sim, truth = account.sim, account.truth
    ours = retention(account.report)

    # The simulator's changes: (time, customer, currency, kind, delta), replayed per customer.
    history = sorted(sim.changes, key=lambda c: c[0])

    def mrr_at(moment: int) -> dict[tuple[str, str], int]:
        state: dict[tuple[str, str], int] = defaultdict(int)
        for at, customer, currency, kind, delta in history:
            if at >= moment:
                break
            state[(customer, currency)] += -delta if kind in ("churn", "contraction") else delta
        return state

    for index, month in enumerate(truth["months"]):
        start, end = mrr_at(month["start"]), mrr_at(month["end"])
        for currency, moves in month["mrr_movements"].items():
            paying = {k for k, v in start.items() if k[1] == currency and v > 0}
            lost = {k for k in paying if end.get(k, 0) == 0}
            expected_logo = len(lost) / len(paying) if paying else None
            start_mrr = sum(v for k, v in start.items() if k[1] == currency)
            gross = (moves["churn"] + moves["contraction"]) / start_mrr if start_mrr else None
            net = (
                (moves["churn"] + moves["contraction"] - moves["expansion"] - moves["reactivation"]) / start_mrr
                if start_mrr
                else None
            )
            got = ours[index]
            assert got.logo_churn_rate[currency] == approx(expected_logo), (month["month"], currency)
            assert got.gross_revenue_churn[currency] == approx(gross)
            assert got.net_revenue_churn[currency] == approx(net)
            split = (got.voluntary_churn_rate[currency] or 0) + (got.delinquent_churn_rate[currency] or 0)
            assert split == pytest.approx(got.logo_churn_rate[currency] or 0, abs=1e-5)
            if index >= 12:
                then = mrr_at(truth["months"][index - 12]["end"])
                cohort = {k: v for k, v in then.items() if k[1] == currency and v > 0}
                base = sum(cohort.values())
                nrr = Fraction(sum(end.get(k, 0) for k in cohort), base) if base else None
                grr = Fraction(sum(min(end.get(k, 0), v) for k, v in cohort.items()), base) if base else None
                assert got.nrr[currency] == approx(float(nrr) if nrr is not None else None)
                assert got.grr[currency] == approx(float(grr) if grr is not None else None)
            else:
                assert got.nrr[currency] is None
    assert any(r.delinquent_churn_rate.get("usd") for r in ours), "the simulation has payment-failure churn"
    assert any(r.voluntary_churn_rate.get("usd") for r in ours)
    assert any(value is not None for r in ours for value in r.ltv.values()), "LTV after six months of churn history"
