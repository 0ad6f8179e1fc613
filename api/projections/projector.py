"""Applies Stripe events to the projection tables. Live processing, the retry worker and replay all
call :func:`apply_event`, so they cannot disagree.

Every object row keeps the watermark of the event it reflects; an event changes a row only when
:func:`api.projections.ordering.newest` says its snapshot is newer, so delivery order and
duplicates never change the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.models import charges, customers, disputes, refunds
from api.db.models import payment_history as invoices
from api.db.models import user_subscriptions as subscriptions
from api.events.log import events_for_objects, insert_service_event
from api.events.model import ParsedEvent
from api.projections import stripe_objects as so
from api.projections.kinds import KINDS, Kind
from api.projections.ordering import Snapshot, newest

__all__ = ["HANDLED_TYPES", "PROJECTION_TABLES", "apply_event", "handles", "lock_keys", "take_locks"]

HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.marked_uncollectible",
        "invoice.voided",
        "charge.succeeded",
        "charge.failed",
        "charge.captured",
        "charge.updated",
        "charge.refunded",
        "charge.refund.updated",
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)


PROJECTION_TABLES = (customers, subscriptions, invoices, charges, refunds, disputes)
"""Everything :func:`apply_event` writes, and so everything replay rebuilds."""

_OWNED_BY_CUSTOMER = (subscriptions, invoices, charges, refunds, disputes)

ESCALATION_EVENT = "billing.payment_escalated"


def handles(event: ParsedEvent) -> bool:
    """True when the event type changes projections (others are stored as ``ignored``)."""
    return event.type in HANDLED_TYPES and event.object_id is not None


def lock_keys(event: ParsedEvent) -> list[str]:
    """What a transaction applying ``event`` must hold exclusively: the customer, and for charge,
    refund and dispute events the charge (a dispute names no customer). Taken in sorted order, so
    two transactions can never wait on each other in a cycle."""
    keys = {key for key in (event.customer_id, event.charge_id) if key}
    if not keys and event.object_id:
        keys.add(event.object_id)
    return sorted(keys)


async def take_locks(conn: AsyncConnection, event: ParsedEvent) -> None:
    """Serialise concurrent events for one customer (PostgreSQL advisory locks, released at commit;
    SQLite already runs one writer at a time)."""
    if conn.dialect.name != "postgresql":
        return
    for key in lock_keys(event):
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


@dataclass(frozen=True)
class _Candidate:
    kind: Kind
    snapshot: Snapshot
    values: dict[str, Any]


def _candidate(kind: Kind, event: ParsedEvent, obj: dict[str, Any], previous: dict[str, Any]) -> _Candidate:
    values = kind.row(obj, event.type)
    snap = Snapshot(
        event_id=event.event_id,
        created=event.created,
        event_type=event.type,
        obj=obj,
        previous_attributes=previous,
        terminal=kind.terminal(values),
        rank=kind.rank(values),
    )
    return _Candidate(kind, snap, values)


def _candidates(event: ParsedEvent) -> list[_Candidate]:
    """The object snapshots an event carries: its ``data.object`` and, for a charge, its refunds."""
    kind = KINDS.get(event.object_type or "")
    if kind is None:
        return []
    found = [_candidate(kind, event, event.obj, event.previous_attributes)]
    if kind.name == "charge":
        refund_list = event.obj.get("refunds")
        items = refund_list.get("data") if isinstance(refund_list, dict) else None
        for refund in items or []:
            if isinstance(refund, dict) and isinstance(refund.get("id"), str):
                found.append(_candidate(KINDS["refund"], event, refund, {}))
    return found


def _group_object_ids(candidate: _Candidate) -> list[str]:
    """Log ``object_id`` values whose events may carry a snapshot of this object."""
    ids = [candidate.kind.key_of(candidate.values)]
    if candidate.kind.name == "refund" and candidate.values.get("stripe_charge_id"):
        ids.append(candidate.values["stripe_charge_id"])
    return ids


async def apply_event(conn: AsyncConnection, event: ParsedEvent, *, escalation_attempts: int = 3) -> None:
    """Apply one stored Stripe event to the projections. Call with the event's locks held."""
    if event.object_type == "checkout.session":
        user = so.user_id_claim(event.obj)
        customer = event.customer_id
        if user and customer:
            await _link_user(conn, customer, user, authoritative=False)
        return
    for candidate in _candidates(event):
        applied = await _apply_candidate(conn, candidate)
        await _after_apply(conn, candidate, event, applied)
    await _record_escalations(conn, event, escalation_attempts)


