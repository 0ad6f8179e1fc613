"""Cohort retention against the simulator's own record of MRR changes."""

from __future__ import annotations

from collections import defaultdict

import pytest

from analytics.cohorts import cohorts
from tests.analytics.simulation import simulate_account


def test_cohorts_match_an_independent_computation() -> None:
    account = simulate_account(200, 12, 6)
    sim, truth = account.sim, account.truth
    ours = {c.month: c for c in cohorts(account.report)}

    history = sorted(sim.changes, key=lambda c: c[0])
    ends = [m["end"] for m in truth["months"]]

    def mrr_at(moment: int) -> dict[str, int]:
        state: dict[str, int] = defaultdict(int)
        for at, customer, _, kind, delta in history:
            if at >= moment:
                break
            state[customer] += -delta if kind in ("churn", "contraction") else delta
        return state

    first_paid: dict[str, int] = {}
    for at, customer, _, kind, _ in history:
        if kind == "new" and customer not in first_paid:
            first_paid[customer] = next(i for i, end in enumerate(ends) if at < end)
    assert ours, "there are cohorts"
    for index, month in enumerate(truth["months"]):
        group = {c for c, i in first_paid.items() if i == index}
        if not group:
            assert month["month"] not in ours
            continue
        cohort = ours[month["month"]]
        assert cohort.customers == len(group)
        expected = [sum(1 for c in group if mrr_at(end).get(c, 0) > 0) / len(group) for end in ends[index:]]
        assert cohort.logo_retention == pytest.approx(expected, abs=1e-6)
        assert cohort.logo_retention[0] <= 1
