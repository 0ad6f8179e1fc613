"""Prebuilt SQL for the projections: built once per kind with bind parameters, so the webhook hot
path only binds values to statements SQLAlchemy has already compiled and cached.

Derived columns are resolved inside the same statement (no extra round trip): a row's ``user_id``
from the object's own ``metadata.user_id``, else the customer link, else (refunds and disputes,
which may name only a charge) the charge, else what the row already holds; an invoice's decline
reason from its newest failed charge, else the invoice's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Insert, Select, Update, and_, bindparam, func, select
from sqlalchemy import update as sql_update

from api.db.models import charges, customers
from api.db.models import payment_history as invoices
from api.db.sql import one_of
from api.projections.kinds import KINDS, Kind

__all__ = [
    "KindStatements",
    "adopt_charge_customer",
    "kind_statements",
    "params_for",
    "refresh_invoice_failures",
]

_NOT_WRITTEN = ("id", "updated_at")


@dataclass(frozen=True)
class KindStatements:
    select_current: Select[Any]
    """The stored rows of the keys bound as ``keys`` (a list)."""
    insert: Insert
    update: Update
    columns: tuple[str, ...]
    """Columns bound from row values (``p_<name>``)."""


def _scalar(column: Any, where: ColumnElement[bool]) -> Any:
    return select(column).where(where).limit(1).scalar_subquery()


def _newest_failed(column: Any, payment_intent: Any) -> Any:
    """``column`` of the newest failed charge of a payment intent (a function of the stored charges,
    so it does not depend on which event came first)."""
    failed = and_(charges.c.payment_intent_id == payment_intent, charges.c.status == "failed")
    order = (charges.c.created.desc(), charges.c.stripe_charge_id.desc())
    return select(column).where(failed).order_by(*order).limit(1).scalar_subquery()


def _first(*options: Any) -> Any:
    return func.coalesce(*options) if len(options) > 1 else options[0]


def _resolved(kind: Kind, bp: dict[str, BindParameter[Any]], *, existing: bool) -> dict[str, Any]:
    if kind.name == "customer":
        return {}
    table = kind.table
    own = [table.c.user_id] if existing else []
    resolved: dict[str, Any] = {}
    users = [
        bp["user_id"],
        _scalar(customers.c.user_id, customers.c.stripe_customer_id == bp["stripe_customer_id"]),
    ]
    if kind.name in ("refund", "dispute"):
        of_charge = charges.c.stripe_charge_id == bp["stripe_charge_id"]
        resolved["stripe_customer_id"] = _first(
            bp["stripe_customer_id"],
            _scalar(charges.c.stripe_customer_id, of_charge),
            *([table.c.stripe_customer_id] if existing else []),
        )
        users.append(_scalar(charges.c.user_id, of_charge))
    resolved["user_id"] = _first(*users, *own)
    if kind.name == "invoice":
        for name in ("failure_code", "failure_message"):
            resolved[name] = func.coalesce(_newest_failed(charges.c[name], bp["payment_intent_id"]), bp[name])
    return resolved


@cache
def kind_statements(kind_name: str, dialect: str) -> KindStatements:
    kind = KINDS[kind_name]
    table = kind.table
    columns = tuple(c.name for c in table.c if c.name not in _NOT_WRITTEN)
    bp = {name: bindparam(f"p_{name}", type_=table.c[name].type) for name in columns}
    key = table.c[kind.key]
    insert_values: dict[str, Any] = {name: bp[name] for name in columns}
    insert_values.update(_resolved(kind, bp, existing=False))
    update_values: dict[str, Any] = {name: bp[name] for name in columns if name != kind.key}
    update_values.update(_resolved(kind, bp, existing=True))
    if kind.name == "customer":
        # The customer's user link is written by the link step alone, which also hands the
        # customer's other rows to that user.
        insert_values["user_id"] = None
        del update_values["user_id"]
    return KindStatements(
        select_current=select(table).where(one_of(key, "keys", dialect)),
        insert=table.insert().values(insert_values),
        update=sql_update(table).where(key == bp[kind.key]).values(update_values),
        columns=columns,
    )


def params_for(statements: KindStatements, values: dict[str, Any], event_id: str, created: int) -> dict[str, Any]:
    """Bind values for a row: every column, with the watermark of the event it reflects."""
    row = {**values, "last_event_id": event_id, "last_event_created": created}
    return {f"p_{name}": row.get(name) for name in statements.columns}


@cache
def refresh_invoice_failures(dialect: str) -> Update:
    """Re-derive the decline reason of the invoices paid through the payment intents bound as
    ``intents``."""
    return (
        sql_update(invoices)
        .where(one_of(invoices.c.payment_intent_id, "intents", dialect))
        .values(
            {
                name: func.coalesce(_newest_failed(charges.c[name], invoices.c.payment_intent_id), invoices.c[name])
                for name in ("failure_code", "failure_message")
            }
        )
    )


@cache
def adopt_charge_customer(kind_name: str, dialect: str) -> Update:
    """Give refunds or disputes that named only a charge (one of those bound as ``charges``) the
    charge's customer and user."""
    table = KINDS[kind_name].table
    of_charge = charges.c.stripe_charge_id == table.c.stripe_charge_id
    return (
        sql_update(table)
        .where(
            and_(
                one_of(table.c.stripe_charge_id, "charges", dialect),
                table.c.stripe_customer_id.is_(None),
            )
        )
        .values(
            stripe_customer_id=_scalar(charges.c.stripe_customer_id, of_charge),
            user_id=func.coalesce(table.c.user_id, _scalar(charges.c.user_id, of_charge)),
        )
    )