async def _apply_candidate(conn: AsyncConnection, candidate: _Candidate) -> _Candidate | None:
    """Write the candidate (or the newest of its tie group) if it is newer than the stored row.
    Returns what was written, or None when the row already reflects something newer."""
    kind, snap = candidate.kind, candidate.snapshot
    table = kind.table
    key = kind.key_of(candidate.values)
    current = (await conn.execute(select(table).where(table.c[kind.key] == key))).mappings().first()
    if current is None:
        await _write(conn, candidate, insert=True)
        return candidate
    current_key = (kind.terminal(current), current["last_event_created"])
    if snap.order_key < current_key:
        return None
    if snap.order_key == current_key:
        if snap.event_id == current["last_event_id"]:
            return None
        # Same second: decide among every stored snapshot of this object from that second.
        group = [candidate]
        for stored in await events_for_objects(conn, _group_object_ids(candidate), snap.created):
            group.extend(c for c in _candidates(stored) if c.kind is kind and c.kind.key_of(c.values) == key)
        by_event = {c.snapshot.event_id: c for c in group}
        winner = by_event[newest(c.snapshot for c in group).event_id]
        if winner.snapshot.event_id == current["last_event_id"]:
            return None
        candidate = winner
    await _write(conn, candidate, insert=False)
    return candidate


def _scalar(column: Any, where: ColumnElement[bool]) -> Any:
    return select(column).where(where).limit(1).scalar_subquery()


def _resolved_columns(candidate: _Candidate, *, existing: bool) -> dict[str, Any]:
    """``user_id`` (and a missing ``stripe_customer_id``) resolved from the tables that know them,
    in SQL, so no extra round trip: the object's own ``metadata.user_id`` first, then the customer
    link, then (for refunds and disputes, which may name only a charge) the charge, then the value
    the row already has."""
    kind, values = candidate.kind, candidate.values
    table = kind.table
    if kind.name == "customer":
        return {}  # the customer's user link is managed by _link_user alone
    meta_user = values.get("user_id")
    customer = values.get("stripe_customer_id")
    charge_id = values.get("stripe_charge_id") if kind.name in ("refund", "dispute") else None
    users: list[Any] = [literal(meta_user)] if meta_user else []
    resolved: dict[str, Any] = {}
    if customer:
        users.append(_scalar(customers.c.user_id, customers.c.stripe_customer_id == customer))
    elif charge_id:
        customers_of_charge = [_scalar(charges.c.stripe_customer_id, charges.c.stripe_charge_id == charge_id)]
        if existing:
            customers_of_charge.append(table.c.stripe_customer_id)
        resolved["stripe_customer_id"] = _first_of(customers_of_charge)
    if charge_id:
        users.append(_scalar(charges.c.user_id, charges.c.stripe_charge_id == charge_id))
    if existing:
        users.append(table.c.user_id)
    resolved["user_id"] = _first_of(users)
    return resolved


def _first_of(options: list[Any]) -> Any:
    if not options:
        return None
    return func.coalesce(*options) if len(options) > 1 else options[0]


async def _write(conn: AsyncConnection, candidate: _Candidate, *, insert: bool) -> None:
    kind, values, snap = candidate.kind, dict(candidate.values), candidate.snapshot
    table = kind.table
    if kind.name == "customer":
        values.pop("user_id")
    values.update(last_event_id=snap.event_id, last_event_created=snap.created)
    values.update(_resolved_columns(candidate, existing=not insert))
    if insert:
        await conn.execute(table.insert().values(**values))
    else:
        key = values.pop(kind.key)
        await conn.execute(update(table).where(table.c[kind.key] == key).values(**values))
    if kind.name == "invoice":
        await _refresh_invoice_failure(
            conn, invoices.c.stripe_invoice_id == candidate.values["stripe_invoice_id"]
        )


async def _after_apply(
    conn: AsyncConnection, candidate: _Candidate, event: ParsedEvent, applied: _Candidate | None
) -> None:
    kind, values = candidate.kind, candidate.values
    if kind.name == "customer":
        # The customer's own metadata.user_id is the authoritative link, whatever its order.
        if applied is not None and applied.values.get("user_id"):
            await _link_user(
                conn, applied.values["stripe_customer_id"], applied.values["user_id"], authoritative=True
            )
        return
    if kind.name == "subscription" and values.get("user_id") and values.get("stripe_customer_id"):
        await _link_user(conn, values["stripe_customer_id"], values["user_id"], authoritative=False)
    if kind.name == "charge" and applied is not None:
        charge_id = values["stripe_charge_id"]
        for table in (refunds, disputes):
            await conn.execute(
                update(table)
                .where(and_(table.c.stripe_charge_id == charge_id, table.c.stripe_customer_id.is_(None)))
                .values(
                    stripe_customer_id=_scalar(
                        charges.c.stripe_customer_id, charges.c.stripe_charge_id == charge_id
                    ),
                    user_id=func.coalesce(
                        table.c.user_id, _scalar(charges.c.user_id, charges.c.stripe_charge_id == charge_id)
                    ),
                )
            )
        if values.get("payment_intent_id") and values.get("status") == "failed":
            await _refresh_invoice_failure(conn, invoices.c.payment_intent_id == values["payment_intent_id"])


