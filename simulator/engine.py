"""A deterministic SaaS history, played as Stripe would report it.

N customers arrive over M months and live their billing lives: checkouts (some abandoned), trials,
monthly and yearly plans in three currencies, coupons, upgrades, downgrades and seat changes,
cancellations at period end (some taken back) and immediate ones, failed renewals retried by
dunning that recover or end ``unpaid``/canceled, returns after churn, refunds and disputes.

Alongside the events it keeps its own ground truth (``truth.json``, :mod:`simulator.truth`),
computed from its internal state, never from the events, per ``docs/kpis.md``: MRR per currency at
every month end and the MRR movements between them, per customer.
"""

from __future__ import annotations

import heapq
import itertools
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from simulator.clock import DAY, add_months
from simulator.objects import CURRENT, LEGACY, Builder
from simulator.truth import ground_truth, movement_kind, subscription_mrr

__all__ = ["PLANS", "SimConfig", "Simulation", "simulate"]

Obj = dict[str, Any]

# Monthly and yearly amounts per currency, in minor units. Yearly prices are multiples of 12 and
# coupons take 20%, so every subscription's MRR is a whole number of cents.
PLANS: dict[str, dict[str, dict[str, int]]] = {
    "starter": {
        "usd": {"month": 900, "year": 8640},
        "eur": {"month": 900, "year": 8640},
        "gbp": {"month": 700, "year": 6720},
    },
    "pro": {
        "usd": {"month": 2900, "year": 27840},
        "eur": {"month": 2900, "year": 27840},
        "gbp": {"month": 2300, "year": 22080},
    },
    "business": {
        "usd": {"month": 9900, "year": 95040},
        "eur": {"month": 9900, "year": 95040},
        "gbp": {"month": 7900, "year": 75840},
    },
}
TIERS = ("starter", "pro", "business")
COUPON_PERCENT = 20
DECLINES = (
    ("card_declined", "Your card was declined."),
    ("insufficient_funds", "Your card has insufficient funds."),
    ("expired_card", "Your card has expired."),
)
RETRY_GAPS = (3 * DAY, 2 * DAY, 2 * DAY)  # dunning: attempts 2, 3 and 4


@dataclass(frozen=True)
class SimConfig:
    customers: int = 100
    months: int = 12
    seed: int = 1
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    legacy_share: float = 0.3
    """Share of customers whose events come in the older API shape."""


@dataclass
class _Customer:
    id: str
    user_id: str
    currency: str
    api_version: str
    email: str
    name: str
    mrr: Fraction = Fraction(0)
    ever_paid: bool = False
    sub: Obj | None = None
    deleted: bool = False


