"""The kinds of Stripe object the service follows: for each, its row values (from
:mod:`api.stripe_objects.fields`), the column naming its Stripe id, when a snapshot is terminal
(nothing non-terminal may replace it) and its status progression, used only to break same-second
ties (:mod:`api.stripe_objects.ordering`). Facts about Stripe's object model, not about storage:
the projections map each kind to its table, the KPI engine reads the same ranks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from api.stripe_objects import fields as so

__all__ = ["KINDS", "ObjectKind"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class ObjectKind:
    """One kind of Stripe object."""

    name: str
    """Stripe's ``object`` value."""
    key: str
    """The row value holding the Stripe id (unique)."""
    row: Callable[[Obj, str], Obj]
    """Object and event type -> row values."""
    terminal: Callable[[Mapping[Any, Any]], bool]
    """Row values -> whether nothing non-terminal may replace them."""
    rank: Callable[[Obj], tuple[int, ...]]
    """Row values -> status progression, used only to break same-second ties."""

    def key_of(self, values: Mapping[Any, Any]) -> str:
        return str(values[self.key])


def _order(*statuses: str) -> dict[str, int]:
    return {status: position for position, status in enumerate(statuses)}


_SUBSCRIPTION_STATUS = _order(
    "incomplete", "trialing", "active", "past_due", "unpaid", "paused", "incomplete_expired", "canceled"
)
_INVOICE_STATUS = _order("draft", "open", "uncollectible", "void", "paid", "deleted")
_INVOICE_PAYMENT_STATUS = _order("open", "canceled", "paid")
_CHARGE_STATUS = _order("pending", "failed", "succeeded")
_REFUND_STATUS = _order("pending", "requires_action", "failed", "canceled", "succeeded")
_DISPUTE_STATUS = _order(
    "warning_needs_response",
    "needs_response",
    "warning_under_review",
    "under_review",
    "warning_closed",
    "prevented",
    "charge_refunded",
    "won",
    "lost",
)
_DISPUTE_CLOSED = ("won", "lost", "warning_closed", "prevented", "charge_refunded")


def _status_rank(order: dict[str, int]) -> Callable[[Obj], int]:
    return lambda values: order.get(values.get("status") or "", -1)


_sub_rank = _status_rank(_SUBSCRIPTION_STATUS)
_inv_rank = _status_rank(_INVOICE_STATUS)
_invoice_payment_rank = _status_rank(_INVOICE_PAYMENT_STATUS)
_charge_rank = _status_rank(_CHARGE_STATUS)
_refund_rank = _status_rank(_REFUND_STATUS)
_dispute_rank = _status_rank(_DISPUTE_STATUS)

KINDS: dict[str, ObjectKind] = {
    kind.name: kind
    for kind in (
        ObjectKind(
            "customer",
            "stripe_customer_id",
            so.customer_row,
            terminal=lambda v: bool(v["deleted"]),
            rank=lambda v: (int(bool(v["deleted"])),),
        ),
        ObjectKind(
            "subscription",
            "stripe_subscription_id",
            so.subscription_row,
            terminal=lambda v: v["status"] in ("canceled", "incomplete_expired"),
            rank=lambda v: (_sub_rank(v), int(v["cancel_at_period_end"])),
        ),
        ObjectKind(
            "invoice",
            "stripe_invoice_id",
            so.invoice_row,
            terminal=lambda v: v["status"] in ("paid", "void", "deleted"),
            rank=lambda v: (_inv_rank(v), v["attempt_count"], v["amount_paid"]),
        ),
        ObjectKind(
            "invoice_payment",
            "stripe_invoice_payment_id",
            so.invoice_payment_row,
            terminal=lambda v: False,
            rank=lambda v: (_invoice_payment_rank(v),),
        ),
        ObjectKind(
            "charge",
            "stripe_charge_id",
            so.charge_row,
            terminal=lambda v: False,
            rank=lambda v: (_charge_rank(v), v["amount_refunded"], int(v["disputed"])),
        ),
        ObjectKind(
            "refund",
            "stripe_refund_id",
            so.refund_row,
            terminal=lambda v: False,
            rank=lambda v: (_refund_rank(v),),
        ),
        ObjectKind(
            "dispute",
            "stripe_dispute_id",
            so.dispute_row,
            terminal=lambda v: v["status"] in _DISPUTE_CLOSED,
            rank=lambda v: (_dispute_rank(v),),
        ),
    )
}
