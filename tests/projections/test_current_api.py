"""Accounts on current API versions (2025-03-31 and later): an invoice names its payments only in
``invoice.payments`` and in ``invoice_payment.*`` events, and a newer snapshot that leaves them
out keeps the link; decline reasons still reach the invoice and ``GET /api/subscription``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from api.app import create_app
from api.db.engine import Database
from api.db.models import invoice_payments, payment_history, subscription_events
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.factories import invoice, make_event, resource, subscription
from tests.tricky import a_charge

CURRENT = "2025-03-31.basil"


def _payment(payment_id: str, invoice_id: str, intent: str, status: str) -> dict[str, Any]:
    payment = resource("invoice_payment")
    payment.update(
        id=payment_id,
        invoice=invoice_id,
        status=status,
        amount_requested=2900,
        amount_paid=2900 if status == "paid" else None,
        currency="usd",
        payment={"type": "payment_intent", "payment_intent": intent},
    )
    return payment


def _without_payments(inv: dict[str, Any]) -> dict[str, Any]:
    """An invoice as current API versions send it by default: no ``payments``, no ``payment_intent``."""
    inv = dict(inv)
    inv.pop("payments", None)
    inv.pop("payment_intent", None)
    return inv


async def _ingest(settings: Settings, events: list[dict[str, Any]], *, together: bool = False) -> Database:
    db = Database(settings)
    processor = EventProcessor(db, settings)
    parsed = [parse_event(json.dumps(e)) for e in events]
    if together:
        await processor.ingest_many(parsed)
    else:
        for event in parsed:
            await processor.ingest(event)
    return db


async def _wipe(settings: Settings) -> None:
    db = Database(settings)
    try:
        async with db.write() as conn:
            for table in (payment_history, invoice_payments, subscription_events):
                await conn.execute(table.delete())
    finally:
        await db.dispose()


async def _delivered(settings: Settings, order: list[dict[str, Any]]) -> tuple[Any, list[Any], set[str]]:
    """A fresh log fed ``order`` one at a time: the invoice row, the payment links, the statuses."""
    await _wipe(settings)
    db = await _ingest(settings, order)
    try:
        async with db.read() as conn:
            (row,) = (await conn.execute(select(payment_history))).mappings().all()
            links = list((await conn.execute(select(invoice_payments))).mappings().all())
            statuses = set((await conn.execute(select(subscription_events.c.status))).scalars())
    finally:
        await db.dispose()
    return row, links, statuses


def _failing_history() -> list[dict[str, Any]]:
    """A renewal fails: the invoice named its payment intent once (expanded payments), the newer
    snapshots leave the field out, and the charge says why it failed."""
    sub = subscription("sub_cur", "cus_cur", user="user_cur", status="past_due")
    first = invoice("in_cur", "cus_cur", sub_id="sub_cur", attempt_count=1, payment_intent="pi_cur")
    newer = _without_payments(invoice("in_cur", "cus_cur", sub_id="sub_cur", attempt_count=2))
    return [
        make_event("customer.subscription.updated", sub, created=1_760_000_000, api_version=CURRENT),
        make_event("invoice.payment_failed", first, created=1_760_000_010, api_version=CURRENT),
        make_event(
            "charge.failed",
            a_charge("ch_cur", "cus_cur", "failed", "pi_cur", "insufficient_funds"),
            created=1_760_000_010,
            api_version=CURRENT,
        ),
        make_event(
            "invoice.updated",
            newer,
            created=1_760_000_500,
            api_version=CURRENT,
            previous={"attempt_count": 1},
        ),
    ]


async def test_a_newer_snapshot_without_payments_keeps_the_link_in_any_order(settings: Settings) -> None:
    history = _failing_history()
    for order in (history, list(reversed(history)), [history[3], history[2], history[0], history[1]]):
        row, links, _ = await _delivered(settings, order)
        assert [link["payment_intent_id"] for link in links] == ["pi_cur"]
        assert (row["attempt_count"], row["failure_code"]) == (2, "insufficient_funds")


async def test_decline_reason_reaches_get_subscription(settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, auth_dev_mode=True, var_dir=tmp_path / "var")
    db = await _ingest(settings, list(reversed(_failing_history())), together=True)
    await db.dispose()
    async with AsyncTestClient(create_app(settings)) as client:
        token = mint_dev_token(settings, "user_cur", [])
        response = await client.get("/api/subscription", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    payment = response.json()["payment"]
    assert (payment["invoice_id"], payment["failure_code"], payment["attempt_count"]) == (
        "in_cur",
        "insufficient_funds",
        2,
    )
    assert payment["failure_message"] == "Declined: insufficient_funds"


async def test_invoice_payment_events_link_an_invoice_that_never_names_its_payment(settings: Settings) -> None:
    """The link arrives only in ``invoice_payment.paid``; the failed first attempt's reason shows."""
    bare = _without_payments(invoice("in_ip", "cus_ip", sub_id="sub_ip", attempt_count=1))
    paid = _without_payments(invoice("in_ip", "cus_ip", sub_id="sub_ip", status="paid", attempt_count=2))
    events = [
        make_event("invoice.payment_failed", bare, created=1_760_000_010, api_version=CURRENT),
        make_event(
            "charge.failed",
            a_charge("ch_ip1", "cus_ip", "failed", "pi_ip", "expired_card"),
            created=1_760_000_010,
            api_version=CURRENT,
        ),
        make_event("charge.succeeded", a_charge("ch_ip2", "cus_ip", "succeeded", "pi_ip"), created=1_760_000_900),
        make_event("invoice.paid", paid, created=1_760_000_900, api_version=CURRENT),
        make_event(
            "invoice_payment.paid",
            _payment("inpay_ip", "in_ip", "pi_ip", "paid"),
            created=1_760_000_900,
            api_version=CURRENT,
        ),
    ]
    for order in (events, list(reversed(events))):
        row, (link,), statuses = await _delivered(settings, order)
        assert (link["stripe_invoice_payment_id"], link["status"], link["amount_paid"]) == ("inpay_ip", "paid", 2900)
        assert (row["status"], row["failure_code"]) == ("paid", "expired_card")
        assert set(statuses) == {"processed"}
