"""What events do to the projection tables: both API shapes, user links in any order, payments,
refunds, disputes and escalations."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from api.db.engine import Database
from api.events.log import events
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.projections.projector import charges, customers, disputes, invoices, refunds, subscriptions
from tests.factories import invoice, make_event, resource, subscription


async def deliver(processor: EventProcessor, *evts: dict[str, Any]) -> None:
    for event in evts:
        await processor.ingest(parse_event(json.dumps(event)))


async def rows(db: Database, table: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(table).order_by(table.c.id))).mappings()]


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "updated_at", "last_event_id")}


async def test_current_and_legacy_shapes_give_the_same_row(processor: EventProcessor, db: Database) -> None:
    await deliver(
        processor,
        make_event("customer.subscription.created", subscription("sub_new"), created=100),
        make_event(
            "customer.subscription.created",
            subscription("sub_old", legacy=True),
            created=100,
            api_version="2024-06-20",
        ),
    )
    new, old = await rows(db, subscriptions)
    assert new["current_period_start"] is not None
    assert comparable(new) | {"stripe_subscription_id": "x"} == comparable(old) | {"stripe_subscription_id": "x"}
    assert (new["status"], new["price_id"], new["unit_amount"], new["interval"], new["quantity"]) == (
        "active",
        "price_pro",
        2900,
        "month",
        1,
    )


async def test_plan_only_items_are_read(processor: EventProcessor, db: Database) -> None:
    sub = subscription("sub_plan")
    item = sub["items"]["data"][0]
    item.pop("price")
    item["plan"].update(id="plan_legacy", amount=1500, interval="year", currency="eur")
    await deliver(processor, make_event("customer.subscription.created", sub))
    (row,) = await rows(db, subscriptions)
    assert (row["price_id"], row["unit_amount"], row["interval"], row["currency"]) == (
        "plan_legacy",
        1500,
        "year",
        "eur",
    )


async def test_invoice_subscription_from_either_shape(processor: EventProcessor, db: Database) -> None:
    await deliver(
        processor,
        make_event("invoice.finalized", invoice("in_new", sub_id="sub_X")),
        make_event("invoice.finalized", invoice("in_old", sub_id="sub_Y", legacy=True)),
    )
    found = {
        r["stripe_invoice_id"]: (r["stripe_subscription_id"], r["payment_intent_id"]) for r in await rows(db, invoices)
    }
    assert found == {"in_new": ("sub_X", "pi_A"), "in_old": ("sub_Y", "pi_A")}


async def test_user_found_whichever_event_comes_first(processor: EventProcessor, db: Database) -> None:
    session = resource("checkout.session")
    session.update(
        id="cs_1",
        customer="cus_L",
        client_reference_id="user_late",
        metadata={},
        subscription="sub_L",
        mode="subscription",
        status="complete",
    )
    # The subscription and its invoice arrive before anything names the user.
    await deliver(
        processor,
        make_event("customer.subscription.created", subscription("sub_L", "cus_L", user=None), created=10),
        make_event("invoice.paid", invoice("in_L", "cus_L", sub_id="sub_L", status="paid"), created=10),
    )
    assert [r["user_id"] for r in await rows(db, subscriptions)] == [None]
    await deliver(processor, make_event("checkout.session.completed", session, created=9))
    assert [r["user_id"] for r in await rows(db, subscriptions)] == ["user_late"]
    assert [r["user_id"] for r in await rows(db, invoices)] == ["user_late"]
    (customer,) = await rows(db, customers)
    assert (customer["stripe_customer_id"], customer["user_id"]) == ("cus_L", "user_late")


async def test_customer_metadata_is_authoritative(processor: EventProcessor, db: Database) -> None:
    customer = resource("customer")
    customer.update(id="cus_M", metadata={"user_id": "user_real"}, email="a@example.com", discount=None)
    await deliver(
        processor,
        make_event("customer.subscription.created", subscription("sub_M", "cus_M", user="user_claimed")),
        make_event("customer.created", customer),
    )
    assert [r["user_id"] for r in await rows(db, subscriptions)] == ["user_real"]
    (row,) = await rows(db, customers)
    assert (row["user_id"], row["email"], row["deleted"]) == ("user_real", "a@example.com", False)


async def test_deleted_customer_is_not_undeleted_by_a_late_update(processor: EventProcessor, db: Database) -> None:
    customer = resource("customer")
    customer.update(id="cus_D", metadata={}, discount=None)
    await deliver(
        processor,
        make_event("customer.deleted", customer, created=50),
        make_event("customer.updated", customer, created=40),
    )
    (row,) = await rows(db, customers)
    assert row["deleted"] is True


async def test_deleted_subscription_is_not_resurrected(processor: EventProcessor, db: Database) -> None:
    await deliver(
        processor,
        make_event("customer.subscription.deleted", subscription(status="canceled"), created=200),
        make_event("customer.subscription.updated", subscription(status="active"), created=300),
    )
    (row,) = await rows(db, subscriptions)
    assert row["status"] == "canceled"


async def test_two_updates_in_one_second_keep_the_newest(processor: EventProcessor, db: Database) -> None:
    """Stripe's own sync engine loses the second of two same-second updates; we keep it."""
    first = make_event(
        "customer.subscription.updated",
        subscription(quantity=2),
        created=500,
        event_id="evt_z1",
        previous={"items": {"data": [{"quantity": 1}]}},
    )
    second = make_event(
        "customer.subscription.updated",
        subscription(quantity=5),
        created=500,
        event_id="evt_a2",
        previous={"items": first["data"]["object"]["items"]},
    )
    await deliver(processor, second, first)
    (row,) = await rows(db, subscriptions)
    assert row["quantity"] == 5
    assert row["last_event_id"] == "evt_a2"


