"""The projected kinds: each kind of Stripe object (:mod:`api.stripe_objects.kinds`) with the
projection table it lands in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table

from api.db.models import charges, customers, disputes, invoice_payments, payment_history, refunds, user_subscriptions
from api.stripe_objects.kinds import KINDS as OBJECT_KINDS
from api.stripe_objects.kinds import ObjectKind

__all__ = ["KINDS", "Kind"]


@dataclass(frozen=True)
class Kind(ObjectKind):
    """How one kind of Stripe object is projected: the kind, and its table."""

    table: Table

    @classmethod
    def of(cls, kind: ObjectKind, table: Table) -> Kind:
        return cls(kind.name, kind.key, kind.row, kind.terminal, kind.rank, table)


_TABLES: dict[str, Table] = {
    "customer": customers,
    "subscription": user_subscriptions,
    "invoice": payment_history,
    "invoice_payment": invoice_payments,
    "charge": charges,
    "refund": refunds,
    "dispute": disputes,
}

KINDS: dict[str, Kind] = {name: Kind.of(kind, _TABLES[name]) for name, kind in OBJECT_KINDS.items()}
