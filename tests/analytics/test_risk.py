"""At-risk customers: each signal on its own, their sum, and customers who are not at risk."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from analytics.engine import Facts
from analytics.facts import facts_table
from analytics.risk import WEIGHTS, at_risk
from api.events.model import ParsedEvent, parse_event
from tests.factories import make_event, resource, subscription

NOW = 1_760_000_000
DAY = 86_400
PERIOD = (NOW - 10 * DAY, NOW + 20 * DAY)


def sub_event(
    sub_id: str, customer: str, *, at: int = NOW - 40 * DAY, previous: dict[str, Any] | None = None, **extra: Any
) -> ParsedEvent:
    kind = "customer.subscription.updated" if previous is not None else "customer.subscription.created"
    sub = subscription(
        sub_id,
        customer,
        user=f"user_{customer}",
        price="price_pro",
        amount=extra.pop("amount", 2900),
        period=PERIOD,
        **extra,
    )
    return parse_event(json.dumps(make_event(kind, sub, created=at, previous=previous)))


def charge_and_dispute(customer: str, at: int) -> list[ParsedEvent]:
    charge = resource("charge")
    charge.update(id=f"ch_{customer}", customer=customer, status="succeeded", amount=2900)
    dispute = resource("dispute")
    dispute.update(id=f"dp_{customer}", charge=f"ch_{customer}", status="needs_response", amount=2900)
    return [
        parse_event(json.dumps(make_event("charge.succeeded", charge, created=at - DAY))),
        parse_event(json.dumps(make_event("charge.dispute.created", dispute, created=at))),
    ]


def usage(user: str, period_start: int, quantity: int) -> ParsedEvent:
    start = datetime.fromtimestamp(period_start, tz=UTC)
    end = datetime.fromtimestamp(period_start + 30 * DAY, tz=UTC)
    body = {
        "id": f"faddl_usage_{user}_{period_start}_{quantity}",
        "object": "event",
        "type": "usage.recorded",
        "created": period_start + DAY,
        "data": {
            "object": {
                "user_id": user,
                "feature": "api_calls",
                "quantity": quantity,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            }
        },
    }
    return parse_event(json.dumps(body), source="service")


def scores(events: list[ParsedEvent]) -> dict[str, tuple[int, list[str]]]:
    return {r.customer_id: (r.score, r.reasons) for r in at_risk(Facts(facts_table(events)), as_of=NOW, threshold=1)}


def test_each_signal() -> None:
    events = [
        sub_event("sub_calm", "cus_calm"),
        sub_event("sub_cancel", "cus_cancel"),
        sub_event(
            "sub_cancel",
            "cus_cancel",
            at=NOW - DAY,
            cancel_at_period_end=True,
            previous={"cancel_at_period_end": False},
        ),
        sub_event("sub_dunning", "cus_dunning"),
        sub_event("sub_dunning", "cus_dunning", at=NOW - 2 * DAY, status="past_due", previous={"status": "active"}),
        sub_event("sub_dispute", "cus_dispute"),
        *charge_and_dispute("cus_dispute", NOW - 5 * DAY),
        sub_event("sub_down", "cus_down", amount=9900),
        sub_event("sub_down", "cus_down", at=NOW - 3 * DAY, amount=2900, previous={"items": {}}),
        sub_event("sub_usage", "cus_usage"),
        usage("user_cus_usage", NOW - 70 * DAY, 400),
        usage("user_cus_usage", NOW - 40 * DAY, 120),
    ]
    found = scores(events)
    assert "cus_calm" not in found
    assert found["cus_cancel"] == (WEIGHTS["cancel_at_period_end"], ["set to cancel at the end of the period"])
    assert found["cus_dunning"][0] == WEIGHTS["dunning"]
    assert found["cus_dispute"][0] == WEIGHTS["dispute"]
    assert found["cus_down"][0] == WEIGHTS["contraction"]
    assert found["cus_usage"] == (WEIGHTS["usage_drop"], ["api_calls usage fell from 400 to 120"])


def test_signals_add_up_and_old_ones_expire() -> None:
    events = [
        sub_event("sub_x", "cus_x"),
        sub_event(
            "sub_x", "cus_x", at=NOW - DAY, cancel_at_period_end=True, status="past_due", previous={"status": "active"}
        ),
        *charge_and_dispute("cus_x", NOW - 120 * DAY),  # too old to count
    ]
    found = at_risk(Facts(facts_table(events)), as_of=NOW)
    assert [(r.customer_id, r.score, r.mrr) for r in found] == [("cus_x", 75, 2900)]


def test_ended_and_non_paying_customers_are_not_at_risk() -> None:
    events = [
        sub_event("sub_gone", "cus_gone", cancel_at_period_end=True),
        sub_event("sub_gone", "cus_gone", at=NOW - DAY, status="canceled", previous={"status": "active"}),
        sub_event("sub_trial", "cus_trial", status="trialing", cancel_at_period_end=True),
    ]
    assert at_risk(Facts(facts_table(events)), as_of=NOW, threshold=1) == []
