"""Hand-made Stripe histories for the cases where arrival order used to matter: changes reversed
within one second, values copied from another object, and the older API shapes. Each comes with
the state it must end in; the property tests mix them into a simulated history and deliver
everything in any order, batching and duplication, then replay it.

Events are listed in the order they happened (Stripe's ``created`` is whole seconds, so several
share one)."""

from __future__ import annotations

from typing import Any

from tests.factories import invoice, make_event, resource, subscription

T0 = 1_740_000_000
"""Before every simulated history (those start in 2025), so no id or second collides."""
T1 = T0 + 100


def cancel_flips(sub_id: str, customer: str, flips: int) -> list[dict[str, Any]]:
    """Created at T0; at T1, ``flips`` updates each toggling ``cancel_at_period_end``; event ids
    sort against the order they happened in."""
    evts = [
        make_event(
            "customer.subscription.created",
            subscription(sub_id, customer, user=f"user_{sub_id}"),
            created=T0,
            event_id=f"evt_{sub_id}_0",
        )
    ]
    for step in range(1, flips + 1):
        cancelling = step % 2 == 1
        cancel_at = T0 + 2_600_000
        evts.append(
            make_event(
                "customer.subscription.updated",
                subscription(
                    sub_id,
                    customer,
                    user=f"user_{sub_id}",
                    cancel_at_period_end=cancelling,
                    cancel_at=cancel_at if cancelling else None,
                ),
                created=T1,
                event_id=f"evt_{sub_id}_{9 - step}",
                previous={"cancel_at_period_end": not cancelling, "cancel_at": None if cancelling else cancel_at},
            )
        )
    return evts


def seat_flip(sub_id: str, customer: str) -> list[dict[str, Any]]:
    """Created at T0 with one seat; at T1, seats 1 -> 3 -> 1 (ids sort against that order)."""
    user = f"user_{sub_id}"
    created = subscription(sub_id, customer, user=user)
    evts = [make_event("customer.subscription.created", created, created=T0, event_id=f"evt_{sub_id}_0")]
    for event_suffix, (before, after) in (("9", (1, 3)), ("1", (3, 1))):
        evts.append(
            make_event(
                "customer.subscription.updated",
                subscription(sub_id, customer, user=user, quantity=after),
                created=T1,
                event_id=f"evt_{sub_id}_{event_suffix}",
                previous={"items": {"data": [{"quantity": before}]}},
            )
        )
    return evts


def a_charge(charge_id: str, customer: str | None, status: str, intent: str, code: str | None = None) -> dict[str, Any]:
    charge = resource("charge")
    charge.update(
        id=charge_id,
        customer=customer,
        payment_intent=intent,
        status=status,
        paid=status == "succeeded",
        failure_code=code,
        failure_message=f"Declined: {code}" if code else None,
        amount=2900,
        amount_refunded=0,
        currency="usd",
        disputed=False,
        metadata={},
        refunds=None,
    )
    return charge


def charge_disagrees_on_status() -> list[dict[str, Any]]:
    """An invoice's charge fails (T0+10), then a newer snapshot of the same charge says it succeeded
    (T0+20): the invoice's decline reason is that of its newest failed charge, so none."""
    customer, intent = "cus_tk_dec", "pi_tk_dec"
    sub = subscription("sub_tk_dec", customer, user="user_tk_dec")
    failed = invoice("in_tk_dec", customer, sub_id="sub_tk_dec", attempt_count=1, payment_intent=intent)
    return [
        make_event("customer.subscription.created", sub, created=T0, event_id="evt_tk_dec_0"),
        make_event("invoice.payment_failed", failed, created=T0 + 10, event_id="evt_tk_dec_1"),
        make_event(
            "charge.failed",
            a_charge("ch_tk_dec", customer, "failed", intent, "card_declined"),
            created=T0 + 10,
            event_id="evt_tk_dec_2",
        ),
        make_event(
            "charge.updated",
            a_charge("ch_tk_dec", customer, "succeeded", intent),
            created=T0 + 20,
            event_id="evt_tk_dec_3",
            previous={"status": "failed"},
        ),
    ]


