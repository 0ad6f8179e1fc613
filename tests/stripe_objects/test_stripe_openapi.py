"""Every field the projections read, checked against Stripe's current OpenAPI description of the
object (as the official SDK's generated classes carry it) and Stripe's own example objects
(``openapi/fixtures3.json`` of stripe/openapi): a field that is neither in the current description
nor declared as one of older API versions fails the test."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stripe
from stripe.params import WebhookEndpointCreateParams

from api.projections.kinds import KINDS
from api.projections.projector import HANDLED_TYPES
from api.stripe_objects import fields as so
from simulator.objects import Builder

# Stripe's example objects, copied from stripe/openapi's openapi/fixtures3.json.
FIXTURES = json.loads((Path(__file__).parents[2] / "simulator" / "stripe_fixtures.json").read_text())["resources"]

CLASSES: dict[str, type[Any]] = {
    "customer": stripe.Customer,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "invoice": stripe.Invoice,
    "invoice_payment": stripe.InvoicePayment,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "line_item": stripe.InvoiceLineItem,
    "invoiceitem": stripe.InvoiceItem,
}
NESTED = {
    "items.data[]": "subscription_item",
    "payments.data[]": "invoice_payment",
    "refunds.data[]": "refund",
    "lines.data[]": "line_item",
}


class Reading(dict[str, Any]):
    """A Stripe object that records which fields are read, by path."""

    def __init__(self, value: dict[str, Any], path: str, seen: set[str]) -> None:
        super().__init__(value)
        self.path, self.seen = path, seen

    def _wrap(self, key: str, value: Any) -> Any:
        path = f"{self.path}.{key}" if self.path else key
        if isinstance(value, dict):
            return Reading(value, path, self.seen)
        if isinstance(value, list):
            return [Reading(v, f"{path}[]", self.seen) if isinstance(v, dict) else v for v in value]
        return value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.seen.add(f"{self.path}|{key}")
        return self._wrap(key, super().get(key, default))

    def __getitem__(self, key: str) -> Any:
        self.seen.add(f"{self.path}|{key}")
        return self._wrap(key, super().__getitem__(key))


def fields_read(
    kind: str, obj: dict[str, Any], read: Callable[[dict[str, Any]], object] | None = None
) -> dict[str, set[str]]:
    """Object kind -> the top-level fields ``read`` (default: the kind's row builder) took from
    ``obj``, for the object and the nested Stripe objects it reads (subscription items, invoice
    payments, refunds, invoice lines)."""
    seen: set[str] = set()
    (read or (lambda o: KINDS[kind].row(o, "x.updated")))(Reading(obj, "", seen))
    found: dict[str, set[str]] = {}
    for entry in seen:
        path, field = entry.split("|")
        owner = kind if path == "" else NESTED.get(path)
        if owner is not None:
            found.setdefault(owner, set()).add(field)
    return found


def assert_described_or_legacy(read: dict[str, set[str]]) -> None:
    for owner, fields in read.items():
        unknown = fields - described(owner) - so.LEGACY_FIELDS.get(owner, frozenset())
        assert not unknown, f"{owner}: {sorted(unknown)} are in neither Stripe's description nor LEGACY_FIELDS"


def described(kind: str) -> set[str]:
    return set(CLASSES[kind].__annotations__) - {"OBJECT_NAME"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_field_read_is_in_the_current_description_or_declared_legacy(kind: str) -> None:
    assert_described_or_legacy(fields_read(kind, FIXTURES[kind]))


def test_the_invoice_fields_history_reconstruction_reads_are_described_or_declared_legacy() -> None:
    def read(invoice: dict[str, Any]) -> None:
        so.invoice_lines(invoice)
        so.invoice_dates(invoice)

    found = fields_read("invoice", FIXTURES["invoice"], read)
    assert set(found) == {"invoice", "line_item"}
    assert_described_or_legacy(found)


def test_the_invoice_item_fields_history_reconstruction_reads_are_described_or_declared_legacy() -> None:
    """On the simulator's invoice item (Stripe's examples have none), built to the current shape."""
    item = {"line_id": "il_1", "amount": 500, "currency": "usd", "customer": "cus_1", "created": 1, "quantity": 2}
    item |= {"price_id": "price_1", "product_id": "prod_1", "unit_amount": 250, "period": (1, 2)}
    item |= {"subscription": "sub_1", "item_id": "si_1"}
    line = so.invoice_item_line(Builder.invoice_item(item, None))
    assert (line["price_id"], line["subscription"], line["pending"], line["period_start"]) == (
        "price_1",
        "sub_1",
        True,
        1,
    )
    assert_described_or_legacy(fields_read("invoiceitem", Builder.invoice_item(item, None), so.invoice_item_line))


@pytest.mark.parametrize("owner", sorted(so.LEGACY_FIELDS))
def test_declared_legacy_fields_are_gone_from_the_current_description(owner: str) -> None:
    assert not so.LEGACY_FIELDS[owner] & described(owner)


def test_every_handled_event_type_is_one_stripe_sends() -> None:
    (literal,) = typing.get_args(WebhookEndpointCreateParams.__annotations__["enabled_events"])
    assert set(typing.get_args(literal)) >= HANDLED_TYPES


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stripes_example_objects_project(kind: str) -> None:
    """Stripe's published example of each object gives a row with its id and no error."""
    row = KINDS[kind].row(FIXTURES[kind], f"{kind}.updated")
    assert row[KINDS[kind].key] == FIXTURES[kind]["id"]