async def test_failed_payments_are_tracked_and_escalated(processor: EventProcessor, db: Database) -> None:
    charge = resource("charge")
    charge.update(
        id="ch_F",
        customer="cus_A",
        payment_intent="pi_A",
        status="failed",
        failure_code="card_declined",
        failure_message="Your card was declined.",
        amount=2900,
        currency="usd",
        refunds=None,
    )
    attempts = [
        make_event(
            "invoice.payment_failed",
            invoice(attempt_count=n, next_attempt=1000 + n),
            created=100 * n,
            previous={"attempt_count": n - 1},
        )
        for n in (1, 2, 3)
    ]
    unpaid = make_event(
        "customer.subscription.updated",
        subscription(status="unpaid"),
        created=400,
        previous={"status": "past_due"},
    )
    await deliver(
        processor,
        attempts[2],
        charge_event := make_event("charge.failed", charge, created=300),
        attempts[0],
        attempts[1],
        unpaid,
        attempts[2],
        charge_event,
    )
    (row,) = await rows(db, invoices)
    assert (row["attempt_count"], row["status"], row["failure_code"]) == (3, "open", "card_declined")
    assert row["next_payment_attempt"] is not None
    async with db.read() as conn:
        escalations = list(
            await conn.execute(select(events.c.event_id, events.c.payload).where(events.c.source == "service"))
        )
    reasons = sorted(json.loads(e.payload)["data"]["object"]["reason"] for e in escalations)
    assert reasons == ["payment_attempts", "subscription_unpaid"]  # once each despite the redeliveries


async def test_refunds_and_disputes_land_with_their_customer(processor: EventProcessor, db: Database) -> None:
    dispute = resource("dispute")
    dispute.update(
        id="dp_1",
        charge="ch_R",
        amount=2900,
        currency="usd",
        status="needs_response",
        reason="fraudulent",
        metadata={},
    )
    charge = resource("charge")
    refund = resource("refund")
    refund.update(id="re_1", charge="ch_R", amount=1000, currency="usd", status="succeeded", customer=None)
    charge.update(
        id="ch_R",
        customer="cus_A",
        payment_intent="pi_R",
        status="succeeded",
        amount=2900,
        amount_refunded=1000,
        currency="usd",
        disputed=True,
    )
    charge["refunds"] = {"object": "list", "data": [refund], "has_more": False}
    closed = dict(dispute, status="lost")
    await deliver(
        processor,
        make_event("customer.subscription.created", subscription(), created=1),
        make_event("charge.dispute.closed", closed, created=90, previous={"status": "needs_response"}),
        make_event("charge.dispute.created", dispute, created=50),
        make_event("charge.refunded", charge, created=40),
    )
    (dispute_row,) = await rows(db, disputes)
    assert (dispute_row["status"], dispute_row["stripe_customer_id"], dispute_row["user_id"]) == (
        "lost",
        "cus_A",
        "user_a",
    )
    (refund_row,) = await rows(db, refunds)
    assert (refund_row["amount"], refund_row["stripe_customer_id"], refund_row["user_id"]) == (
        1000,
        "cus_A",
        "user_a",
    )
    (charge_row,) = await rows(db, charges)
    assert (charge_row["amount_refunded"], charge_row["disputed"]) == (1000, True)