def charge_disagrees_on_customer() -> list[dict[str, Any]]:
    """A dispute and a refund name only their charge, whose snapshots name two customers: both
    take the customer of the charge's newest snapshot, and that customer's user."""
    intent = "pi_tk_dsp"
    dispute = resource("dispute")
    dispute.update(id="dp_tk_dsp", charge="ch_tk_dsp", amount=2900, currency="usd", status="needs_response")
    dispute.update(reason="fraudulent", metadata={})
    refund = resource("refund")
    refund.update(id="re_tk_dsp", charge="ch_tk_dsp", amount=500, currency="usd", status="succeeded", customer=None)
    refund.update(metadata={})
    return [
        make_event(
            "customer.subscription.created",
            subscription("sub_tk_dsp_old", "cus_tk_dsp_old", user="user_tk_old"),
            created=T0,
            event_id="evt_tk_dsp_0",
        ),
        make_event(
            "customer.subscription.created",
            subscription("sub_tk_dsp_new", "cus_tk_dsp_new", user="user_tk_new"),
            created=T0,
            event_id="evt_tk_dsp_1",
        ),
        make_event(
            "charge.succeeded",
            a_charge("ch_tk_dsp", "cus_tk_dsp_old", "succeeded", intent),
            created=T0 + 10,
            event_id="evt_tk_dsp_2",
        ),
        make_event("charge.dispute.created", dispute, created=T0 + 20, event_id="evt_tk_dsp_3"),
        make_event("refund.created", refund, created=T0 + 20, event_id="evt_tk_dsp_4"),
        make_event(
            "charge.updated",
            a_charge("ch_tk_dsp", "cus_tk_dsp_new", "succeeded", intent),
            created=T0 + 30,
            event_id="evt_tk_dsp_5",
            previous={"customer": "cus_tk_dsp_old"},
        ),
    ]


def customer_link_claims() -> list[dict[str, Any]]:
    """A customer's metadata names a user, then is cleared; two checkouts name two users. The link
    is the newest customer snapshot's user, else the earliest claim's."""
    customer = resource("customer")
    customer.update(id="cus_tk_link", metadata={"user_id": "user_tk_meta"}, email="tk@example.com", discount=None)
    cleared = dict(customer, metadata={})
    sessions = []
    for n, user in ((1, "user_tk_first"), (2, "user_tk_second")):
        session = resource("checkout.session")
        session.update(
            id=f"cs_tk_link{n}",
            customer="cus_tk_link",
            client_reference_id=user,
            metadata={},
            subscription="sub_tk_link",
            mode="subscription",
            status="complete",
        )
        sessions.append(session)
    return [
        make_event("customer.created", customer, created=T0, event_id="evt_tk_link_0"),
        make_event("checkout.session.completed", sessions[0], created=T0 + 5, event_id="evt_tk_link_1"),
        make_event(
            "customer.subscription.created",
            subscription("sub_tk_link", "cus_tk_link", user=None),
            created=T0 + 5,
            event_id="evt_tk_link_2",
        ),
        make_event(
            "customer.updated",
            cleared,
            created=T0 + 10,
            event_id="evt_tk_link_3",
            previous={"metadata": {"user_id": "user_tk_meta"}},
        ),
        make_event("checkout.session.completed", sessions[1], created=T0 + 20, event_id="evt_tk_link_4"),
    ]


