"""Stale state is not revenue: a subscription still ``active`` whose period ended longer ago than
the stale grace, with no renewal seen, is listed as stale and stops counting; a renewal that comes
within the grace changes nothing, and one that comes later brings the MRR back."""

from __future__ import annotations

import json
from datetime import date

from analytics.engine import Facts
from analytics.facts import facts_table
from analytics.output import kpi_document
from analytics.report import analyze
from api.events.model import parse_event
from tests.analytics.test_now import at, plan
from tests.factories import make_event

FEB = (at("2026-01-10"), at("2026-02-10"))


def events(renewed_on: str | None) -> list[dict[str, object]]:
    """S (USD 40.00 a month, period ending 2026-02-10) and T (USD 10.00, renewed on time)."""
    evts = [
        make_event("customer.subscription.created", plan("S", currency="usd", amount=4000, period=FEB), created=FEB[0]),
        make_event("customer.subscription.created", plan("T", currency="usd", amount=1000, period=FEB), created=FEB[0]),
        make_event(
            "customer.subscription.updated",
            plan("T", currency="usd", amount=1000, period=(FEB[1], at("2026-03-10"))),
            created=FEB[1],
        ),
    ]
    if renewed_on:
        renewal = plan("S", currency="usd", amount=4000, period=(FEB[1], at("2026-03-10")))
        evts.append(make_event("customer.subscription.updated", renewal, created=at(renewed_on)))
    return evts


def facts(renewed_on: str | None, cutoff: int | None = None, grace: int = 3) -> Facts:
    return Facts(facts_table(parse_event(json.dumps(e)) for e in events(renewed_on)), cutoff, stale_grace_days=grace)


def test_within_the_grace_it_counts_after_it_is_stale_and_listed() -> None:
    # As of 2026-02-12: two days past S's period end, inside the 3-day grace.
    _, early = kpi_document(facts(None, at("2026-02-13")), as_of="2026-02-12")
    assert early["months"][-1]["mrr"] == {"usd": 5_000}
    assert early["stale_subscriptions"] == []
    # As of 2026-02-20: ten days past, stale: listed, and out of MRR since 2026-02-13.
    _, late = kpi_document(facts(None, at("2026-02-21")), as_of="2026-02-20")
    assert late["months"][-1]["mrr"] == {"usd": 1_000}
    (stale,) = late["stale_subscriptions"]
    assert (stale["subscription_id"], stale["days_since_period_end"], stale["mrr"], stale["status"]) == (
        "S",
        10,
        4_000,
        "active",
    )
    assert late["months"][-1]["mrr_movements"]["usd"]["churn"] == 4_000
    assert late["stale_grace_days"] == 3


def test_a_renewal_within_the_grace_does_not_flicker() -> None:
    (february,) = analyze(facts("2026-02-12"), date(2026, 2, 1), date(2026, 2, 1)).months
    assert february.mrr == {"usd": 5_000}
    assert february.mrr_movements["usd"] == dict.fromkeys(february.mrr_movements["usd"], 0)


def test_a_late_renewal_brings_the_mrr_back() -> None:
    (february,) = analyze(facts("2026-02-20"), date(2026, 2, 1), date(2026, 2, 1)).months
    assert february.mrr == {"usd": 5_000}
    moves = february.mrr_movements["usd"]
    assert (moves["churn"], moves["reactivation"]) == (4_000, 4_000)


def test_the_grace_is_a_setting() -> None:
    _, document = kpi_document(facts(None, at("2026-02-21"), grace=15), as_of="2026-02-20")
    assert document["stale_subscriptions"] == []
    assert document["months"][-1]["mrr"] == {"usd": 5_000}
