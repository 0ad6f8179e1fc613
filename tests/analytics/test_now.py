"""KPIs as of an instant: for the month that holds ``--as-of`` (or today) every figure is as of
that instant, not projected to the month's end; hand-computed scenarios mixing intervals,
currencies, trials, past-due and churned customers. A window (``--from``/``--to``) never changes a
figure."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from analytics.engine import Facts
from analytics.facts import facts_table
from analytics.output import kpi_document
from analytics.report import analyze
from api.events.model import parse_event
from tests.factories import make_event, subscription


def at(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def plan(sub_id: str, *, currency: str, amount: int, interval: str = "month", **fields: Any) -> dict[str, Any]:
    sub = subscription(sub_id, f"cus_{sub_id}", user=f"user_{sub_id}", amount=amount, **fields)
    sub["currency"] = currency
    item = sub["items"]["data"][0]
    item["price"].update(currency=currency)
    item["price"]["recurring"]["interval"] = interval
    item["plan"].update(currency=currency, interval=interval)
    return sub


def history() -> list[dict[str, Any]]:
    """As of 2026-03-15 23:59:59 UTC, by hand:

    - A, USD 29.00 a month, active since January: 2,900;  (every period runs past the instant, so
      none is stale)
    - B, EUR 1,200.00 a year since June 2025: 100.00 a month, 10,000;
    - C, USD 50.00, past due since 2026-02-20: inside the 30-day grace today (it runs out on
      2026-03-22, later this month): 5,000;
    - D, USD trialing: 0; E, USD 80.00 since February, canceled on 2026-03-10: 0;
    - F, USD 15.00, set to cancel at its period's end (2026-03-25): still paying today, 1,500;
    - G, GBP 10.00 a week since 2026-03-09: 10.00 x 52 / 12 = 43.33, 4,333.

    MRR: USD 2,900 + 5,000 + 1,500 = 9,400; EUR 10,000; GBP 4,333. Paying customers: USD 3, EUR 1,
    GBP 1. At the month's end C has run out of grace: USD would be 4,400."""

    def p(start: str, end: str) -> tuple[int, int]:
        return at(start), at(end)

    evts = [
        (
            "2026-01-01",
            "customer.subscription.created",
            plan("A", currency="usd", amount=2900, period=p("2026-03-01", "2026-04-01")),
        ),
        (
            "2025-06-01",
            "customer.subscription.created",
            plan("B", currency="eur", amount=120000, interval="year", period=p("2025-06-01", "2026-06-01")),
        ),
        (
            "2026-01-20",
            "customer.subscription.created",
            plan("C", currency="usd", amount=5000, period=p("2026-02-20", "2026-03-20")),
        ),
        (
            "2026-02-20",
            "customer.subscription.updated",
            plan("C", currency="usd", amount=5000, status="past_due", period=p("2026-02-20", "2026-03-20")),
        ),
        (
            "2026-03-01",
            "customer.subscription.created",
            plan("D", currency="usd", amount=9900, status="trialing", period=p("2026-03-01", "2026-03-31")),
        ),
        (
            "2026-02-10",
            "customer.subscription.created",
            plan("E", currency="usd", amount=8000, period=p("2026-02-10", "2026-03-10")),
        ),
        ("2026-03-10", "customer.subscription.deleted", plan("E", currency="usd", amount=8000, status="canceled")),
        (
            "2026-02-25",
            "customer.subscription.created",
            plan("F", currency="usd", amount=1500, period=p("2026-02-25", "2026-03-25")),
        ),
        (
            "2026-03-05",
            "customer.subscription.updated",
            plan(
                "F",
                currency="usd",
                amount=1500,
                cancel_at_period_end=True,
                cancel_at=at("2026-03-25"),
                period=p("2026-02-25", "2026-03-25"),
            ),
        ),
        ("2026-03-25", "customer.subscription.deleted", plan("F", currency="usd", amount=1500, status="canceled")),
        (
            "2026-03-09",
            "customer.subscription.created",
            plan("G", currency="gbp", amount=1000, interval="week", period=p("2026-03-09", "2026-03-16")),
        ),
    ]
    return [make_event(kind, obj, created=at(day)) for day, kind, obj in evts]


def facts(cutoff: int | None = None) -> Facts:
    return Facts(facts_table(parse_event(json.dumps(e)) for e in history()), cutoff)


AS_OF = at("2026-03-16")  # --as-of 2026-03-15: the log as it stood at the end of that day


def test_the_month_holding_as_of_is_as_of_that_instant() -> None:
    march = analyze(facts(AS_OF), last=date(2026, 3, 1)).months[-1]
    assert march.month == "2026-03"
    assert march.month_to_date is True
    assert march.mrr == {"eur": 10_000, "gbp": 4_333, "usd": 9_400}
    assert march.paying_customers == {"eur": 1, "gbp": 1, "usd": 3}
    assert march.mrr_movements["usd"]["churn"] == 8_000  # E; C is not churned yet


def test_a_finished_month_is_as_of_its_end() -> None:
    report = analyze(facts(), last=date(2026, 3, 1))
    march = report.months[-1]
    assert march.month_to_date is False
    assert march.mrr["usd"] == 2_900  # C's grace ran out on 2026-03-22, F ended on 2026-03-25
    assert report.months[-2].mrr["usd"] == 2_900 + 5_000 + 1_500 + 8_000


def test_the_document_says_month_to_date() -> None:
    _, document = kpi_document(facts(AS_OF), as_of="2026-03-15")
    assert document["months"][-1]["month_to_date"] is True
    assert document["months"][-1]["mrr"]["usd"] == 9_400
    assert all(not m["month_to_date"] for m in document["months"][:-1])


def test_a_window_never_changes_a_figure() -> None:
    """``--from`` (and ``--to``) select months; every figure of a month is the full run's (NRR and
    LTV need the year and the six months before, which the window leaves out)."""
    from simulator.engine import SimConfig, simulate

    events, _ = simulate(SimConfig(customers=80, months=18, seed=4))
    parsed = [parse_event(json.dumps(e)) for e in events]
    _, full = kpi_document(Facts(facts_table(parsed)))
    by_month = {m["month"]: m for m in full["months"]}
    _, windowed = kpi_document(Facts(facts_table(parsed)), date(2026, 4, 1), date(2026, 5, 1))
    assert [m["month"] for m in windowed["months"]] == ["2026-04", "2026-05"]
    for month in windowed["months"]:
        assert month == by_month[month["month"]]
    april = by_month["2026-04"]
    assert any(v is not None for v in april["nrr"].values())
    assert any(v is not None for v in april["ltv"].values())
