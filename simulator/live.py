"""The simulator as a live Stripe double, one action at a time (demo mode).

Each action starts from the objects as they now are (their latest snapshots, read back from the
event log by the caller), runs the same simulator code that generates the demo history, and
returns the events Stripe would send for it. Ids come from a random generator seeded by the
action's key, so repeating an action with the same key yields the same events, which the event
log stores once.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any, Literal

from simulator.clock import DAY, add_months
from simulator.engine import SimConfig, Simulation, _Customer
from simulator.objects import CURRENT, LEGACY, Builder
from simulator.truth import subscription_mrr

__all__ = ["LiveAction", "subscription_state"]

Obj = dict[str, Any]


def _coupon(sub: Obj) -> tuple[Obj | None, str | None]:
    discounts = [d for d in sub.get("discounts") or [] if isinstance(d, dict)]
    discount = discounts[0] if discounts else sub.get("discount")
    if not isinstance(discount, dict):
        return None, None
    source = discount.get("source") if isinstance(discount.get("source"), dict) else {}
    coupon = (source or {}).get("coupon") or discount.get("coupon")
    return (coupon if isinstance(coupon, dict) else None), discount.get("id")


def subscription_state(sub: Obj) -> tuple[Obj, str]:
    """The simulator's state of a subscription from a Stripe snapshot of it (either API shape), and
    the API version its events are written in."""
    item = sub["items"]["data"][0]
    current = "current_period_start" in item
    coupon, discount_id = _coupon(sub)
    state = {
        "id": sub["id"],
        "item_id": item["id"],
        "customer": sub["customer"],
        "user_id": (sub.get("metadata") or {}).get("user_id"),
        "status": sub["status"],
        "price": item["price"],
        "quantity": item.get("quantity") or 1,
        "created": sub["created"],
        "anchor": sub.get("billing_cycle_anchor") or sub["created"],
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "cancel_at": sub.get("cancel_at"),
        "canceled_at": sub.get("canceled_at"),
        "ended_at": sub.get("ended_at"),
        "period_start": item["current_period_start"] if current else sub["current_period_start"],
        "period_end": item["current_period_end"] if current else sub["current_period_end"],
        "trial_start": sub.get("trial_start"),
        "trial_end": sub.get("trial_end"),
        "coupon": coupon,
        "discount_id": discount_id,
        "latest_invoice": sub.get("latest_invoice"),
        "past_due_since": None,
    }
    return state, CURRENT if current else LEGACY


class _LiveSimulation(Simulation):
    def settle(self, now: int, customer: _Customer) -> None:
        """Live actions keep no MRR ground truth (and a custom catalogue's yearly price need not be
        a whole number of cents a month)."""


class LiveAction:
    """One action on the simulated Stripe account at ``now``, keyed by ``key``."""

    def __init__(self, key: str, now: int) -> None:
        self.now = now
        self.sim = _LiveSimulation(SimConfig(customers=0, months=1, start=datetime.fromtimestamp(now, tz=UTC)))
        self.sim.rng = random.Random(key)

    @property
    def events(self) -> list[Obj]:
        return self.sim.events

    def _customer(self, customer: Obj, api_version: str) -> _Customer:
        currency = customer.get("currency") or "usd"
        simulated = _Customer(
            id=customer["id"],
            user_id=(customer.get("metadata") or {}).get("user_id") or "",
            currency=currency,
            api_version=api_version,
            email=customer.get("email") or "",
            name=customer.get("name") or "",
        )
        self.sim.customers[simulated.id] = simulated
        return simulated

    def _with_subscription(self, customer: Obj, subscription: Obj) -> _Customer:
        state, api_version = subscription_state(subscription)
        simulated = self._customer(customer, api_version)
        simulated.user_id = simulated.user_id or state["user_id"] or ""
        state["user_id"] = state["user_id"] or simulated.user_id
        simulated.sub = state
        self.sim.subscriptions[state["id"]] = state
        simulated.mrr = subscription_mrr(state, self.now)
        simulated.ever_paid = True
        return simulated

    def complete_checkout(
        self,
        session: Obj,
        *,
        price: Obj,
        customer: Obj | None,
        user_id: str,
        email: str,
        trial_days: int | None,
    ) -> None:
        """A paid (or trial) Checkout Session: the customer (when new), the session, the
        subscription, its first invoice and payment."""
        sim, now = self.sim, self.now
        if customer is None:
            customer = sim.builder.customer(
                sim.new_id("cus_"), user_id, email, email.split("@")[0], price["currency"], now
            )
            sim.emit(now, "customer.created", customer, CURRENT)
        simulated = self._customer(customer, CURRENT)
        simulated.user_id = user_id
        interval_months = 12 if price["recurring"]["interval"] == "year" else 1
        trial_end = now + trial_days * DAY if trial_days else None
        sub: Obj = {
            "id": sim.new_id("sub_"),
            "item_id": sim.new_id("si_"),
            "customer": simulated.id,
            "user_id": user_id,
            "status": "trialing" if trial_end else "incomplete",
            "price": price,
            "quantity": 1,
            "created": now,
            "anchor": now,
            "cancel_at_period_end": False,
            "period_start": now,
            "period_end": trial_end or add_months(now, interval_months),
            "trial_start": now if trial_end else None,
            "trial_end": trial_end,
            "coupon": None,
            "discount_id": None,
            "latest_invoice": None,
            "past_due_since": None,
        }
        simulated.sub = sub
        sim.subscriptions[sub["id"]] = sub
        completed = {**session, "status": "complete", "payment_status": "paid", "url": None}
        completed.update(customer=simulated.id, subscription=sub["id"])
        sim.emit(now, "checkout.session.completed", completed, CURRENT)
        sim.emit_sub(now, simulated, "customer.subscription.created")
        amount = 0 if trial_end else sim.amount(sub)
        invoice = sim.invoice(now, simulated, amount=amount, reason="subscription_create", period=(now, now))
        sim.pay(now, simulated, invoice, succeeded=True, next_attempt=None)
        if not trial_end:
            sim.set_status(now, simulated, "active")

    def cancel(
        self,
        customer: Obj,
        subscription: Obj,
        *,
        at_period_end: bool,
        feedback: str | None = None,
        comment: str | None = None,
    ) -> None:
        simulated = self._with_subscription(customer, subscription)
        sub = simulated.sub
        assert sub is not None
        sub.update(cancellation_feedback=feedback, cancellation_comment=comment)
        if at_period_end:
            previous = self.sim.sub_previous(
                simulated, cancel_at_period_end=False, cancel_at=sub["cancel_at"], canceled_at=sub["canceled_at"]
            )
            sub.update(cancel_at_period_end=True, cancel_at=sub["period_end"], canceled_at=self.now)
            self.sim.emit_sub(self.now, simulated, "customer.subscription.updated", previous)
        else:
            sub["canceled_at"] = self.now
            self.sim.end_subscription(self.now, simulated, reason="cancellation_requested")

    def resume(self, customer: Obj, subscription: Obj) -> None:
        simulated = self._with_subscription(customer, subscription)
        sub = simulated.sub
        assert sub is not None
        previous = self.sim.sub_previous(
            simulated, cancel_at_period_end=True, cancel_at=sub["cancel_at"], canceled_at=sub["canceled_at"]
        )
        sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
        self.sim.emit_sub(self.now, simulated, "customer.subscription.updated", previous)

    def change_price(
        self,
        customer: Obj,
        subscription: Obj,
        price: Obj,
        proration: Literal["create_prorations", "always_invoice", "none"],
    ) -> None:
        """Switch the subscription to ``price``. ``always_invoice`` charges an upgrade's prorated
        difference now; otherwise prorations wait for the next invoice (or are not made)."""
        simulated = self._with_subscription(customer, subscription)
        if proration == "always_invoice":
            self.sim.change_price(self.now, simulated, price)
            return
        sub = simulated.sub
        assert sub is not None
        previous = self.sim.sub_previous(simulated, price=sub["price"])
        sub["price"] = price
        self.sim.emit_sub(self.now, simulated, "customer.subscription.updated", previous)

    @staticmethod
    def price(price_id: str, product_id: str, currency: str, unit_amount: int, interval: str) -> Obj:
        return Builder.price(price_id, product_id, currency, unit_amount, interval)
