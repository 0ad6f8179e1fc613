"""The lists ``faddl sync`` walks, in the order it walks them (what later objects refer to first),
and the event type each object is logged under.

A synced object goes into the log as a snapshot: an event whose ``data.object`` is the object as
Stripe returned it, typed as the Stripe event that reports its latest state would be, so the
projections and the KPI engine read it as they read a delivery.

| resource | list | logged as |
|---|---|---|
| products, prices | ``/v1/products``, ``/v1/prices`` | ``product.updated``, ``price.updated`` (the plan names) |
| customers | ``/v1/customers`` | ``customer.updated`` |
| subscriptions | ``/v1/subscriptions?status=all`` | ``customer.subscription.deleted`` once ended, else ``.updated`` |
| invoices | ``/v1/invoices`` (every status) | ``invoice.updated`` |
| invoiceitems | ``/v1/invoiceitems`` | ``invoiceitem.created`` while pending (not invoiced yet), else skipped |
| charges | ``/v1/charges`` | ``charge.updated`` |
| refunds | ``/v1/refunds`` | ``charge.refund.updated`` |
| disputes | ``/v1/disputes`` | ``charge.dispute.closed`` once closed, else ``.updated`` |
| checkout_sessions | ``/v1/checkout/sessions`` | ``checkout.session.completed`` / ``.expired`` |

Pending invoice items date a change made since a subscription's last invoice (its proration waits
for the next one), which history reconstruction would otherwise put at the sync.

An open checkout session is skipped: it completes or expires within a day, and its event or the
next sync brings it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS", "RESOURCES", "STORE_BATCH", "Resource", "resource_names", "select_resources"]

Obj = dict[str, Any]

STORE_BATCH = 2_000
"""Objects (or Events API events) stored in one transaction: twenty pages. A large log's indexes
are keyed by random ids, so each transaction rewrites every index page its rows land on; fewer,
larger transactions rewrite each page less often, and memory stays bounded."""

EVENTS = "events"
"""The Events API catch-up's name, as ``--only`` and the cursors name it."""

_ENDED_SUBSCRIPTION = ("canceled", "incomplete_expired")
_CLOSED_DISPUTE = ("won", "lost", "warning_closed", "prevented", "charge_refunded")


@dataclass(frozen=True)
class Resource:
    """One list of the Stripe API."""

    name: str
    """As ``--only`` names it."""
    path: str
    object_type: str
    """Stripe's ``object`` value of its items."""
    event_type: Callable[[Obj], str | None]
    """Object -> the type of its snapshot event, or None to skip it."""
    params: Mapping[str, Any] = field(default_factory=dict)


def _always(event_type: str) -> Callable[[Obj], str | None]:
    return lambda obj: event_type


def _subscription(obj: Obj) -> str:
    ended = obj.get("status") in _ENDED_SUBSCRIPTION
    return "customer.subscription.deleted" if ended else "customer.subscription.updated"


def _pending_item(obj: Obj) -> str | None:
    """A pending invoice item; one already on an invoice is skipped (the invoice's line carries
    it). Filtered here rather than with ``pending=true``, which stand-ins such as localstripe
    refuse."""
    return "invoiceitem.created" if obj.get("invoice") is None else None


def _dispute(obj: Obj) -> str:
    return "charge.dispute.closed" if obj.get("status") in _CLOSED_DISPUTE else "charge.dispute.updated"


def _checkout_session(obj: Obj) -> str | None:
    return {"complete": "checkout.session.completed", "expired": "checkout.session.expired"}.get(str(obj.get("status")))


RESOURCES: tuple[Resource, ...] = (
    Resource("products", "/v1/products", "product", _always("product.updated")),
    Resource("prices", "/v1/prices", "price", _always("price.updated")),
    Resource("customers", "/v1/customers", "customer", _always("customer.updated")),
    Resource("subscriptions", "/v1/subscriptions", "subscription", _subscription, {"status": "all"}),
    Resource("invoices", "/v1/invoices", "invoice", _always("invoice.updated")),
    Resource("invoiceitems", "/v1/invoiceitems", "invoiceitem", _pending_item),
    Resource("charges", "/v1/charges", "charge", _always("charge.updated")),
    Resource("refunds", "/v1/refunds", "refund", _always("charge.refund.updated")),
    Resource("disputes", "/v1/disputes", "dispute", _dispute),
    Resource("checkout_sessions", "/v1/checkout/sessions", "checkout.session", _checkout_session),
)


def resource_names() -> list[str]:
    return [resource.name for resource in RESOURCES]


def select_resources(only: Sequence[str] | None) -> tuple[list[Resource], bool]:
    """The resources named (all when none), in walking order, and whether the Events API catch-up
    (``events``) is among them; an unknown name is a ValueError."""
    if not only:
        return list(RESOURCES), True
    known = {resource.name for resource in RESOURCES} | {EVENTS}
    unknown = sorted(set(only) - known)
    if unknown:
        raise ValueError(f"Unknown resource {', '.join(unknown)}: choose among {', '.join(sorted(known))}.")
    return [resource for resource in RESOURCES if resource.name in only], EVENTS in only
