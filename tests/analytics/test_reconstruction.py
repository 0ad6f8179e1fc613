"""History reconstruction (analytics.reconstruction): a subscription first seen in a sync gets the
states its own dates and invoices tell, before its first observed event, in current and older API
shapes."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from analytics.engine import Facts
from analytics.facts import SCALE, facts_table
from analytics.report import analyze
from api.events.model import ParsedEvent, snapshot
from api.sync.resources import RESOURCES

DAY = 86_400
T0 = 1_735_689_600  # 2025-01-01
SYNCED_AT = T0 + 200 * DAY
MONTHLY = {"interval": "month", "interval_count": 1}


def price(price_id: str, amount: int) -> dict[str, Any]:
    return {"id": price_id, "object": "price", "currency": "usd", "unit_amount": amount, "recurring": MONTHLY}


def subscription(status: str = "active", **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "created": T0,
        "start_date": T0,
        "currency": "usd",
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "object": "subscription_item",
                    "price": price("price_pro", 2900),
                    "quantity": 1,
                    "current_period_end": T0 + 250 * DAY,
                }
            ],
        },
        "discounts": [],
    }
    obj.update(fields)
    return obj


def invoice(
    number: int,
    created: int,
    reason: str,
    lines: list[tuple[str, int, int, int, bool, int]],
    *,
    paid_at: int | None = None,
    attempts: int = 1,
    uncollectible_at: int | None = None,
    legacy: bool = False,
) -> dict[str, Any]:
    """An invoice of sub_1; each line (price, quantity, period start, period end, proration, amount)."""
    data = []
    for price_id, quantity, start, end, proration, amount in lines:
        line: dict[str, Any] = {"object": "line_item", "quantity": quantity, "amount": amount}
        line["period"] = {"start": start, "end": end}
        if legacy:  # before 2025-03-31: the price embedded, proration and item on the line
            line.update(price={"id": price_id}, proration=proration, subscription_item="si_1")
        else:
            line["pricing"] = {"type": "price_details", "price_details": {"price": price_id}}
            line["parent"] = {"subscription_item_details": {"proration": proration, "subscription_item": "si_1"}}
        data.append(line)
    obj: dict[str, Any] = {
        "id": f"in_{number}",
        "object": "invoice",
        "customer": "cus_1",
        "currency": "usd",
        "created": created,
        "billing_reason": reason,
        "amount_due": sum(line[5] for line in lines),
        "attempt_count": attempts,
        "lines": {"object": "list", "data": data},
        "status_transitions": {"paid_at": paid_at, "marked_uncollectible_at": uncollectible_at},
    }
    if legacy:
        obj["subscription"] = "sub_1"
    else:
        obj["parent"] = {"subscription_details": {"subscription": "sub_1"}}
    return obj


def synced(obj: dict[str, Any], at: int = SYNCED_AT) -> ParsedEvent:
    event_type = next(r for r in RESOURCES if r.object_type == obj["object"]).event_type(obj)
    assert event_type is not None
    return snapshot(f"sync_{obj['id']}", event_type, at, obj, "stripe_sync")


def states(events: list[ParsedEvent]) -> list[tuple[int, str, int, bool]]:
    """(moment, status, MRR in cents, reconstructed) of each state of sub_1."""
    timeline = Facts(facts_table(events)).timelines().sort(["created", "pos"])
    return [
        (row["created"] - T0, row["status"], round(row["mrr"] / SCALE), row["reconstructed"])
        for row in timeline.iter_rows(named=True)
    ]


def test_renewals_a_failed_payment_and_an_invoiced_upgrade_date_each_state() -> None:
    events = [
        synced(price("price_basic", 900)),
        synced(price("price_pro", 2900)),
        synced(subscription()),
        synced(invoice(1, T0, "subscription_create", [("price_basic", 1, T0, T0 + 31 * DAY, False, 900)], paid_at=T0)),
        synced(
            invoice(
                2,
                T0 + 31 * DAY,
                "subscription_cycle",
                [("price_basic", 1, T0 + 31 * DAY, T0 + 59 * DAY, False, 900)],
                paid_at=T0 + 34 * DAY,
                attempts=2,
            )
        ),
        synced(
            invoice(
                3,
                T0 + 40 * DAY,
                "subscription_update",
                [
                    ("price_basic", 1, T0 + 40 * DAY, T0 + 59 * DAY, True, -600),
                    ("price_pro", 1, T0 + 40 * DAY, T0 + 59 * DAY, True, 1900),
                ],
                paid_at=T0 + 40 * DAY,
            )
        ),
        synced(
            invoice(
                4,
                T0 + 59 * DAY,
                "subscription_cycle",
                [("price_pro", 1, T0 + 59 * DAY, T0 + 90 * DAY, False, 2900)],
                paid_at=T0 + 59 * DAY,
            )
        ),
    ]
    assert states(events) == [
        (0, "incomplete", 900, True),
        (0, "active", 900, True),
        (31 * DAY, "past_due", 900, True),
        (34 * DAY, "active", 900, True),
        (40 * DAY, "active", 2900, True),
        (59 * DAY, "active", 2900, True),
        (SYNCED_AT - T0, "active", 2900, False),
    ]


def test_a_change_billed_as_a_proration_on_the_next_invoice_is_dated_at_the_line_in_older_shapes_too() -> None:
    change = T0 + 10 * DAY
    events = [
        synced(price("price_basic", 900)),
        synced(subscription()),
        synced(
            invoice(
                1,
                T0,
                "subscription_create",
                [("price_pro", 1, T0, T0 + 31 * DAY, False, 2900)],
                paid_at=T0,
                legacy=True,
            )
        ),
        synced(
            invoice(
                2,
                T0 + 31 * DAY,
                "subscription_cycle",
                [
                    ("price_pro", 1, change, T0 + 31 * DAY, True, -1900),
                    ("price_basic", 1, change, T0 + 31 * DAY, True, 600),
                    ("price_basic", 1, T0 + 31 * DAY, T0 + 59 * DAY, False, 900),
                ],
                paid_at=T0 + 31 * DAY,
                legacy=True,
            )
        ),
    ]
    moments = [(moment, mrr) for moment, status, mrr, _ in states(events) if status == "active"]
    assert (10 * DAY, 900) in moments
    assert moments[:2] == [(0, 2900), (10 * DAY, 900)]


def test_a_trial_an_unpaid_end_and_the_end_itself() -> None:
    trial_end = T0 + 14 * DAY
    ended = T0 + 40 * DAY
    sub = subscription(
        "canceled",
        trial_start=T0,
        trial_end=trial_end,
        ended_at=ended,
        canceled_at=ended,
        cancellation_details={"reason": "payment_failed"},
    )
    events = [
        synced(sub),
        synced(invoice(1, T0, "subscription_create", [("price_pro", 2, T0, T0, False, 0)], paid_at=T0)),
        synced(
            invoice(
                2,
                trial_end,
                "subscription_cycle",
                [("price_pro", 2, trial_end, trial_end + 31 * DAY, False, 5800)],
                attempts=4,
                uncollectible_at=T0 + 26 * DAY,
            )
        ),
    ]
    assert states(events) == [
        (0, "trialing", 5800, True),
        (14 * DAY, "past_due", 5800, True),
        (26 * DAY, "unpaid", 5800, True),
        (40 * DAY, "canceled", 5800, True),
    ]


def test_observed_events_win_over_reconstruction() -> None:
    observed = T0 + 20 * DAY
    webhook = snapshot("evt_1", "customer.subscription.updated", observed, subscription(), "stripe")
    events = [
        webhook,
        synced(subscription()),
        synced(invoice(1, T0, "subscription_create", [("price_pro", 1, T0, T0 + 31 * DAY, False, 2900)], paid_at=T0)),
        synced(
            invoice(
                2,
                T0 + 31 * DAY,
                "subscription_cycle",
                [("price_pro", 3, T0 + 31 * DAY, T0 + 59 * DAY, False, 8700)],
                paid_at=T0 + 31 * DAY,
            )
        ),
    ]
    found = states(events)
    assert all(moment < 20 * DAY for moment, _, _, reconstructed in found if reconstructed)
    assert not any(reconstructed for moment, _, _, reconstructed in found if moment >= 20 * DAY)


def test_months_resting_on_reconstruction_are_marked_and_without_invoices_the_current_items_count() -> None:
    events = [synced(subscription())]
    months = analyze(Facts(facts_table(events)), date(2025, 1, 1), date(2025, 8, 1)).months
    assert [m.month for m in months if m.reconstructed] == [f"2025-0{n}" for n in range(1, 8)]
    assert all(m.mrr == {"usd": 2900} for m in months)


def test_without_a_sync_nothing_is_reconstructed() -> None:
    webhook = snapshot("evt_1", "customer.subscription.updated", T0 + DAY, subscription(), "stripe")
    timeline = Facts(facts_table([webhook])).timelines()
    assert timeline.filter(pl.col("reconstructed")).is_empty()
