"""Stripe-shaped objects and events, copied from Stripe's own fixtures (``stripe_fixtures.json``,
a subset of stripe/openapi's ``fixtures3.json``) with every value the service reads set
consistently. Two API shapes: ``CURRENT`` (period on subscription items, an invoice's subscription
under ``parent``) and ``LEGACY`` (period on the subscription, ``invoice.subscription``)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["CURRENT", "LEGACY", "Builder"]

CURRENT = "2025-03-31.basil"
LEGACY = "2024-06-20"

Obj = dict[str, Any]

_FIXTURES = Path(__file__).with_name("stripe_fixtures.json")


@cache
def _encoded_templates() -> dict[str, bytes]:
    resources: dict[str, Obj] = msgspec.json.decode(_FIXTURES.read_bytes())["resources"]
    # Kept encoded: decoding a fresh copy is several times faster than copy.deepcopy.
    return {name: msgspec.json.encode(value) for name, value in resources.items()}


def template(name: str) -> Obj:
    """A fresh deep copy of Stripe's example of resource ``name``."""
    value: Obj = msgspec.json.decode(_encoded_templates()[name])
    return value


def _pricing(billed: Obj) -> Obj:
    """A line's or invoice item's ``pricing`` (current API shape) for what ``billed`` names."""
    return {
        "type": "price_details",
        "unit_amount_decimal": str(billed["unit_amount"]),
        "price_details": {"price": billed["price_id"], "product": billed["product_id"]},
    }


def _proration_text(proration: Obj) -> str:
    """Stripe's description of a proration: the credit for unused time, or the time remaining."""
    kind = "Unused" if proration["amount"] < 0 else "Remaining"
    return f"{kind} time on {proration['quantity']} x {proration['price_id']}"


