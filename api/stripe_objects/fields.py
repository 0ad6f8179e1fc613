"""Stripe object -> row values: the only place that knows Stripe's field names.

Reads both API shapes: the current one (billing period on each subscription item, an invoice's
subscription under ``parent.subscription_details``) and the older one (period on the subscription,
``invoice.subscription``), and both ``price`` and ``plan`` on items. Every reader tolerates a field
being absent, ``null``, a bare id or an expanded object.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "LEGACY_FIELDS",
    "InvalidObject",
    "charge_row",
    "customer_id_of",
    "customer_row",
    "dispute_row",
    "expandable_id",
    "invoice_dates",
    "invoice_item_line",
    "invoice_lines",
    "invoice_payment_row",
    "invoice_payments_of",
    "invoice_row",
    "invoice_subscription_id",
    "object_id_of",
    "refund_row",
    "refunds_of",
    "subscription_row",
    "ts",
    "user_id_claim",
    "whole",
]

Obj = dict[str, Any]

LEGACY_FIELDS: dict[str, frozenset[str]] = {
    "subscription": frozenset({"current_period_start", "current_period_end", "discount", "plan", "quantity"}),
    "subscription_item": frozenset(),
    "invoice": frozenset({"payment_intent", "charge"}),
    "line_item": frozenset({"price", "plan", "proration", "subscription_item"}),
    "invoiceitem": frozenset({"price", "plan", "subscription", "subscription_item"}),
    "charge": frozenset({"invoice"}),
}
"""Fields the readers take from older API versions that Stripe's current description of the object
no longer has (a test checks every other field read against the current OpenAPI description)."""


def ts(value: Any) -> datetime | None:
    """A Stripe epoch-seconds timestamp as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def expandable_id(value: Any) -> str | None:
    """The id of an expandable field: a bare id string, or an expanded object's ``id``."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        inner = value.get("id")
        return inner if isinstance(inner, str) else None
    return None


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


class InvalidObject(ValueError):
    """A Stripe object with a value the service cannot take as it is; the message says which."""


def _whole(obj: Obj, field: str, default: int | None = None) -> int | None:
    """A whole-number field (amounts in the currency's smallest unit, counts): absent or ``null``
    gives ``default``; anything else that is not an integer is refused, never guessed at (a
    ``"12.50"`` or ``12.5`` stored as 12 or 0 would be a wrong number nobody notices)."""
    value = obj.get(field)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    what = obj.get("object") or "object"
    raise InvalidObject(
        f"{what} {obj.get('id') or ''}: `{field}` must be a whole number (amounts are in the currency's "
        f"smallest unit), got {json.dumps(value)}"
    )


def whole(obj: Obj, field: str) -> int:
    """:func:`_whole` with 0 for an absent field, for readers outside this module."""
    return _whole(obj, field, 0) or 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _list_data(value: Any) -> list[Obj]:
    """Items of a Stripe list object (``{"object": "list", "data": [...]}``) or a plain list."""
    if isinstance(value, dict):
        value = value.get("data")
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _metadata_user(obj: Obj) -> str | None:
    return _str(_dict(obj.get("metadata")).get("user_id"))


def user_id_claim(obj: Obj) -> str | None:
    """The user id an object names: ``metadata.user_id`` or a checkout session's
    ``client_reference_id``."""
    return _metadata_user(obj) or _str(obj.get("client_reference_id"))


def customer_id_of(obj: Obj) -> str | None:
    """The Stripe customer an object belongs to (the object itself for a customer)."""
    if obj.get("object") == "customer":
        return _str(obj.get("id"))
    return expandable_id(obj.get("customer"))


def customer_row(obj: Obj, event_type: str) -> Obj:
    return {
        "stripe_customer_id": obj["id"],
        "metadata_user_id": _metadata_user(obj),
        "email": _str(obj.get("email")),
        "name": _str(obj.get("name")),
        "deleted": bool(obj.get("deleted")) or event_type == "customer.deleted",
        "created": ts(obj.get("created")),
    }


def _item_price(item: Obj) -> Obj:
    """The pricing of a subscription item, from ``price`` (current) or ``plan`` (legacy)."""
    price = _dict(item.get("price"))
    plan = _dict(item.get("plan"))
    recurring = _dict(price.get("recurring"))
    return {
        "price_id": _str(price.get("id")) or _str(plan.get("id")),
        "product_id": expandable_id(price.get("product")) or expandable_id(plan.get("product")),
        "interval": _str(recurring.get("interval")) or _str(plan.get("interval")),
        "interval_count": _whole(recurring, "interval_count") or _whole(plan, "interval_count"),
        "unit_amount": _whole(price, "unit_amount") if price.get("unit_amount") is not None else _whole(plan, "amount"),
        "currency": _str(price.get("currency")) or _str(plan.get("currency")),
    }


def _discount_summary(obj: Obj) -> str | None:
    """The coupons in force on a subscription, as compact JSON (``discounts`` or legacy ``discount``)."""
    found: list[Obj] = []
    candidates: list[Any] = list(obj.get("discounts") or [])
    if obj.get("discount"):
        candidates.append(obj["discount"])
    for entry in candidates:
        if isinstance(entry, str):
            found.append({"id": entry})
            continue
        if not isinstance(entry, dict):
            continue
        coupon = entry.get("coupon") or _dict(entry.get("source")).get("coupon")
        summary: Obj = {"id": _str(entry.get("id")), "end": _whole(entry, "end")}
        if isinstance(coupon, dict):
            summary.update(
                coupon=_str(coupon.get("id")),
                percent_off=coupon.get("percent_off"),
                amount_off=_whole(coupon, "amount_off"),
                duration=_str(coupon.get("duration")),
            )
        elif isinstance(coupon, str):
            summary["coupon"] = coupon
        found.append(summary)
    if not found:
        return None
    return json.dumps(found, sort_keys=True, separators=(",", ":"))


def _subscription_status(obj: Obj) -> str:
    """The status, or for a snapshot without one (the oldest API versions) what its own dates say:
    ended is ``canceled``, a period inside the trial ``trialing``, else ``active``; never a status
    such as ``incomplete`` that nothing in it supports."""
    status = _str(obj.get("status"))
    if status:
        return status
    if obj.get("ended_at"):
        return "canceled"
    trial_end, period_end = obj.get("trial_end"), obj.get("current_period_end")
    if isinstance(trial_end, int) and isinstance(period_end, int) and period_end <= trial_end:
        return "trialing"
    return "active"


def subscription_row(obj: Obj, event_type: str) -> Obj:
    items = _list_data(obj.get("items"))
    # API versions before items (2016) name one plan and a quantity on the subscription itself.
    first = items[0] if items else {"plan": obj.get("plan"), "quantity": obj.get("quantity")}
    pricing = _item_price(first)
    # Current API versions put the period on each item; older ones on the subscription.
    period_start = first.get("current_period_start", obj.get("current_period_start"))
    period_end = first.get("current_period_end", obj.get("current_period_end"))
    pause = _dict(obj.get("pause_collection"))
    return {
        "stripe_subscription_id": obj["id"],
        "stripe_customer_id": customer_id_of(obj) or "",
        "metadata_user_id": _metadata_user(obj),
        "status": _subscription_status(obj),
        **pricing,
        "quantity": _whole(first, "quantity", 1),
        "items_count": len(items),
        "current_period_start": ts(period_start),
        "current_period_end": ts(period_end),
        "trial_start": ts(obj.get("trial_start")),
        "trial_end": ts(obj.get("trial_end")),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "cancel_at": ts(obj.get("cancel_at")),
        "canceled_at": ts(obj.get("canceled_at")),
        "ended_at": ts(obj.get("ended_at")),
        "pause_behavior": _str(pause.get("behavior")) if obj.get("pause_collection") else None,
        "discount": _discount_summary(obj),
        "latest_invoice_id": expandable_id(obj.get("latest_invoice")),
        # ``start_date`` from 2019; before that ``start`` (and no ``created``).
        "created": ts(obj.get("created") or obj.get("start_date") or obj.get("start")),
    }


def invoice_subscription_id(obj: Obj) -> str | None:
    """An invoice's subscription: ``parent.subscription_details.subscription`` (current API) or
    ``subscription`` (older versions)."""
    details = _dict(_dict(obj.get("parent")).get("subscription_details"))
    return expandable_id(details.get("subscription")) or expandable_id(obj.get("subscription"))


def _billed(line: Obj, proration: Any, subscription_item: Any) -> Obj:
    """What an invoice line or an invoice item bills, as history reconstruction reads it: the
    price (its id from ``pricing.price_details.price`` in current API versions, ``price`` or
    ``plan`` before, and the price object older versions embed), quantity, period, proration,
    amount and subscription item."""
    embedded = _dict(line.get("price")) or _dict(line.get("plan"))
    period = _dict(line.get("period"))
    return {
        "price_id": expandable_id(_dict(_dict(line.get("pricing")).get("price_details")).get("price"))
        or expandable_id(line.get("price"))
        or expandable_id(line.get("plan")),
        "price": embedded or None,
        "quantity": _whole(line, "quantity", 1),
        "period_start": _whole(period, "start"),
        "period_end": _whole(period, "end"),
        "proration": bool(proration),
        "amount": _whole(line, "amount", 0),
        "subscription_item": expandable_id(subscription_item) or expandable_id(line.get("subscription_item")),
    }


def invoice_lines(obj: Obj) -> list[Obj]:
    """An invoice's lines (:func:`_billed`). Current API versions name the proration and the item
    in ``parent.subscription_item_details``, older ones on the line. Only the lines the invoice
    embeds (its first page)."""
    lines: list[Obj] = []
    for line in _list_data(obj.get("lines")):
        details = _dict(_dict(line.get("parent")).get("subscription_item_details"))
        lines.append(_billed(line, details.get("proration", line.get("proration")), details.get("subscription_item")))
    return lines


def invoice_item_line(obj: Obj) -> Obj:
    """An invoice item (``/v1/invoiceitems``) as :func:`invoice_lines` gives a line, with its
    ``subscription``, its ``date`` and whether it is still ``pending`` (on no invoice yet)."""
    details = _dict(_dict(obj.get("parent")).get("subscription_details"))
    return {
        **_billed(obj, obj.get("proration"), details.get("subscription_item")),
        "subscription": expandable_id(details.get("subscription")) or expandable_id(obj.get("subscription")),
        "pending": obj.get("invoice") is None,
        "date": _whole(obj, "date"),
    }


def invoice_dates(obj: Obj) -> Obj:
    """When an invoice was created, paid, marked uncollectible and voided (epoch seconds or None),
    from its ``status_transitions``."""
    transitions = _dict(obj.get("status_transitions"))
    return {
        "created": _whole(obj, "created"),
        "paid_at": _whole(transitions, "paid_at"),
        "uncollectible_at": _whole(transitions, "marked_uncollectible_at"),
        "voided_at": _whole(transitions, "voided_at"),
    }


def _invoice_payment_intent(obj: Obj) -> str | None:
    for payment in _list_data(obj.get("payments")):
        intent = expandable_id(_dict(payment.get("payment")).get("payment_intent"))
        if intent:
            return intent
    return expandable_id(obj.get("payment_intent"))


def _link(invoice_id: str, payment_intent: str | None, charge: str | None) -> Obj:
    """A link an older API version carries as a field, in the shape of an invoice payment."""
    payment = {"type": "payment_intent", "payment_intent": payment_intent} if payment_intent else {}
    if charge:
        payment = {"type": "charge", "charge": charge, **({"payment_intent": payment_intent} if payment_intent else {})}
    return {
        "object": "invoice_payment",
        "id": f"{invoice_id}:{payment_intent or charge}",
        "invoice": invoice_id,
        "payment": payment,
    }


def refunds_of(charge: Obj) -> list[Obj]:
    """The refunds a charge snapshot carries (a list object, or a plain list in the oldest
    versions), each naming its charge (older versions leave ``charge`` out of nested refunds)."""
    charge_id = _str(charge.get("id"))
    return [
        refund if refund.get("charge") else {**refund, "charge": charge_id}
        for refund in _list_data(charge.get("refunds"))
        if _str(refund.get("id"))
    ]


def invoice_payments_of(obj: Obj) -> list[Obj]:
    """The invoice payments an invoice or charge snapshot tells of: ``invoice.payments`` (current
    API versions), and the links older ones carry as fields (``invoice.payment_intent``,
    ``invoice.charge``, ``charge.invoice``), in the shape of an invoice payment."""
    kind, own_id = obj.get("object"), _str(obj.get("id"))
    if own_id is None:
        return []
    if kind == "charge":
        invoice_id = expandable_id(obj.get("invoice"))
        return [_link(invoice_id, expandable_id(obj.get("payment_intent")), own_id)] if invoice_id else []
    if kind != "invoice":
        return []
    found = [dict(payment, invoice=own_id) for payment in _list_data(obj.get("payments")) if _str(payment.get("id"))]
    intent, charge = expandable_id(obj.get("payment_intent")), expandable_id(obj.get("charge"))
    if intent or charge:
        found.append(_link(own_id, intent, charge))
    return found


def invoice_payment_row(obj: Obj, event_type: str) -> Obj:
    payment = _dict(obj.get("payment"))
    return {
        "stripe_invoice_payment_id": obj["id"],
        "stripe_invoice_id": expandable_id(obj.get("invoice")),
        "payment_intent_id": expandable_id(payment.get("payment_intent")),
        "stripe_charge_id": expandable_id(payment.get("charge")),
        "status": _str(obj.get("status")),
        "amount_requested": _whole(obj, "amount_requested"),
        "amount_paid": _whole(obj, "amount_paid"),
        "currency": _str(obj.get("currency")),
        "created": ts(obj.get("created")),
    }


def _invoice_failure(obj: Obj) -> tuple[str | None, str | None]:
    """Decline code and message carried by the invoice itself (expanded intent or charge)."""
    intent = _dict(obj.get("payment_intent"))
    error = _dict(intent.get("last_payment_error"))
    if error:
        return _str(error.get("decline_code")) or _str(error.get("code")), _str(error.get("message"))
    charge = _dict(obj.get("charge"))
    if charge.get("failure_code"):
        return _str(charge.get("failure_code")), _str(charge.get("failure_message"))
    return None, None


def _invoice_status(obj: Obj, event_type: str) -> str | None:
    """The status, or for API versions before it (2018) what ``paid`` and ``forgiven`` say: paid,
    forgiven (written off, today's ``uncollectible``), else ``open`` (drafts came with ``status``).
    A deleted draft is ``deleted``."""
    if event_type == "invoice.deleted" or obj.get("deleted") is True:
        return "deleted"
    status = _str(obj.get("status"))
    if status or "paid" not in obj:
        return status
    if obj.get("paid") is True:
        return "paid"
    return "uncollectible" if obj.get("forgiven") is True else "open"


def invoice_row(obj: Obj, event_type: str) -> Obj:
    failure_code, failure_message = _invoice_failure(obj)
    transitions = _dict(obj.get("status_transitions"))
    status = _invoice_status(obj, event_type)
    amount_due = _whole(obj, "amount_due", 0) or 0
    # Versions before ``amount_paid``/``amount_remaining`` (2018) say only whether it was paid.
    settled = amount_due if status == "paid" else 0
    return {
        "stripe_invoice_id": obj["id"],
        "stripe_customer_id": customer_id_of(obj),
        "metadata_user_id": _metadata_user(obj),
        "stripe_subscription_id": invoice_subscription_id(obj),
        "payment_intent_id": _invoice_payment_intent(obj),
        "amount_due": amount_due,
        "amount_paid": _whole(obj, "amount_paid", settled),
        "amount_remaining": _whole(obj, "amount_remaining", amount_due - settled),
        "currency": _str(obj.get("currency")),
        "status": status,
        "billing_reason": _str(obj.get("billing_reason")),
        "attempt_count": _whole(obj, "attempt_count", 0),
        "attempted": bool(obj.get("attempted")),
        # Stripe clears next_payment_attempt once no retry is scheduled.
        "next_payment_attempt": ts(obj.get("next_payment_attempt")),
        "action_required": event_type == "invoice.payment_action_required" and status == "open",
        "own_failure_code": failure_code,
        "own_failure_message": failure_message,
        "hosted_invoice_url": _str(obj.get("hosted_invoice_url")),
        "period_start": ts(obj.get("period_start")),
        "period_end": ts(obj.get("period_end")),
        "paid_at": ts(transitions.get("paid_at")),
        "created": ts(obj.get("created") or obj.get("date")),  # ``date`` before 2019
    }


def _charge_status(obj: Obj) -> str | None:
    """The status, or for versions before it what ``paid`` and ``failure_code`` say."""
    status = _str(obj.get("status"))
    if status or "paid" not in obj:
        return status
    if obj.get("paid") is True:
        return "succeeded"
    return "failed" if obj.get("failure_code") else "pending"


def charge_row(obj: Obj, event_type: str) -> Obj:
    return {
        "stripe_charge_id": obj["id"],
        "stripe_customer_id": customer_id_of(obj),
        "metadata_user_id": _metadata_user(obj),
        "payment_intent_id": expandable_id(obj.get("payment_intent")),
        "amount": _whole(obj, "amount", 0),
        "amount_refunded": _whole(obj, "amount_refunded", 0),
        "currency": _str(obj.get("currency")),
        "status": _charge_status(obj),
        "failure_code": _str(obj.get("failure_code")),
        "failure_message": _str(obj.get("failure_message")),
        "disputed": bool(obj.get("disputed")),
        "created": ts(obj.get("created")),
    }


def object_id_of(obj: Obj) -> str | None:
    """The Stripe id of an object; a dispute of the oldest API versions has none of its own and is
    keyed by its charge (a charge has at most one dispute)."""
    own = _str(obj.get("id"))
    if own or obj.get("object") != "dispute":
        return own
    charge = expandable_id(obj.get("charge"))
    return f"{charge}:dispute" if charge else None


def _of_charge_row(id_column: str, obj: Obj, customer: str | None, status: str | None) -> Obj:
    return {
        id_column: object_id_of(obj),
        "stripe_charge_id": expandable_id(obj.get("charge")),
        "stripe_customer_id": customer,
        "metadata_user_id": _metadata_user(obj),
        "amount": _whole(obj, "amount", 0),
        "currency": _str(obj.get("currency")),
        "status": status,
        "reason": _str(obj.get("reason")),
        "created": ts(obj.get("created")),
    }


def refund_row(obj: Obj, event_type: str) -> Obj:
    # Refunds had no status before 2015: they were done when made.
    return _of_charge_row("stripe_refund_id", obj, customer_id_of(obj), _str(obj.get("status")) or "succeeded")


def dispute_row(obj: Obj, event_type: str) -> Obj:
    # A dispute names no customer: it has its charge's.
    return _of_charge_row("stripe_dispute_id", obj, None, _str(obj.get("status")))
