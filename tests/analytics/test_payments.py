"""Payment KPIs against the simulator's own invoice state (not its events) for failures and
recovery; disputes, charges and refunds against the events by type and date."""

from __future__ import annotations

from collections import defaultdict

from analytics.payments import MIN_PAYMENT_VOLUME, RECOVERY_DAYS, payments
from tests.analytics.simulation import simulate_account

DAY = 86_400


def test_payment_kpis_match_the_simulators_state() -> None:
    account = simulate_account(400, 12, 8)
    sim, truth, events = account.sim, account.truth, account.events
    ours = {p.month: p for p in payments(account.facts, account.report.months)}

    reported = 0
    for month in truth["months"]:
        attempts: dict[str, int] = defaultdict(int)
        failures: dict[str, int] = defaultdict(int)
        failed_amount: dict[str, int] = defaultdict(int)
        recovered: dict[str, int] = defaultdict(int)
        for inv in sim.invoices.values():
            sub = sim.subscriptions[inv["subscription"]]
            after_trial = sub.get("trial_end") is not None and inv["period_start"] == sub["trial_end"]
            if inv["billing_reason"] != "subscription_cycle" or inv["amount_due"] <= 0 or after_trial:
                continue
            if not month["start"] <= inv["created"] < month["end"]:
                continue
            currency = inv["currency"]
            attempts[currency] += 1
            first_failed = inv["attempt_count"] > 1 or inv["status"] != "paid"
            if first_failed:
                failures[currency] += 1
                failed_amount[currency] += inv["amount_due"]
                if inv.get("paid_at") is not None and inv["paid_at"] <= inv["created"] + RECOVERY_DAYS * DAY:
                    recovered[currency] += inv["amount_due"]
        got = ours[month["month"]]
        for currency, count in attempts.items():
            assert got.renewal_attempts[currency] == count, (month["month"], currency)
            assert got.failed_amount[currency] == failed_amount[currency]
            assert got.recovered_amount[currency] == recovered[currency]
            if count >= MIN_PAYMENT_VOLUME:
                reported += 1
                assert got.payment_failure_rate[currency] == round(failures[currency] / count, 6)
            else:
                assert got.payment_failure_rate[currency] is None
        charges = sum(
            1 for e in events if e["type"] == "charge.succeeded" and month["start"] <= e["created"] < month["end"]
        )
        disputes = sum(
            1 for e in events if e["type"] == "charge.dispute.created" and month["start"] <= e["created"] < month["end"]
        )
        assert (got.successful_charges, got.disputes_created) == (charges, disputes)
    assert reported > 0, "some months have enough volume for a rate"
    assert any(p.recovered_amount for p in ours.values()), "dunning recovers some failures"
    assert sum(sum(p.refunds.values()) for p in ours.values()) > 0