class Builder:
    """Builds the objects of one simulated account."""

    def __init__(self, new_id: Any) -> None:
        self.new_id = new_id  # callable(prefix) -> deterministic id

    # -- catalogue -------------------------------------------------------------------------------
    @staticmethod
    def price(price_id: str, product_id: str, currency: str, unit_amount: int, interval: str) -> Obj:
        price = template("price")
        price.update(
            id=price_id,
            product=product_id,
            currency=currency,
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
            billing_scheme="per_unit",
            tiers_mode=None,
            transform_quantity=None,
            lookup_key=price_id,
            nickname=None,
            created=1_700_000_000,
            livemode=False,
            type="recurring",
        )
        price["recurring"].update(interval=interval, interval_count=1, usage_type="licensed", meter=None)
        return price

    @staticmethod
    def plan(price: Obj) -> Obj:
        """The legacy ``plan`` mirror of a price, as Stripe still sends on subscription items."""
        plan = template("plan")
        plan.update(
            id=price["id"],
            product=price["product"],
            currency=price["currency"],
            amount=price["unit_amount"],
            amount_decimal=str(price["unit_amount"]),
            billing_scheme="per_unit",
            tiers_mode=None,
            interval=price["recurring"]["interval"],
            interval_count=1,
            usage_type="licensed",
            transform_usage=None,
            created=price["created"],
            livemode=False,
            metadata={},
            meter=None,
        )
        return plan

    @staticmethod
    def coupon(coupon_id: str, percent_off: int) -> Obj:
        coupon = template("coupon")
        coupon.update(
            id=coupon_id,
            percent_off=percent_off,
            amount_off=None,
            currency=None,
            duration="forever",
            duration_in_months=None,
            name=f"{percent_off}% off",
            valid=True,
            created=1_700_000_000,
            max_redemptions=None,
            redeem_by=None,
            times_redeemed=0,
            metadata={},
        )
        return coupon

    # -- customers and checkout ------------------------------------------------------------------
    def customer(self, customer_id: str, user_id: str, email: str, name: str, currency: str, created: int) -> Obj:
        customer = template("customer")
        customer.update(
            id=customer_id,
            email=email,
            name=name,
            currency=currency,
            created=created,
            delinquent=False,
            discount=None,
            metadata={"user_id": user_id},
            balance=0,
            livemode=False,
            test_clock=None,
            invoice_prefix=customer_id[-8:].upper(),
        )
        return customer

    def checkout_session(
        self,
        session_id: str,
        *,
        user_id: str,
        customer_id: str | None,
        subscription_id: str | None,
        price_id: str,
        currency: str,
        amount: int,
        created: int,
        status: str,
    ) -> Obj:
        session = template("checkout.session")
        session.update(
            id=session_id,
            mode="subscription",
            client_reference_id=user_id,
            metadata={"user_id": user_id},
            customer=customer_id,
            subscription=subscription_id,
            currency=currency,
            amount_subtotal=amount,
            amount_total=amount,
            created=created,
            expires_at=created + 86_400,
            status=status,
            payment_status="paid" if status == "complete" else "unpaid",
            payment_intent=None,
            invoice=None,
            url=None if status != "open" else f"https://checkout.stripe.com/c/pay/{session_id}",
            customer_creation="always",
            livemode=False,
            shipping_cost=None,
            total_details=None,
        )
        session["customer_details"]["email"] = f"{user_id}@example.com"
        return session

    # -- subscriptions ---------------------------------------------------------------------------
    def subscription(self, state: Obj, api_version: str) -> Obj:
        """A subscription snapshot from the simulator's state of it."""
        sub = template("subscription")
        price = state["price"]
        item = template("subscription_item")
        item.update(
            id=state["item_id"],
            price=copy.deepcopy(price),
            plan=self.plan(price),
            quantity=state["quantity"],
            subscription=state["id"],
            created=state["created"],
            metadata={},
            discounts=[],
            tax_rates=[],
            billing_thresholds=None,
        )
        discounts = []
        if state.get("coupon"):
            discount = template("discount")
            discount.update(
                id=state["discount_id"],
                customer=state["customer"],
                subscription=state["id"],
                start=state["created"],
                end=None,
                invoice=None,
                invoice_item=None,
                checkout_session=None,
                promotion_code=None,
                subscription_item=None,
            )
            discount["source"] = {"coupon": copy.deepcopy(state["coupon"]), "type": "coupon"}
            discounts.append(discount)
        sub.update(
            id=state["id"],
            customer=state["customer"],
            status=state["status"],
            currency=price["currency"],
            created=state["created"],
            start_date=state["created"],
            billing_cycle_anchor=state["anchor"],
            billing_cycle_anchor_config=None,
            cancel_at_period_end=state["cancel_at_period_end"],
            cancel_at=state.get("cancel_at"),
            canceled_at=state.get("canceled_at"),
            ended_at=state.get("ended_at"),
            trial_start=state.get("trial_start"),
            trial_end=state.get("trial_end"),
            latest_invoice=state.get("latest_invoice"),
            metadata={"user_id": state["user_id"]},
            livemode=False,
            pause_collection=None,
            pending_update=None,
            schedule=None,
            test_clock=None,
            next_pending_invoice_item_invoice=None,
            description=None,
            discounts=discounts,
        )
        sub["cancellation_details"] = {
            "comment": state.get("cancellation_comment"),
            "feedback": state.get("cancellation_feedback"),
            "reason": state.get("cancellation_reason"),
        }
        sub["items"].update(
            data=[item],
            has_more=False,
            total_count=1,
            url=f"/v1/subscription_items?subscription={state['id']}",
        )
        if api_version == CURRENT:
            item["current_period_start"] = state["period_start"]
            item["current_period_end"] = state["period_end"]
        else:  # legacy shape: the period and a single discount live on the subscription
            item.pop("current_period_start", None)
            item.pop("current_period_end", None)
            sub["current_period_start"] = state["period_start"]
            sub["current_period_end"] = state["period_end"]
            sub["discount"] = discounts[0] if discounts else None
            sub["discounts"] = [d["id"] for d in discounts]
            sub["quantity"] = state["quantity"]
        return sub

    # -- invoices and payments -------------------------------------------------------------------
    def invoice(self, inv: Obj, api_version: str) -> Obj:
        invoice = template("invoice")
        line = invoice["lines"]["data"][0]
        line.update(
            id=inv["line_id"],
            invoice=inv["id"],
            amount=inv["amount_due"],
            currency=inv["currency"],
            description=inv["description"],
            quantity=inv["quantity"],
            subscription=inv["subscription"],
            period={"start": inv["period_start"], "end": inv["period_end"]},
            discount_amounts=[],
            discounts=[],
            subtotal=inv["amount_due"],
            pretax_credit_amounts=[],
            taxes=[],
            metadata={},
        )
        line["parent"] = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": inv["billing_reason"] == "subscription_update",
                "proration_details": {"credited_items": None},
                "subscription": inv["subscription"],
                "subscription_item": inv["item_id"],
            },
        }
        line["pricing"] = _pricing(inv)
        paid = inv["status"] == "paid"
        invoice.update(
            id=inv["id"],
            customer=inv["customer"],
            currency=inv["currency"],
            status=inv["status"],
            amount_due=inv["amount_due"],
            amount_paid=inv["amount_due"] if paid else 0,
            amount_remaining=0 if paid else inv["amount_due"],
            subtotal=inv["amount_due"],
            subtotal_excluding_tax=inv["amount_due"],
            total=inv["amount_due"],
            total_excluding_tax=inv["amount_due"],
            billing_reason=inv["billing_reason"],
            attempt_count=inv["attempt_count"],
            attempted=inv["attempt_count"] > 0,
            auto_advance=not paid and inv["status"] == "open",
            next_payment_attempt=inv.get("next_payment_attempt"),
            created=inv["created"],
            effective_at=inv["finalized_at"],
            period_start=inv["period_start"],
            period_end=inv["period_end"],
            hosted_invoice_url=None if inv["status"] == "draft" else f"https://invoice.stripe.com/i/{inv['id']}",
            invoice_pdf=None,
            number=inv["number"],
            last_finalization_error=None,
            livemode=False,
            metadata={},
            due_date=None,
            from_invoice=None,
            latest_revision=None,
            test_clock=None,
            automatically_finalizes_at=None,
            webhooks_delivered_at=inv["created"],
            customer_email=inv["email"],
            discounts=[],
            total_discount_amounts=[],
            total_taxes=[],
            total_pretax_credit_amounts=[],
            starting_balance=0,
            ending_balance=0 if inv["status"] != "draft" else None,
            amount_overpaid=0,
            amount_shipping=0,
            shipping_cost=None,
            shipping_details=None,
            receipt_number=None,
        )
        invoice["status_transitions"] = {
            "finalized_at": inv["finalized_at"],
            "marked_uncollectible_at": inv.get("uncollectible_at"),
            "paid_at": inv.get("paid_at"),
            "voided_at": inv.get("voided_at"),
        }
        for proration in inv.get("prorations") or []:
            extra = copy.deepcopy(line)
            extra.update(
                id=proration["line_id"],
                amount=proration["amount"],
                subtotal=proration["amount"],
                quantity=proration["quantity"],
                description=_proration_text(proration),
                period={"start": proration["period"][0], "end": proration["period"][1]},
            )
            extra["parent"]["subscription_item_details"]["proration"] = True
            extra["pricing"] = _pricing(proration)
            invoice["lines"]["data"].insert(len(invoice["lines"]["data"]) - 1, extra)
        count = len(invoice["lines"]["data"])
        invoice["lines"].update(has_more=False, total_count=count, url=f"/v1/invoices/{inv['id']}/lines")
        payment = template("invoice_payment")
        payment.update(
            id=inv["invoice_payment_id"],
            invoice=inv["id"],
            amount_requested=inv["amount_due"],
            amount_paid=inv["amount_due"] if paid else None,
            currency=inv["currency"],
            created=inv["created"],
            is_default=True,
            livemode=False,
            status="paid" if paid else "open",
            payment={"type": "payment_intent", "payment_intent": inv["payment_intent"]},
            status_transitions={"canceled_at": None, "paid_at": inv.get("paid_at")},
        )
        invoice["payments"] = {
            "object": "list",
            "data": [payment],
            "has_more": False,
            "url": f"/v1/invoice_payments?invoice={inv['id']}",
        }
        if api_version == CURRENT:
            invoice["parent"] = {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": {"user_id": inv["user_id"]},
                    "subscription": inv["subscription"],
                },
            }
            invoice.pop("subscription", None)
        else:
            invoice["parent"] = None
            invoice["subscription"] = inv["subscription"]
            invoice["payment_intent"] = inv["payment_intent"]
            invoice["charge"] = inv.get("charge")
        return invoice

    @staticmethod
    def invoice_item(item: Obj, invoice_id: str | None) -> Obj:
        """A proration as Stripe lists it in ``/v1/invoiceitems`` (current API shape; ``invoice``
        is None while it waits for the renewal that bills it)."""
        return {
            "id": item["line_id"].replace("il_", "ii_", 1),
            "object": "invoiceitem",
            "amount": item["amount"],
            "currency": item["currency"],
            "customer": item["customer"],
            "customer_account": None,
            "date": item["created"],
            "description": _proration_text(item),
            "discountable": False,
            "discounts": [],
            "invoice": invoice_id,
            "livemode": False,
            "metadata": {},
            "net_amount": item["amount"],
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": item["subscription"], "subscription_item": item["item_id"]},
            },
            "period": {"start": item["period"][0], "end": item["period"][1]},
            "pricing": _pricing(item),
            "proration": True,
            "proration_details": {"discount_amounts": []},
            "quantity": item["quantity"],
            "quantity_decimal": str(item["quantity"]),
            "tax_rates": [],
            "test_clock": None,
        }

    def charge(self, ch: Obj) -> Obj:
        charge = template("charge")
        succeeded = ch["status"] == "succeeded"
        charge.update(
            id=ch["id"],
            amount=ch["amount"],
            amount_captured=ch["amount"] if succeeded else 0,
            amount_refunded=ch["amount_refunded"],
            currency=ch["currency"],
            customer=ch["customer"],
            created=ch["created"],
            payment_intent=ch["payment_intent"],
            status=ch["status"],
            paid=succeeded,
            captured=succeeded,
            refunded=ch["amount_refunded"] >= ch["amount"] and ch["amount_refunded"] > 0,
            failure_code=ch.get("failure_code"),
            failure_message=ch.get("failure_message"),
            disputed=ch["disputed"],
            description=ch["description"],
            metadata={},
            livemode=False,
            receipt_url=None,
            balance_transaction=None if not succeeded else ch["balance_transaction"],
            failure_balance_transaction=None,
            transfer_data=None,
            source=None,
            review=None,
            application_fee_amount=None,
            calculated_statement_descriptor="FADDL",
        )
        charge["billing_details"]["name"] = ch["name"]
        charge["outcome"] = {
            "type": "authorized" if succeeded else "issuer_declined",
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else ch.get("failure_code"),
            "seller_message": None,
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
        }
        charge["refunds"] = {
            "object": "list",
            "data": [self.refund(r) for r in ch["refunds"]],
            "has_more": False,
            "url": f"/v1/charges/{ch['id']}/refunds",
        }
        return charge

    @staticmethod
    def refund(rf: Obj) -> Obj:
        refund = template("refund")
        refund.update(
            id=rf["id"],
            amount=rf["amount"],
            charge=rf["charge"],
            currency=rf["currency"],
            created=rf["created"],
            status="succeeded",
            reason=rf["reason"],
            payment_intent=rf["payment_intent"],
            metadata={},
            balance_transaction=None,
            customer=None,
        )
        return refund

    @staticmethod
    def dispute(dp: Obj) -> Obj:
        dispute = template("dispute")
        dispute.update(
            id=dp["id"],
            amount=dp["amount"],
            charge=dp["charge"],
            currency=dp["currency"],
            created=dp["created"],
            status=dp["status"],
            reason=dp["reason"],
            payment_intent=dp["payment_intent"],
            metadata={},
            is_charge_refundable=False,
            balance_transactions=[],
        )
        return dispute

    def event(
        self,
        event_id: str,
        event_type: str,
        created: int,
        obj: Obj,
        api_version: str,
        previous: Obj | None = None,
    ) -> Obj:
        event = template("event")
        data: Obj = {"object": obj}
        if previous:
            data["previous_attributes"] = previous
        event.update(
            id=event_id,
            type=event_type,
            created=created,
            api_version=api_version,
            data=data,
            livemode=False,
            pending_webhooks=1,
            request={"id": None, "idempotency_key": None},
        )
        return event