async def _refresh_invoice_failure(conn: AsyncConnection, which: ColumnElement[bool]) -> None:
    """An invoice's decline reason comes from its newest failed charge when one is known (a
    function of the stored charges, so it does not depend on which event came first)."""
    newest_failed = (
        select(charges.c.failure_code, charges.c.failure_message)
        .where(
            and_(charges.c.payment_intent_id == invoices.c.payment_intent_id, charges.c.status == "failed")
        )
        .order_by(charges.c.created.desc(), charges.c.stripe_charge_id.desc())
        .limit(1)
    )
    code = newest_failed.with_only_columns(charges.c.failure_code).scalar_subquery()
    message = newest_failed.with_only_columns(charges.c.failure_message).scalar_subquery()
    await conn.execute(
        update(invoices)
        .where(and_(which, invoices.c.payment_intent_id.is_not(None)))
        .values(
            failure_code=func.coalesce(code, invoices.c.failure_code),
            failure_message=func.coalesce(message, invoices.c.failure_message),
        )
    )


async def _link_user(conn: AsyncConnection, customer_id: str, user_id: str, *, authoritative: bool) -> None:
    """Record that ``customer_id`` belongs to ``user_id`` and give that user every row of the
    customer that had none. A claim from a checkout session or a subscription fills a missing link;
    only the customer's own metadata replaces an existing one."""
    row = (
        await conn.execute(select(customers.c.user_id).where(customers.c.stripe_customer_id == customer_id))
    ).first()
    if row is None:
        # Known only through the claim so far: no snapshot (empty id, watermark 0), so any real
        # customer snapshot wins, and the row does not depend on which claim came first.
        await conn.execute(
            customers.insert().values(
                stripe_customer_id=customer_id,
                user_id=user_id,
                deleted=False,
                last_event_id="",
                last_event_created=0,
            )
        )
        previous = None
    elif row.user_id == user_id or (row.user_id is not None and not authoritative):
        return
    else:
        previous = row.user_id
        await conn.execute(
            update(customers).where(customers.c.stripe_customer_id == customer_id).values(user_id=user_id)
        )
    unowned = _unowned(previous)
    for table in _OWNED_BY_CUSTOMER:
        await conn.execute(
            update(table)
            .where(and_(table.c.stripe_customer_id == customer_id, unowned(table)))
            .values(user_id=user_id)
        )


def _unowned(previous: str | None) -> Any:
    def condition(table: Any) -> ColumnElement[bool]:
        if previous is None:
            return table.c.user_id.is_(None)  # type: ignore[no-any-return]
        return or_(table.c.user_id.is_(None), table.c.user_id == previous)

    return condition


async def _record_escalations(conn: AsyncConnection, event: ParsedEvent, attempts_threshold: int) -> None:
    """Log a ``billing.payment_escalated`` service event when an invoice's failed attempts reach the
    threshold, or a subscription turns ``unpaid``. Keyed by the causing event, so redelivery and
    replay never add a second one."""
    obj, previous = event.obj, event.previous_attributes
    reason: str | None = None
    details: dict[str, Any] = {}
    if event.type == "invoice.payment_failed":
        attempts = obj.get("attempt_count")
        before = previous.get("attempt_count")
        if (
            isinstance(attempts, int)
            and attempts >= attempts_threshold
            and (attempts == attempts_threshold or (isinstance(before, int) and before < attempts_threshold))
        ):
            reason = "payment_attempts"
            details = {
                "invoice": event.object_id,
                "subscription": so.invoice_subscription_id(obj),
                "attempt_count": attempts,
                "amount_due": obj.get("amount_due"),
                "currency": obj.get("currency"),
            }
    elif (
        event.object_type == "subscription"
        and obj.get("status") == "unpaid"
        and "status" in previous
        and previous["status"] != "unpaid"
    ):
        reason = "subscription_unpaid"
        details = {"subscription": event.object_id, "previous_status": previous["status"]}
    if reason is None:
        return
    await insert_service_event(
        conn,
        event_id=f"faddl_esc_{event.event_id}",
        event_type=ESCALATION_EVENT,
        created=event.created,
        data={
            "object": {
                "reason": reason,
                "customer": event.customer_id,
                "source_event": event.event_id,
                **details,
            }
        },
        object_id=event.object_id,
        customer_id=event.customer_id,
    )