def current_api_links() -> list[dict[str, Any]]:
    """Current API versions: the invoice names its payment intent once (expanded payments), newer
    snapshots leave it out, a second invoice is linked only by ``invoice_payment.paid``; the
    decline reasons of their failed charges reach both."""
    customer, version = "cus_tk_cur", "2025-03-31.basil"
    first = invoice("in_tk_cur", customer, sub_id="sub_tk_cur", attempt_count=1, payment_intent="pi_tk_cur")
    newer = invoice("in_tk_cur", customer, sub_id="sub_tk_cur", attempt_count=2, payment_intent=None)
    newer.pop("payments")
    bare = invoice("in_tk_cur2", customer, sub_id="sub_tk_cur", status="paid", attempt_count=2, payment_intent=None)
    bare.pop("payments")
    payment = resource("invoice_payment")
    payment.update(id="inpay_tk_cur2", invoice="in_tk_cur2", status="paid", amount_requested=2900, amount_paid=2900)
    payment.update(currency="usd", payment={"type": "payment_intent", "payment_intent": "pi_tk_cur2"})
    evts = [
        (T0, "customer.subscription.created", subscription("sub_tk_cur", customer, user="user_tk_cur")),
        (T0 + 10, "invoice.payment_failed", first),
        (
            T0 + 10,
            "charge.failed",
            a_charge("ch_tk_cur1", customer, "failed", "pi_tk_cur", "insufficient_funds"),
        ),
        (T0 + 50, "invoice.updated", newer),
        (T0 + 60, "charge.failed", a_charge("ch_tk_cur2", customer, "failed", "pi_tk_cur2", "expired_card")),
        (T0 + 70, "charge.succeeded", a_charge("ch_tk_cur3", customer, "succeeded", "pi_tk_cur2")),
        (T0 + 70, "invoice.paid", bare),
        (T0 + 70, "invoice_payment.paid", payment),
    ]
    return [
        make_event(kind, obj, created=at, event_id=f"evt_tk_cur_{n}", api_version=version)
        for n, (at, kind, obj) in enumerate(evts)
    ]


def tricky_events() -> list[dict[str, Any]]:
    """Every hand-made history, in the order it happened."""
    return [
        *cancel_flips("sub_tk_flip2", "cus_tk_flip2", 2),
        *cancel_flips("sub_tk_flip3", "cus_tk_flip3", 3),
        *seat_flip("sub_tk_seats", "cus_tk_seats"),
        *charge_disagrees_on_status(),
        *charge_disagrees_on_customer(),
        *customer_link_claims(),
        *current_api_links(),
        *old_shapes(),
    ]


EXPECTED_SUBSCRIPTIONS: dict[str, dict[str, Any]] = {
    "sub_tk_flip2": {"status": "active", "cancel_at_period_end": False, "quantity": 1},
    "sub_tk_flip3": {"status": "active", "cancel_at_period_end": True, "quantity": 1},
    "sub_tk_seats": {"status": "active", "cancel_at_period_end": False, "quantity": 1},
    "sub_tk_dec": {"status": "active", "cancel_at_period_end": False, "quantity": 1, "user_id": "user_tk_dec"},
    "sub_tk_dsp_old": {"status": "active", "cancel_at_period_end": False, "quantity": 1, "user_id": "user_tk_old"},
    "sub_tk_dsp_new": {"status": "active", "cancel_at_period_end": False, "quantity": 1, "user_id": "user_tk_new"},
    "sub_tk_cur": {"status": "active", "cancel_at_period_end": False, "quantity": 1, "user_id": "user_tk_cur"},
    "sub_tk_old": {
        "status": "active",
        "cancel_at_period_end": False,
        "quantity": 3,
        "user_id": "user_tk_old",
        "price_id": "gold",
    },
    "sub_tk_old_nostatus": {
        "status": "active",
        "cancel_at_period_end": False,
        "quantity": 3,
        "user_id": "user_tk_old",
        "price_id": "gold",
    },
    "sub_tk_link": {"status": "active", "cancel_at_period_end": False, "quantity": 1, "user_id": "user_tk_first"},
}
"""What each hand-made subscription must end as, whatever the order of delivery."""


