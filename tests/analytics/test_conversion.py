"""Conversion KPIs: trial -> paid against the simulator's own subscriptions and invoices;
checkout conversion against its sessions."""

from __future__ import annotations

from analytics.conversion import TRIAL_WINDOW_DAYS, conversion
from tests.analytics.simulation import simulate_account

DAY = 86_400


def test_conversion_matches_the_simulators_state() -> None:
    account = simulate_account(300, 12, 2)
    sim, truth, events = account.sim, account.truth, account.events
    ours = {c.month: c for c in conversion(account.facts, account.report.months)}
    sessions = {e["data"]["object"]["id"]: e for e in events if e["type"].startswith("checkout.session.")}
    converted_somewhere = False
    for month in truth["months"]:
        trials = [
            s
            for s in sim.subscriptions.values()
            if s.get("trial_end") and month["start"] <= s["trial_end"] < month["end"]
        ]
        converted = [
            s
            for s in trials
            if any(
                inv["subscription"] == s["id"]
                and inv["amount_due"] > 0
                and inv.get("paid_at") is not None
                and inv["paid_at"] <= s["trial_end"] + TRIAL_WINDOW_DAYS * DAY
                for inv in sim.invoices.values()
            )
        ]
        got = ours[month["month"]]
        assert (got.trials_ended, got.trials_converted) == (len(trials), len(converted)), month["month"]
        converted_somewhere = converted_somewhere or bool(converted)
        in_month = [e for e in sessions.values() if month["start"] <= e["data"]["object"]["created"] < month["end"]]
        assert got.checkout_sessions == len(in_month)
        assert got.checkouts_completed == sum(1 for e in in_month if e["type"] == "checkout.session.completed")
    assert converted_somewhere
    assert 0 < (ours[truth["months"][6]["month"]].checkout_conversion_rate or 0) < 1, "some checkouts are abandoned"
