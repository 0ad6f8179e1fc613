"""Prebuilt SQL for the projections: built once per kind with bind parameters, so the webhook hot
path only binds values to statements SQLAlchemy has already compiled and cached.

Each row keeps what its object's newest snapshot says, and the values it takes from other rows
are derived inside the statement that writes it, from those rows as they are now:

- ``user_id``: its customer's user (the customer's own ``metadata.user_id``, else the earliest
  claim: a checkout session or a subscription naming a user), else the object's own
  ``metadata_user_id``, else (refunds and disputes, which name only a charge) the charge's user;
- a refund's or dispute's ``stripe_customer_id``: its charge's customer once the charge is known,
  else its own;
- an invoice's ``failure_code`` and ``failure_message``: those of the newest failed charge among
  the payments linked to the invoice, else the invoice's own.

When the other side changes, the ``rederive_*`` statements write the same expressions again, so a
derived value is a function of the stored rows, never of which event arrived first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy import update as sql_update

from api.db.dialects import insert, one_of
from api.db.models import charges, customers, invoice_payments
from api.db.models import payment_history as invoices
from api.projections.kinds import KINDS

__all__ = [
    "KindStatements",
    "claim_users",
    "invoices_paid_by",
    "kind_statements",
    "link_users",
    "params_for",
    "rederive_charge_dependents",
    "rederive_invoice_failures",
    "rederive_users",
]

_NOT_WRITTEN = ("id", "updated_at")
_DERIVED: dict[str, tuple[str, ...]] = {
    # The customer's user is written by the link step alone (claims and metadata together).
    "customer": ("user_id", "claim_user_id", "claim_created", "claim_event_id"),
}
_FAILURE = ("failure_code", "failure_message")


@dataclass(frozen=True)
class KindStatements:
    select_current: Select[Any]
    """The stored rows of the keys bound as ``keys`` (a list)."""
    insert: Insert
    update: Update
    columns: tuple[str, ...]
    """Columns bound from row values (``p_<name>``)."""


def _scalar(column: Any, where: ColumnElement[bool]) -> Any:
    # Correlated to whatever encloses it (the row being written), at any depth.
    return select(column).where(where).limit(1).correlate_except(column.table).scalar_subquery()


def _user_of_customer(customer: Any) -> Any:
    return _scalar(customers.c.user_id, customers.c.stripe_customer_id == customer)


def _customer_of_charge(charge: Any, own: Any) -> Any:
    """The charge's customer once the charge is stored (even none), else ``own``."""
    of_charge = charges.c.stripe_charge_id == charge
    return case(
        (exists().where(of_charge), _scalar(charges.c.stripe_customer_id, of_charge)),
        else_=own,
    )


def _user(metadata_user: Any, customer: Any, charge: Any | None) -> Any:
    options = [_user_of_customer(customer), metadata_user]
    if charge is not None:
        options.append(_scalar(charges.c.user_id, charges.c.stripe_charge_id == charge))
    return func.coalesce(*options)


def _newest_failed(column: Any, invoice_id: BindParameter[Any]) -> Any:
    """``column`` of the newest failed charge among the payments linked to the invoice bound as
    ``invoice_id``: those of its payment intents, and charges linked by id (versions before payment
    intents). Two equi-joins the indexes answer, rather than one join on an OR, which PostgreSQL
    could only answer by scanning the charges."""
    linked = invoice_payments.c.stripe_invoice_id == invoice_id
    failed = charges.c.status == "failed"
    branches = [
        select(column.label("value"), charges.c.created, charges.c.stripe_charge_id)
        .select_from(charges.join(invoice_payments, on))
        .where(and_(linked, failed))
        for on in (
            charges.c.payment_intent_id == invoice_payments.c.payment_intent_id,
            charges.c.stripe_charge_id == invoice_payments.c.stripe_charge_id,
        )
    ]
    found = union_all(*branches).subquery()
    order = (found.c.created.desc(), found.c.stripe_charge_id.desc())
    return select(found.c.value).order_by(*order).limit(1).scalar_subquery()


def _failures(invoice_id: BindParameter[Any], own: dict[str, Any]) -> dict[str, Any]:
    return {name: func.coalesce(_newest_failed(charges.c[name], invoice_id), own[name]) for name in _FAILURE}


def _resolved(kind_name: str, bp: dict[str, BindParameter[Any]]) -> dict[str, Any]:
    """Derived columns of a row being written, from its bound values and the other rows."""
    if kind_name in ("subscription", "invoice", "charge"):
        resolved = {"user_id": _user(bp["metadata_user_id"], bp["stripe_customer_id"], None)}
        if kind_name == "invoice":
            own = {name: bp[f"own_{name}"] for name in _FAILURE}
            resolved.update(_failures(bp["stripe_invoice_id"], own))
        return resolved
    if kind_name in ("refund", "dispute"):
        customer = _customer_of_charge(bp["stripe_charge_id"], bp["stripe_customer_id"])
        return {
            "stripe_customer_id": customer,
            "user_id": _user(bp["metadata_user_id"], customer, bp["stripe_charge_id"]),
        }
    return {}


