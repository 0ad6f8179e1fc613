"""Accounts pinned to API versions of 2014 to 2019: each older shape gets its status, amounts,
period and plan from the fields it carries, ranks and terminates like the current one, and never
a status it did not have; amounts that are not whole numbers are refused, not stored as 0."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from api.db.engine import Database
from api.events.log import events
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.projections.projector import charges, disputes, invoices, refunds, subscriptions
from api.stripe_objects.fields import invoice_row, subscription_row
from tests.factories import make_event
from tests.tricky import OLD_VERSION, T0, old_charge, old_dispute, old_invoice, old_shapes, old_subscription


async def deliver(processor: EventProcessor, *evts: dict[str, Any]) -> None:
    for event in evts:
        await processor.ingest(parse_event(json.dumps(event)))


async def one(db: Database, table: Any) -> dict[str, Any]:
    async with db.read() as conn:
        (row,) = (await conn.execute(select(table))).mappings().all()
    return dict(row)


def old(kind: str, obj: dict[str, Any], at: int, **extra: Any) -> dict[str, Any]:
    return make_event(kind, obj, created=at, api_version=OLD_VERSION, **extra)


def test_a_subscription_without_items_reads_its_plan_quantity_and_start() -> None:
    row = subscription_row(old_subscription("sub_o", "cus_o"), "customer.subscription.created")
    assert (row["price_id"], row["unit_amount"], row["currency"], row["interval"], row["quantity"]) == (
        "gold",
        2000,
        "usd",
        "month",
        3,
    )
    assert row["created"] is not None
    assert int(row["created"].timestamp()) == T0
    assert int(row["current_period_end"].timestamp()) == T0 + 2_592_000


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, "active"),
        ({"ended_at": T0 + 5, "canceled_at": T0 + 5}, "canceled"),
        ({"trial_start": T0, "trial_end": T0 + 2_592_000}, "trialing"),
    ],
)
def test_a_missing_subscription_status_is_read_from_its_dates_never_incomplete(
    fields: dict[str, Any], status: str
) -> None:
    sub = old_subscription("sub_o", "cus_o", **fields)
    del sub["status"]
    assert subscription_row(sub, "customer.subscription.updated")["status"] == status


@pytest.mark.parametrize(
    ("paid", "fields", "status", "amount_paid", "remaining"),
    [
        (True, {}, "paid", 6000, 0),
        (False, {}, "open", 0, 6000),
        (False, {"forgiven": True, "closed": True}, "uncollectible", 0, 6000),
    ],
)
def test_an_invoice_without_status_reads_paid_and_forgiven(
    paid: bool, fields: dict[str, Any], status: str, amount_paid: int, remaining: int
) -> None:
    row = invoice_row(old_invoice("in_o", "cus_o", "sub_o", paid=paid, charge="ch_o", **fields), "invoice.updated")
    assert (row["status"], row["amount_paid"], row["amount_remaining"]) == (status, amount_paid, remaining)
    assert int(row["created"].timestamp()) == T0 + 60  # from ``date``


async def test_an_old_account_projects_like_a_current_one(processor: EventProcessor, db: Database) -> None:
    await deliver(processor, *reversed(old_shapes()))
    async with db.read() as conn:
        subs = {r["stripe_subscription_id"]: r for r in (await conn.execute(select(subscriptions))).mappings()}
        invs = {r["stripe_invoice_id"]: r for r in (await conn.execute(select(invoices))).mappings()}
        statuses = set((await conn.execute(select(events.c.status))).scalars())
    assert statuses == {"processed"}
    assert subs["sub_tk_old"]["price_id"] == "gold"
    assert subs["sub_tk_old"]["quantity"] == 3
    assert subs["sub_tk_old_nostatus"]["status"] == "active"
    assert (invs["in_tk_old"]["status"], invs["in_tk_old"]["failure_code"]) == ("paid", "card_declined")
    assert invs["in_tk_old_draft"]["status"] == "deleted"
    refund = await one(db, refunds)
    assert (refund["stripe_refund_id"], refund["stripe_charge_id"], refund["stripe_customer_id"]) == (
        "re_tk_old",
        "ch_tk_old2",
        "cus_tk_old",
    )
    dispute = await one(db, disputes)
    assert (dispute["stripe_dispute_id"], dispute["status"], dispute["user_id"]) == (
        "ch_tk_old2:dispute",
        "lost",
        "user_tk_old",
    )


async def test_a_deleted_draft_stays_deleted(processor: EventProcessor, db: Database) -> None:
    draft = old_invoice("in_d", "cus_o", "sub_o", paid=False, charge=None)
    await deliver(processor, old("invoice.deleted", draft, T0 + 600), old("invoice.updated", draft, T0 + 700))
    assert (await one(db, invoices))["status"] == "deleted"


@pytest.mark.parametrize("closed", ["prevented", "charge_refunded"])
async def test_closed_dispute_statuses_are_terminal(processor: EventProcessor, db: Database, closed: str) -> None:
    dispute = old_dispute("ch_p", closed)
    dispute["id"] = "dp_p"
    later = dict(dispute, status="needs_response")
    await deliver(
        processor, old("charge.dispute.closed", dispute, T0 + 10), old("charge.dispute.updated", later, T0 + 20)
    )
    assert (await one(db, disputes))["status"] == closed


@pytest.mark.parametrize(
    ("obj", "field", "value"),
    [
        (old_invoice("in_x", "cus_x", "sub_x", paid=False, charge=None), "amount_due", "60.00"),
        (old_charge("ch_x", "cus_x", "in_x", paid=True), "amount", 60.5),
        (old_subscription("sub_x", "cus_x"), "quantity", "3"),
    ],
)
async def test_amounts_that_are_not_whole_numbers_are_refused(
    processor: EventProcessor, db: Database, obj: dict[str, Any], field: str, value: Any
) -> None:
    kind = {"invoice": "invoice.updated", "charge": "charge.succeeded", "subscription": "customer.subscription.updated"}
    good = old(kind[obj["object"]], obj, T0 + 10)
    bad = old(kind[obj["object"]], {**obj, field: value}, T0 + 20, event_id="evt_bad")
    await deliver(processor, good, bad)
    async with db.read() as conn:
        row = (
            await conn.execute(select(events.c.status, events.c.last_error).where(events.c.event_id == "evt_bad"))
        ).one()
        stored = {
            table.name: (await conn.execute(select(table))).mappings().all()
            for table in (invoices, charges, subscriptions)
        }
    assert row.status == "failed"
    assert f"`{field}` must be a whole number" in row.last_error
    assert json.dumps(value) in row.last_error
    (kept,) = next(rows for rows in stored.values() if rows)
    assert kept["last_event_id"] == good["id"]  # the good snapshot stays, nothing stored as 0