@dataclass
class Simulation:
    config: SimConfig
    rng: random.Random = field(init=False)
    events: list[Obj] = field(default_factory=list)
    changes: list[tuple[int, str, str, str, int]] = field(default_factory=list)
    """(created, customer, currency, movement kind, delta in cents) per MRR change."""
    subscriptions: dict[str, Obj] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    invoice_items: list[Obj] = field(default_factory=list)
    """Every proration (an invoice item: pending until the renewal that bills it, ``invoice``)."""
    customers: dict[str, _Customer] = field(default_factory=dict)
    _queue: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.builder = Builder(self.new_id)
        self.start = int(self.config.start.timestamp())
        self.end = add_months(self.start, self.config.months)
        self.prices: dict[tuple[str, str, str], Obj] = {}
        for tier, currencies in PLANS.items():
            for currency, intervals in currencies.items():
                for interval, amount in intervals.items():
                    price_id = f"price_{tier}_{interval}ly_{currency}"
                    self.prices[(tier, currency, interval)] = Builder.price(
                        price_id, f"prod_{tier}", currency, amount, interval
                    )

    # -- plumbing --------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        alphabet = string.ascii_letters + string.digits
        return prefix + "".join(self.rng.choices(alphabet, k=24))

    def at(self, when: int, action: Callable[..., None], *args: Any) -> None:
        if when < self.end:
            heapq.heappush(self._queue, (when, next(self._seq), action, args))

    def emit(self, created: int, event_type: str, obj: Obj, api_version: str, previous: Obj | None = None) -> str:
        event_id = self.new_id("evt_")
        self.events.append(self.builder.event(event_id, event_type, created, obj, api_version, previous))
        return event_id

    def run(self) -> Simulation:
        for index in range(self.config.customers):
            arrival = self.start + int(self.rng.random() * (self.end - self.start - DAY))
            self.at(arrival, self.arrive, index)
        for _ in range(self.config.customers // 3):  # visitors who never finish a checkout
            self.at(self.start + int(self.rng.random() * (self.end - self.start - 2 * DAY)), self.abandon, None)
        while self._queue:
            when, _, action, args = heapq.heappop(self._queue)
            action(when, *args)
        return self

    # -- MRR truth -------------------------------------------------------------------------------
    def settle(self, now: int, customer: _Customer) -> None:
        """Record the customer's MRR movement, if any, after a state change at ``now``."""
        new = subscription_mrr(customer.sub, now) if customer.sub else Fraction(0)
        old = customer.mrr
        if new == old:
            return
        kind = movement_kind(old, new, ever_paid=customer.ever_paid)
        if new.denominator != 1 or old.denominator != 1:
            raise AssertionError("simulated MRR must be whole cents")
        self.changes.append((now, customer.id, customer.currency, kind, int(abs(new - old))))
        customer.mrr = new
        customer.ever_paid = customer.ever_paid or new > 0

    # -- objects ---------------------------------------------------------------------------------
    def emit_sub(self, now: int, customer: _Customer, event_type: str, previous: Obj | None = None) -> None:
        assert customer.sub is not None
        obj = self.builder.subscription(customer.sub, customer.api_version)
        if previous is not None and "items" in previous:
            previous = dict(previous)
            old_state = {**customer.sub, **previous.pop("items")}
            previous["items"] = self.builder.subscription(old_state, customer.api_version)["items"]
        self.emit(now, event_type, obj, customer.api_version, previous)
        self.settle(now, customer)

    def set_status(self, now: int, customer: _Customer, status: str) -> None:
        """Move the subscription to ``status`` and report it as Stripe does."""
        assert customer.sub is not None
        previous = self.sub_previous(customer, status=customer.sub["status"])
        customer.sub["status"] = status
        self.emit_sub(now, customer, "customer.subscription.updated", previous)

    def sub_previous(self, customer: _Customer, **changed: Any) -> Obj:
        """``previous_attributes`` for a change of the named state fields, in the API's shape."""
        sub = customer.sub
        assert sub is not None
        previous: Obj = {}
        item_fields: Obj = {}
        for name, old in changed.items():
            if name in ("price", "quantity"):
                item_fields[name] = old
            elif name in ("period_start", "period_end"):
                if customer.api_version == CURRENT:
                    item_fields[name] = old
                else:
                    previous["current_" + name] = old
            else:
                previous[name] = old
        if item_fields:
            previous["items"] = item_fields
        return previous

    def prorate(self, now: int, sub: Obj, old_price: Obj, old_quantity: int) -> None:
        """A change not invoiced at once, as Stripe's default ``create_prorations`` bills it: a
        credit for the unused time on the old items and a charge for the time left on the new ones,
        both dated from the change, added to the next renewal's invoice (a credit larger than the
        invoice leaves it at 0; the customer balance it would feed is not simulated)."""
        left = Fraction(sub["period_end"] - now, max(1, sub["period_end"] - sub["period_start"]))
        new_amount = self.amount(sub)
        old_amount = self.amount({**sub, "price": old_price, "quantity": old_quantity})
        pending = sub.setdefault("prorations", [])
        changes = ((old_price, old_quantity, -old_amount), (sub["price"], sub["quantity"], new_amount))
        for price, quantity, amount in changes:
            pending.append(
                {
                    # Not drawn from the random stream: a seed's history stays what it was.
                    "line_id": f"il_{sub['item_id'][3:15]}{now}{len(pending)}",
                    "price_id": price["id"],
                    "product_id": price["product"],
                    "unit_amount": price["unit_amount"],
                    "quantity": quantity,
                    "amount": int(amount * left),
                    "period": (now, sub["period_end"]),
                    "created": now,
                    "customer": sub["customer"],
                    "currency": price["currency"],
                    "subscription": sub["id"],
                    "item_id": sub["item_id"],
                    "invoice": None,
                }
            )
            self.invoice_items.append(pending[-1])

    def invoice(
        self,
        now: int,
        customer: _Customer,
        *,
        amount: int,
        reason: str,
        period: tuple[int, int],
        prorations: list[Obj] | None = None,
    ) -> Obj:
        sub = customer.sub
        assert sub is not None
        inv = {
            "id": self.new_id("in_"),
            "line_id": self.new_id("il_"),
            "invoice_payment_id": self.new_id("inpay_"),
            "payment_intent": self.new_id("pi_") if amount > 0 else None,
            "customer": customer.id,
            "user_id": customer.user_id,
            "email": customer.email,
            "currency": customer.currency,
            "status": "draft",
            "amount_due": amount,
            "billing_reason": reason,
            "attempt_count": 0,
            "created": now,
            "finalized_at": None,
            "period_start": period[0],
            "period_end": period[1],
            "subscription": sub["id"],
            "item_id": sub["item_id"],
            "quantity": sub["quantity"],
            "unit_amount": sub["price"]["unit_amount"],
            "price_id": sub["price"]["id"],
            "product_id": sub["price"]["product"],
            "description": f"{sub['quantity']} x {sub['price']['id']}",
            "number": f"{customer.id[-6:].upper()}-{next(self._numbers):04d}",
            "prorations": prorations or [],
            "charge": None,
        }
        self.invoices[inv["id"]] = inv
        sub["latest_invoice"] = inv["id"]
        self.emit(now, "invoice.created", self.builder.invoice(inv, customer.api_version), customer.api_version)
        inv["status"], inv["finalized_at"] = "open", now
        self.emit(now, "invoice.finalized", self.builder.invoice(inv, customer.api_version), customer.api_version)
        return inv

    def charge(self, now: int, customer: _Customer, inv: Obj, *, succeeded: bool) -> None:
        decline = None if succeeded else self.rng.choice(DECLINES)
        ch = {
            "id": self.new_id("ch_"),
            "amount": inv["amount_due"],
            "amount_refunded": 0,
            "currency": inv["currency"],
            "customer": customer.id,
            "created": now,
            "payment_intent": inv["payment_intent"],
            "status": "succeeded" if succeeded else "failed",
            "failure_code": decline[0] if decline else None,
            "failure_message": decline[1] if decline else None,
            "disputed": False,
            "description": f"Invoice {inv['number']}",
            "name": customer.name,
            "balance_transaction": self.new_id("txn_"),
            "refunds": [],
        }
        inv["charge"] = ch["id"]
        event_type = "charge.succeeded" if succeeded else "charge.failed"
        self.emit(now, event_type, self.builder.charge(ch), customer.api_version)
        if succeeded and self.rng.random() < 0.03:
            self.at(now + self.rng.randint(1, 10) * DAY + self.rng.randint(0, DAY), self.refund, customer, ch)
        if succeeded and self.rng.random() < 0.008:
            self.at(now + self.rng.randint(5, 30) * DAY, self.dispute, customer, ch)

    def pay(self, now: int, customer: _Customer, inv: Obj, *, succeeded: bool, next_attempt: int | None) -> None:
        """One payment attempt on an open invoice."""
        inv["attempt_count"] += 1
        if inv["amount_due"] > 0:
            self.charge(now, customer, inv, succeeded=succeeded)
        if succeeded:
            inv["status"], inv["paid_at"], inv["next_payment_attempt"] = "paid", now, None
            obj = self.builder.invoice(inv, customer.api_version)
            self.emit(now, "invoice.paid", obj, customer.api_version)
            self.emit(now, "invoice.payment_succeeded", obj, customer.api_version)
        else:
            previous = {
                "attempt_count": inv["attempt_count"] - 1,
                "attempted": inv["attempt_count"] > 1,
                "next_payment_attempt": inv.get("next_payment_attempt"),
            }
            inv["next_payment_attempt"] = next_attempt
            obj = self.builder.invoice(inv, customer.api_version)
            self.emit(now, "invoice.payment_failed", obj, customer.api_version, previous)

    # -- customer lives --------------------------------------------------------------------------
    def abandon(self, now: int, customer: _Customer | None) -> None:
        user = customer.user_id if customer else f"visitor_{self.new_id('')[:10]}"
        tier = self.rng.choice(TIERS)
        currency = customer.currency if customer else "usd"
        price = self.prices[(tier, currency, "month")]
        session = self.builder.checkout_session(
            self.new_id("cs_test_"),
            user_id=user,
            customer_id=customer.id if customer else None,
            subscription_id=None,
            price_id=price["id"],
            currency=currency,
            amount=price["unit_amount"],
            created=now,
            status="expired",
        )
        api_version = customer.api_version if customer else CURRENT

        def expire(when: int) -> None:
            self.emit(when, "checkout.session.expired", session, api_version)

        self.at(now + DAY, expire)

    def arrive(self, now: int, index: int) -> None:
        rng = self.rng
        currency = rng.choices(("usd", "eur", "gbp"), weights=(60, 25, 15))[0]
        api_version = LEGACY if rng.random() < self.config.legacy_share else CURRENT
        customer = _Customer(
            id=self.new_id("cus_"),
            user_id=f"user_{index:06d}",
            currency=currency,
            api_version=api_version,
            email=f"user_{index:06d}@example.com",
            name=f"Customer {index}",
        )
        self.customers[customer.id] = customer
        if rng.random() < 0.3 and now - 2 * DAY > self.start:
            self.abandon(now - 2 * DAY, customer)
        self.emit(
            now,
            "customer.created",
            self.builder.customer(customer.id, customer.user_id, customer.email, customer.name, currency, now),
            api_version,
        )
        self.start_subscription(now, customer, True)
        if rng.random() < 0.05:
            self.at(now + rng.randint(5, 200) * DAY, self.update_customer, customer)

    def start_subscription(self, now: int, customer: _Customer, first: bool) -> None:
        rng = self.rng
        tier = rng.choices(TIERS, weights=(50, 35, 15))[0]
        interval = "year" if rng.random() < 0.2 else "month"
        price = self.prices[(tier, customer.currency, interval)]
        trial = first and rng.random() < 0.3
        quantity = rng.randint(1, 12) if tier == "business" else 1
        sub: Obj = {
            "id": self.new_id("sub_"),
            "item_id": self.new_id("si_"),
            "customer": customer.id,
            "user_id": customer.user_id,
            "status": "trialing" if trial else "incomplete",
            "price": price,
            "quantity": quantity,
            "created": now,
            "anchor": now,
            "cancel_at_period_end": False,
            "period_start": now,
            "period_end": now + 14 * DAY if trial else add_months(now, 12 if interval == "year" else 1),
            "trial_start": now if trial else None,
            "trial_end": now + 14 * DAY if trial else None,
            "coupon": None,
            "discount_id": None,
            "latest_invoice": None,
            "past_due_since": None,
        }
        if rng.random() < 0.1:
            sub["coupon"] = Builder.coupon("LAUNCH20", COUPON_PERCENT)
            sub["discount_id"] = self.new_id("di_")
        customer.sub = sub
        self.subscriptions[sub["id"]] = sub
        session = self.builder.checkout_session(
            self.new_id("cs_test_"),
            user_id=customer.user_id,
            customer_id=customer.id,
            subscription_id=sub["id"],
            price_id=price["id"],
            currency=customer.currency,
            amount=0 if trial else self.amount(sub),
            created=now - rng.randint(30, 600),
            status="complete",
        )
        self.emit(now, "checkout.session.completed", session, customer.api_version)
        self.emit_sub(now, customer, "customer.subscription.created")
        inv = self.invoice(
            now,
            customer,
            amount=0 if trial else self.amount(sub),
            reason="subscription_create",
            period=(now, now),
        )
        if trial:
            self.pay(now, customer, inv, succeeded=True, next_attempt=None)
            self.at(sub["trial_end"] - 3 * DAY, self.trial_will_end, customer, sub)
            self.at(sub["period_end"], self.renew, customer, sub)
        elif rng.random() < 0.95:
            self.pay(now, customer, inv, succeeded=True, next_attempt=None)
            self.set_status(now, customer, "active")
            self.at(sub["period_end"], self.renew, customer, sub)
        else:
            self.pay(now, customer, inv, succeeded=False, next_attempt=None)
            self.at(now + 23 * 3600, self.expire_incomplete, customer, sub, inv)
        self.at(now + rng.randint(10, 40) * DAY, self.life_event, customer, sub)

    def amount(self, sub: Obj) -> int:
        amount = Fraction(sub["price"]["unit_amount"] * sub["quantity"])
        if sub.get("coupon"):
            amount *= Fraction(100 - COUPON_PERCENT, 100)
        return int(amount)

    def expire_incomplete(self, now: int, customer: _Customer, sub: Obj, inv: Obj) -> None:
        previous = self.sub_previous(customer, status=sub["status"])
        sub.update(status="incomplete_expired", ended_at=now)
        self.emit_sub(now, customer, "customer.subscription.deleted", previous)
        inv["status"], inv["voided_at"] = "void", now
        self.emit(now, "invoice.voided", self.builder.invoice(inv, customer.api_version), customer.api_version)
        customer.sub = None
        if self.rng.random() < 0.3:
            self.at(now + self.rng.randint(1, 20) * DAY, self.start_subscription, customer, False)

    def trial_will_end(self, now: int, customer: _Customer, sub: Obj) -> None:
        if customer.sub is sub and sub["status"] == "trialing":
            self.emit_sub(now, customer, "customer.subscription.trial_will_end")

    def renew(self, now: int, customer: _Customer, sub: Obj) -> None:
        if customer.sub is not sub or sub["status"] in ("canceled", "incomplete_expired", "unpaid"):
            return
        if sub["cancel_at_period_end"]:
            self.end_subscription(now, customer, reason="cancellation_requested")
            return
        months = 12 if sub["price"]["recurring"]["interval"] == "year" else 1
        old_start, old_end, old_status = sub["period_start"], sub["period_end"], sub["status"]
        old_invoice = sub["latest_invoice"]
        sub.update(period_start=now, period_end=add_months(now, months))
        prorations, sub["prorations"] = sub.get("prorations") or [], []
        inv = self.invoice(
            now,
            customer,
            amount=max(0, self.amount(sub) + sum(line["amount"] for line in prorations)),
            reason="subscription_cycle",
            period=(now, sub["period_end"]),
            prorations=prorations,
        )
        for proration in prorations:
            proration["invoice"] = inv["id"]
        succeeded = self.rng.random() < (0.8 if old_status == "trialing" else 0.9)
        self.pay(now, customer, inv, succeeded=succeeded, next_attempt=None if succeeded else now + RETRY_GAPS[0])
        changed: Obj = {"period_start": old_start, "period_end": old_end, "latest_invoice": old_invoice}
        sub["status"] = "active" if succeeded else "past_due"
        if sub["status"] == "past_due":
            sub["past_due_since"] = now
        if sub["status"] != old_status:
            changed["status"] = old_status
        previous = self.sub_previous(customer, **changed)
        self.emit_sub(now, customer, "customer.subscription.updated", previous)
        if succeeded:
            self.at(sub["period_end"], self.renew, customer, sub)
        else:
            self.at(now + RETRY_GAPS[0], self.retry, customer, sub, inv, 2)

    def retry(self, now: int, customer: _Customer, sub: Obj, inv: Obj, attempt: int) -> None:
        if customer.sub is not sub or sub["status"] != "past_due" or inv["status"] != "open":
            return
        succeeded = self.rng.random() < 0.45
        last = attempt >= len(RETRY_GAPS) + 1
        next_attempt = None if succeeded or last else now + RETRY_GAPS[attempt - 1]
        self.pay(now, customer, inv, succeeded=succeeded, next_attempt=next_attempt)
        if succeeded:
            sub["past_due_since"] = None
            self.set_status(now, customer, "active")
            self.at(sub["period_end"], self.renew, customer, sub)
        elif last:
            inv["status"], inv["uncollectible_at"] = "uncollectible", now
            self.emit(
                now,
                "invoice.marked_uncollectible",
                self.builder.invoice(inv, customer.api_version),
                customer.api_version,
                {"status": "open"},
            )
            if self.rng.random() < 0.5:
                self.end_subscription(now, customer, reason="payment_failed")
            else:
                self.set_status(now, customer, "unpaid")
                self.at(now + 14 * DAY, self.end_unpaid, customer, sub)
        else:
            self.at(next_attempt or now, self.retry, customer, sub, inv, attempt + 1)

    def end_unpaid(self, now: int, customer: _Customer, sub: Obj) -> None:
        if customer.sub is sub and sub["status"] == "unpaid":
            self.end_subscription(now, customer, reason="payment_failed")

    def end_subscription(self, now: int, customer: _Customer, *, reason: str) -> None:
        sub = customer.sub
        assert sub is not None
        previous = self.sub_previous(customer, status=sub["status"])
        sub.update(
            status="canceled",
            ended_at=now,
            canceled_at=sub.get("canceled_at") or now,
            cancellation_reason=reason,
        )
        self.emit_sub(now, customer, "customer.subscription.deleted", previous)
        customer.sub = None
        rng = self.rng
        if rng.random() < 0.15:
            self.at(now + rng.randint(20, 120) * DAY, self.start_subscription, customer, False)
        elif rng.random() < 0.1:
            self.at(now + 30 * DAY, self.delete_customer, customer)

    def life_event(self, now: int, customer: _Customer, sub: Obj) -> None:
        if customer.sub is not sub or sub["status"] in (
            "canceled",
            "incomplete_expired",
            "incomplete",
            "unpaid",
        ):
            return
        rng = self.rng
        self.at(now + rng.randint(20, 45) * DAY, self.life_event, customer, sub)
        if sub["status"] != "active":
            return
        roll = rng.random()
        tier = sub["price"]["product"].removeprefix("prod_")
        position = TIERS.index(tier)
        interval = sub["price"]["recurring"]["interval"]
        if sub["cancel_at_period_end"]:
            if roll < 0.25:  # taken back before the period ends
                previous = self.sub_previous(
                    customer,
                    cancel_at_period_end=True,
                    cancel_at=sub["cancel_at"],
                    canceled_at=sub["canceled_at"],
                )
                sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
                self.emit_sub(now, customer, "customer.subscription.updated", previous)
            return
        if roll < 0.06 and position < 2:
            self.change_price(now, customer, self.prices[(TIERS[position + 1], customer.currency, interval)])
        elif roll < 0.10 and position > 0:
            self.change_price(now, customer, self.prices[(TIERS[position - 1], customer.currency, interval)])
        elif roll < 0.16 and tier == "business":
            quantity = max(1, sub["quantity"] + rng.choice((-2, -1, 1, 2, 3)))
            if quantity != sub["quantity"]:
                previous = self.sub_previous(customer, quantity=sub["quantity"])
                old_quantity, sub["quantity"] = sub["quantity"], quantity
                self.emit_sub(now, customer, "customer.subscription.updated", previous)
                self.prorate(now, sub, sub["price"], old_quantity)
        elif roll < 0.21:
            previous = self.sub_previous(customer, cancel_at_period_end=False, cancel_at=None, canceled_at=None)
            sub.update(cancel_at_period_end=True, cancel_at=sub["period_end"], canceled_at=now)
            self.emit_sub(now, customer, "customer.subscription.updated", previous)
            if rng.random() < 0.2:  # taken back within the same second: two events, one `created`
                previous = self.sub_previous(
                    customer, cancel_at_period_end=True, cancel_at=sub["cancel_at"], canceled_at=now
                )
                sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
                self.emit_sub(now, customer, "customer.subscription.updated", previous)
        elif roll < 0.225:
            sub["canceled_at"] = now
            self.end_subscription(now, customer, reason="cancellation_requested")

    def change_price(self, now: int, customer: _Customer, price: Obj) -> None:
        sub = customer.sub
        assert sub is not None
        old_amount = self.amount(sub)
        previous = self.sub_previous(customer, price=sub["price"])
        old_price, sub["price"] = sub["price"], price
        new_amount = self.amount(sub)
        self.emit_sub(now, customer, "customer.subscription.updated", previous)
        if new_amount <= old_amount:
            self.prorate(now, sub, old_price, sub["quantity"])
        if new_amount > old_amount:  # upgrades are charged now, prorated; downgrades credit later
            left = Fraction(sub["period_end"] - now, max(1, sub["period_end"] - sub["period_start"]))
            inv = self.invoice(
                now,
                customer,
                amount=int((new_amount - old_amount) * left),
                reason="subscription_update",
                period=(now, sub["period_end"]),
            )
            self.pay(now, customer, inv, succeeded=True, next_attempt=None)

    def refund(self, now: int, customer: _Customer, ch: Obj) -> None:
        amount = ch["amount"] if self.rng.random() < 0.6 else ch["amount"] // 2
        ch["refunds"].append(
            {
                "id": self.new_id("re_"),
                "amount": amount,
                "charge": ch["id"],
                "currency": ch["currency"],
                "created": now,
                "reason": self.rng.choice(("requested_by_customer", "duplicate", None)),
                "payment_intent": ch["payment_intent"],
            }
        )
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": False}
        ch["amount_refunded"] += amount
        self.emit(now, "charge.refunded", self.builder.charge(ch), customer.api_version, previous)

    def dispute(self, now: int, customer: _Customer, ch: Obj) -> None:
        dp = {
            "id": self.new_id("dp_"),
            "amount": ch["amount"],
            "charge": ch["id"],
            "currency": ch["currency"],
            "created": now,
            "status": "needs_response",
            "payment_intent": ch["payment_intent"],
            "reason": self.rng.choice(("fraudulent", "product_not_received", "subscription_canceled")),
        }
        ch["disputed"] = True
        self.emit(now, "charge.dispute.created", self.builder.dispute(dp), customer.api_version)
        self.at(now + self.rng.randint(20, 60) * DAY, self.close_dispute, customer, dp)

    def close_dispute(self, now: int, customer: _Customer, dp: Obj) -> None:
        previous = {"status": dp["status"]}
        dp["status"] = self.rng.choice(("won", "lost"))
        self.emit(now, "charge.dispute.closed", self.builder.dispute(dp), customer.api_version, previous)

    def update_customer(self, now: int, customer: _Customer) -> None:
        if customer.deleted:
            return
        previous = {"email": customer.email}
        customer.email = customer.email.replace("@example.com", "@example.org")
        obj = self.builder.customer(
            customer.id, customer.user_id, customer.email, customer.name, customer.currency, now
        )
        self.emit(now, "customer.updated", obj, customer.api_version, previous)

    def delete_customer(self, now: int, customer: _Customer) -> None:
        if customer.sub is not None or customer.deleted:
            return
        customer.deleted = True
        obj = self.builder.customer(
            customer.id, customer.user_id, customer.email, customer.name, customer.currency, now
        )
        self.emit(now, "customer.deleted", obj, customer.api_version)


def simulate(config: SimConfig) -> tuple[list[Obj], Obj]:
    """Run a simulation: the events in ``created`` order, and the ground truth."""
    sim = Simulation(config).run()
    events = sorted(sim.events, key=lambda e: e["created"])  # stable: same-second events keep their order
    return events, ground_truth(sim)
