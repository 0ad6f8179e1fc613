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
    "charge_row",
    "customer_id_of",
    "customer_row",
    "dispute_row",
    "expandable_id",
    "invoice_row",
    "invoice_subscription_id",
    "refund_row",
    "subscription_row",
    "ts",
    "user_id_claim",
]

Obj = dict[str, Any]


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


def _int(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


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
        "user_id": _metadata_user(obj),
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
        "interval_count": _int(recurring.get("interval_count")) or _int(plan.get("interval_count")),
        "unit_amount": _int(price.get("unit_amount"))
        if price.get("unit_amount") is not None
        else _int(plan.get("amount")),
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
        summary: Obj = {"id": _str(entry.get("id")), "end": _int(entry.get("end"))}
        if isinstance(coupon, dict):
            summary.update(
                coupon=_str(coupon.get("id")),
                percent_off=coupon.get("percent_off"),
                amount_off=_int(coupon.get("amount_off")),
                duration=_str(coupon.get("duration")),
            )
        elif isinstance(coupon, str):
            summary["coupon"] = coupon
        found.append(summary)
    if not found:
        return None
    return json.dumps(found, sort_keys=True, separators=(",", ":"))


def subscription_row(obj: Obj, event_type: str) -> Obj:
    items = _list_data(obj.get("items"))
    first = items[0] if items else {}
    pricing = _item_price(first)
    # Current API versions put the period on each item; older ones on the subscription.
    period_start = first.get("current_period_start", obj.get("current_period_start"))
    period_end = first.get("current_period_end", obj.get("current_period_end"))
    pause = _dict(obj.get("pause_collection"))
    return {
        "stripe_subscription_id": obj["id"],
        "stripe_customer_id": customer_id_of(obj) or "",
        "user_id": _metadata_user(obj),
        "status": _str(obj.get("status")) or "incomplete",
        **pricing,
        "quantity": _int(first.get("quantity"), 1) if first else _int(obj.get("quantity")),
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
        "created": ts(obj.get("created")),
    }


def invoice_subscription_id(obj: Obj) -> str | None:
    """An invoice's subscription: ``parent.subscription_details.subscription`` (current API) or
    ``subscription`` (older versions)."""
    details = _dict(_dict(obj.get("parent")).get("subscription_details"))
    return expandable_id(details.get("subscription")) or expandable_id(obj.get("subscription"))


def _invoice_payment_intent(obj: Obj) -> str | None:
    for payment in _list_data(obj.get("payments")):
        intent = expandable_id(_dict(payment.get("payment")).get("payment_intent"))
        if intent:
            return intent
    return expandable_id(obj.get("payment_intent"))


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


def invoice_row(obj: Obj, event_type: str) -> Obj:
    failure_code, failure_message = _invoice_failure(obj)
    transitions = _dict(obj.get("status_transitions"))
    status = _str(obj.get("status"))
    return {
        "stripe_invoice_id": obj["id"],
        "stripe_customer_id": customer_id_of(obj),
        "user_id": _metadata_user(obj),
        "stripe_subscription_id": invoice_subscription_id(obj),
        "payment_intent_id": _invoice_payment_intent(obj),
        "amount_due": _int(obj.get("amount_due"), 0),
        "amount_paid": _int(obj.get("amount_paid"), 0),
        "amount_remaining": _int(obj.get("amount_remaining"), 0),
        "currency": _str(obj.get("currency")),
        "status": status,
        "billing_reason": _str(obj.get("billing_reason")),
        "attempt_count": _int(obj.get("attempt_count"), 0),
        "attempted": bool(obj.get("attempted")),
        # Stripe clears next_payment_attempt once no retry is scheduled.
        "next_payment_attempt": ts(obj.get("next_payment_attempt")),
        "action_required": event_type == "invoice.payment_action_required" and status == "open",
        "failure_code": failure_code,
        "failure_message": failure_message,
        "hosted_invoice_url": _str(obj.get("hosted_invoice_url")),
        "period_start": ts(obj.get("period_start")),
        "period_end": ts(obj.get("period_end")),
        "paid_at": ts(transitions.get("paid_at")),
        "created": ts(obj.get("created")),
    }


def charge_row(obj: Obj, event_type: str) -> Obj:
    return {
        "stripe_charge_id": obj["id"],
        "stripe_customer_id": customer_id_of(obj),
        "user_id": _metadata_user(obj),
        "payment_intent_id": expandable_id(obj.get("payment_intent")),
        "amount": _int(obj.get("amount"), 0),
        "amount_refunded": _int(obj.get("amount_refunded"), 0),
        "currency": _str(obj.get("currency")),
        "status": _str(obj.get("status")),
        "failure_code": _str(obj.get("failure_code")),
        "failure_message": _str(obj.get("failure_message")),
        "disputed": bool(obj.get("disputed")),
        "created": ts(obj.get("created")),
    }


def _of_charge_row(id_column: str, obj: Obj) -> Obj:
    return {
        id_column: obj["id"],
        "stripe_charge_id": expandable_id(obj.get("charge")),
        "stripe_customer_id": customer_id_of(obj),
        "user_id": _metadata_user(obj),
        "amount": _int(obj.get("amount"), 0),
        "currency": _str(obj.get("currency")),
        "status": _str(obj.get("status")),
        "reason": _str(obj.get("reason")),
        "created": ts(obj.get("created")),
    }


def refund_row(obj: Obj, event_type: str) -> Obj:
    return _of_charge_row("stripe_refund_id", obj)


def dispute_row(obj: Obj, event_type: str) -> Obj:
    return _of_charge_row("stripe_dispute_id", obj)