EXPECTED_ROWS: dict[str, dict[str, dict[str, Any]]] = {
    "payment_history": {
        "in_tk_dec": {"failure_code": None, "user_id": "user_tk_dec"},
        "in_tk_cur": {"failure_code": "insufficient_funds", "attempt_count": 2, "user_id": "user_tk_cur"},
        "in_tk_cur2": {"failure_code": "expired_card", "status": "paid", "user_id": "user_tk_cur"},
        "in_tk_old": {
            "status": "paid",
            "amount_paid": 6000,
            "amount_remaining": 0,
            "attempt_count": 2,
            "failure_code": "card_declined",
            "stripe_subscription_id": "sub_tk_old",
        },
        "in_tk_old_draft": {"status": "deleted"},
    },
    "disputes": {
        "dp_tk_dsp": {"stripe_customer_id": "cus_tk_dsp_new", "user_id": "user_tk_new"},
        "ch_tk_old2:dispute": {"status": "lost", "stripe_customer_id": "cus_tk_old", "amount": 6000},
    },
    "refunds": {
        "re_tk_dsp": {"stripe_customer_id": "cus_tk_dsp_new", "user_id": "user_tk_new"},
        "re_tk_old": {
            "stripe_charge_id": "ch_tk_old2",
            "status": "succeeded",
            "amount": 1500,
            "user_id": "user_tk_old",
        },
    },
    "charges": {
        "ch_tk_old1": {"status": "failed", "failure_code": "card_declined"},
        "ch_tk_old2": {"status": "succeeded", "amount_refunded": 1500, "user_id": "user_tk_old"},
    },
    "customers": {"cus_tk_link": {"user_id": "user_tk_first", "email": "tk@example.com"}},
}
"""Values of other projections the hand-made histories must end with (table -> Stripe id -> values)."""


OLD_VERSION = "2015-04-07"


def old_subscription(sub_id: str, customer: str, **fields: Any) -> dict[str, Any]:
    """A subscription as API versions before 2016 send it: one ``plan`` and a ``quantity`` on the
    subscription, no ``items``, ``start`` and no ``created``."""
    sub: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "plan": {
            "id": "gold",
            "object": "plan",
            "amount": 2000,
            "currency": "usd",
            "interval": "month",
            "interval_count": 1,
            "name": "Gold",
            "created": T0 - 1000,
            "livemode": False,
            "metadata": {},
            "trial_period_days": None,
            "statement_descriptor": None,
        },
        "start": T0,
        "status": "active",
        "customer": customer,
        "cancel_at_period_end": False,
        "current_period_start": T0,
        "current_period_end": T0 + 2_592_000,
        "ended_at": None,
        "trial_start": None,
        "trial_end": None,
        "canceled_at": None,
        "quantity": 3,
        "application_fee_percent": None,
        "discount": None,
        "tax_percent": None,
        "metadata": {},
    }
    sub.update(fields)
    return sub


def old_invoice(
    invoice_id: str, customer: str, sub_id: str, *, paid: bool, charge: str | None, **fields: Any
) -> dict[str, Any]:
    """An invoice before 2018: ``paid``/``closed``/``forgiven`` and ``date``, no ``status``,
    ``created``, ``amount_paid`` or ``amount_remaining``; the charge as ``invoice.charge``."""
    inv: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": 6000,
        "application_fee": None,
        "attempt_count": 1,
        "attempted": True,
        "charge": charge,
        "closed": paid,
        "currency": "usd",
        "customer": customer,
        "date": T0 + 60,
        "description": None,
        "discount": None,
        "ending_balance": 0,
        "forgiven": False,
        "lines": {"object": "list", "data": [], "total_count": 0, "has_more": False, "url": "/v1/invoices/x/lines"},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "paid": paid,
        "period_end": T0,
        "period_start": T0,
        "starting_balance": 0,
        "subscription": sub_id,
        "subtotal": 6000,
        "total": 6000,
        "webhooks_delivered_at": None,
    }
    inv.update(fields)
    return inv


