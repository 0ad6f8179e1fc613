"""Stripe-shaped test data: objects built from Stripe's own fixtures (``simulator/stripe_fixtures.json``,
from the stripe/openapi repository), events around them, and signed delivery to the webhook."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import stripe
from litestar.testing import AsyncTestClient

SECRET = "whsec_test_secret"
FIXTURES = json.loads((Path(__file__).parents[1] / "simulator" / "stripe_fixtures.json").read_text())["resources"]


def resource(name: str) -> dict[str, Any]:
    return copy.deepcopy(FIXTURES[name])


def make_event(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int = 1_750_000_000,
    previous: dict[str, Any] | None = None,
    api_version: str = "2025-03-31.basil",
) -> dict[str, Any]:
    event = resource("event")
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    event.update(
        id=event_id or f"evt_{uuid.uuid4().hex[:20]}",
        type=event_type,
        created=created,
        api_version=api_version,
        data=data,
        livemode=False,
    )
    return event


def subscription(
    sub_id: str = "sub_A",
    customer: str = "cus_A",
    *,
    status: str = "active",
    user: str | None = "user_a",
    price: str = "price_pro",
    amount: int = 2900,
    quantity: int = 1,
    period: tuple[int, int] = (1_750_000_000, 1_752_600_000),
    legacy: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A subscription snapshot from Stripe's example, with every value the service reads set."""
    sub = resource("subscription")
    item = sub["items"]["data"][0]
    item["price"].update(id=price, unit_amount=amount, currency="usd", product="prod_pro")
    item["price"]["recurring"].update(interval="month", interval_count=1)
    item["plan"].update(id=price, amount=amount, currency="usd", interval="month", interval_count=1, product="prod_pro")
    item.update(quantity=quantity, subscription=sub_id)
    sub.update(
        id=sub_id,
        customer=customer,
        status=status,
        metadata={"user_id": user} if user else {},
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        trial_start=None,
        trial_end=None,
        discounts=[],
        pause_collection=None,
        currency="usd",
    )
    if legacy:
        item.pop("current_period_start", None)
        item.pop("current_period_end", None)
        sub["current_period_start"], sub["current_period_end"] = period
    else:
        item["current_period_start"], item["current_period_end"] = period
    sub.update(extra)
    return sub


def invoice(
    invoice_id: str = "in_A",
    customer: str = "cus_A",
    *,
    sub_id: str = "sub_A",
    status: str = "open",
    attempt_count: int = 0,
    amount: int = 2900,
    legacy: bool = False,
    payment_intent: str | None = "pi_A",
    next_attempt: int | None = None,
) -> dict[str, Any]:
    inv = resource("invoice")
    inv.update(
        id=invoice_id,
        customer=customer,
        status=status,
        attempt_count=attempt_count,
        attempted=attempt_count > 0,
        amount_due=amount,
        amount_paid=amount if status == "paid" else 0,
        amount_remaining=0 if status == "paid" else amount,
        currency="usd",
        billing_reason="subscription_cycle",
        next_payment_attempt=next_attempt,
        metadata={},
        last_finalization_error=None,
    )
    if legacy:
        inv["parent"] = None
        inv["subscription"] = sub_id
        inv["payment_intent"] = payment_intent
    else:
        inv.pop("subscription", None)
        inv["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": sub_id},
        }
        payment = resource("invoice_payment")
        payment.update(
            id=f"inpay_{invoice_id}",
            invoice=invoice_id,
            payment={"type": "payment_intent", "payment_intent": payment_intent},
        )
        inv["payments"] = {"object": "list", "data": [payment] if payment_intent else [], "has_more": False}
    return inv


def sign(body: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp))


async def post_event(
    client: AsyncTestClient[Any],
    event: dict[str, Any] | str,
    *,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> Any:
    body = event if isinstance(event, str) else json.dumps(event)
    return await client.post(
        "/api/webhooks/stripe",
        content=body.encode(),
        headers={"Stripe-Signature": sign(body, secret), **(headers or {})},
    )