@cache
def kind_statements(kind_name: str, dialect: str) -> KindStatements:
    kind = KINDS[kind_name]
    table = kind.table
    derived = _DERIVED.get(kind_name, ())
    columns = tuple(c.name for c in table.c if c.name not in _NOT_WRITTEN and c.name not in derived)
    bp = {name: bindparam(f"p_{name}", type_=table.c[name].type) for name in columns}
    key = table.c[kind.key]
    insert_values: dict[str, Any] = {name: bp[name] for name in columns}
    insert_values.update(_resolved(kind_name, bp))
    update_values = {name: value for name, value in insert_values.items() if name != kind.key}
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
def claim_users(dialect: str) -> Any:
    """Record a claim (``c_customer``, ``c_user``, ``c_created``, ``c_event_id``) on the customer's row,
    creating a row without a snapshot (empty id, watermark 0) if there is none; the earliest claim
    by (``created``, event id) is kept, so the result does not depend on arrival order."""
    stmt = insert(customers, dialect).values(
        stripe_customer_id=bindparam("c_customer"),
        claim_user_id=bindparam("c_user"),
        claim_created=bindparam("c_created"),
        claim_event_id=bindparam("c_event_id"),
        deleted=False,
        last_event_id="",
        last_event_created=0,
    )
    new, old = stmt.excluded, customers.c
    earlier = or_(
        old.claim_created.is_(None),
        new.claim_created < old.claim_created,
        and_(new.claim_created == old.claim_created, new.claim_event_id < old.claim_event_id),
    )
    return stmt.on_conflict_do_update(
        index_elements=[customers.c.stripe_customer_id],
        set_={name: new[name] for name in ("claim_user_id", "claim_created", "claim_event_id")},
        where=earlier,
    )


@cache
def link_users(dialect: str) -> Update:
    """Give the customers bound as ``customers`` the user due to them (the newest snapshot's
    ``metadata.user_id``, else the earliest claim's user); returns those whose user changed."""
    due = func.coalesce(customers.c.metadata_user_id, customers.c.claim_user_id)
    return (
        sql_update(customers)
        .where(
            and_(
                one_of(customers.c.stripe_customer_id, "customers", dialect), customers.c.user_id.is_distinct_from(due)
            )
        )
        .values(user_id=due)
        .returning(customers.c.stripe_customer_id)
    )


@cache
def rederive_users(kind_name: str, dialect: str) -> Update:
    """Write again the ``user_id`` of the rows of the customers bound as ``customers``."""
    table = KINDS[kind_name].table
    charge = table.c.stripe_charge_id if kind_name in ("refund", "dispute") else None
    return (
        sql_update(table)
        .where(one_of(table.c.stripe_customer_id, "customers", dialect))
        .values(user_id=_user(table.c.metadata_user_id, table.c.stripe_customer_id, charge))
    )


@cache
def rederive_charge_dependents(kind_name: str, dialect: str) -> Update:
    """Write again the customer and user of the refunds or disputes of the charges bound as
    ``charges`` (the charges are stored, so the customer is theirs)."""
    table = KINDS[kind_name].table
    customer = _scalar(charges.c.stripe_customer_id, charges.c.stripe_charge_id == table.c.stripe_charge_id)
    return (
        sql_update(table)
        .where(one_of(table.c.stripe_charge_id, "charges", dialect))
        .values(
            stripe_customer_id=customer,
            user_id=_user(table.c.metadata_user_id, customer, table.c.stripe_charge_id),
        )
    )


@cache
def invoices_paid_by(dialect: str) -> Select[Any]:
    """Invoices linked to the payment intents bound as ``intents`` or the charges bound as ``charges``."""
    return (
        select(invoice_payments.c.stripe_invoice_id)
        .where(
            or_(
                one_of(invoice_payments.c.payment_intent_id, "intents", dialect),
                one_of(invoice_payments.c.stripe_charge_id, "charges", dialect),
            )
        )
        .distinct()
    )


@cache
def rederive_invoice_failures(dialect: str) -> Update:
    """Write again the decline reason of an invoice (executed once per invoice, bound as
    ``r_invoice``: a bind parameter, not a correlation, keeps the lookup on the indexes)."""
    invoice = bindparam("r_invoice", type_=invoices.c.stripe_invoice_id.type)
    own = {name: invoices.c[f"own_{name}"] for name in _FAILURE}
    return sql_update(invoices).where(invoices.c.stripe_invoice_id == invoice).values(_failures(invoice, own))