def old_charge(charge_id: str, customer: str, invoice_id: str, *, paid: bool, **fields: Any) -> dict[str, Any]:
    """A charge before ``status`` (2015): ``paid``/``refunded``, refunds nested without ``charge``."""
    charge: dict[str, Any] = {
        "id": charge_id,
        "object": "charge",
        "created": T0 + 60,
        "livemode": False,
        "paid": paid,
        "amount": 6000,
        "currency": "usd",
        "refunded": False,
        "captured": paid,
        "refunds": {"object": "list", "total_count": 0, "has_more": False, "url": "/v1/x", "data": []},
        "balance_transaction": "txn_old",
        "failure_message": None if paid else "Your card was declined.",
        "failure_code": None if paid else "card_declined",
        "amount_refunded": 0,
        "customer": customer,
        "invoice": invoice_id,
        "description": None,
        "dispute": None,
        "metadata": {},
    }
    charge.update(fields)
    return charge


def old_dispute(charge_id: str, status: str) -> dict[str, Any]:
    """A dispute before disputes had ids of their own: known by its charge."""
    return {
        "object": "dispute",
        "livemode": False,
        "amount": 6000,
        "currency": "usd",
        "charge": charge_id,
        "created": T0 + 300,
        "status": status,
        "reason": "general",
        "balance_transaction": "txn_old_dp",
        "evidence_due_by": T0 + 900_000,
        "evidence": None,
    }


def old_shapes() -> list[dict[str, Any]]:
    """An account pinned to a 2015 API version: a subscription paid after one decline, a partial
    refund nested in the charge, a dispute without an id that is lost, a subscription without a
    status, and a draft invoice that is deleted."""
    customer = "cus_tk_old"
    refund = {"id": "re_tk_old", "object": "refund", "amount": 1500, "currency": "usd", "created": T0 + 200}
    refund.update(balance_transaction="txn_old_re", metadata={})
    refunded = old_charge("ch_tk_old2", customer, "in_tk_old", paid=True, amount_refunded=1500)
    refunded["refunds"]["data"] = [refund]
    draft = old_invoice("in_tk_old_draft", customer, "sub_tk_old", paid=False, charge=None, attempted=False)
    draft["attempt_count"] = 0
    no_status = old_subscription("sub_tk_old_nostatus", customer, metadata={"user_id": "user_tk_old"})
    del no_status["status"]
    evts = [
        (
            T0,
            "customer.subscription.created",
            old_subscription("sub_tk_old", customer, metadata={"user_id": "user_tk_old"}),
        ),
        (T0 + 1, "customer.subscription.created", no_status),
        (
            T0 + 60,
            "invoice.payment_failed",
            old_invoice("in_tk_old", customer, "sub_tk_old", paid=False, charge="ch_tk_old1"),
        ),
        (T0 + 60, "charge.failed", old_charge("ch_tk_old1", customer, "in_tk_old", paid=False)),
        (T0 + 120, "charge.succeeded", old_charge("ch_tk_old2", customer, "in_tk_old", paid=True)),
        (
            T0 + 120,
            "invoice.payment_succeeded",
            old_invoice("in_tk_old", customer, "sub_tk_old", paid=True, charge="ch_tk_old2", attempt_count=2),
        ),
        (T0 + 200, "charge.refunded", refunded),
        (T0 + 300, "charge.dispute.created", old_dispute("ch_tk_old2", "needs_response")),
        (T0 + 400, "charge.dispute.closed", old_dispute("ch_tk_old2", "lost")),
        (T0 + 500, "invoice.created", draft),
        (T0 + 600, "invoice.deleted", draft),
    ]
    return [
        make_event(kind, obj, created=at, event_id=f"evt_tk_old_{n:02d}", api_version=OLD_VERSION)
        for n, (at, kind, obj) in enumerate(evts)
    ]
