"""Applies Stripe events to the projection tables. Live processing, the retry worker and replay all
call :func:`apply_events`, so they cannot disagree.

Every object row keeps the watermark of the event it reflects; an event changes a row only when
:func:`api.projections.ordering.newest` says its snapshot is newer, so delivery order and
duplicates never change the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ARRAY, Text, and_, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.models import charges, customers, disputes, refunds
from api.db.models import payment_history as invoices
from api.db.models import user_subscriptions as subscriptions
from api.db.sql import one_of
from api.events.log import events_about, insert_service_event
from api.events.model import ParsedEvent
from api.projections import stripe_objects as so
from api.projections.kinds import KINDS, Kind
from api.projections.ordering import Snapshot, newest
from api.projections.statements import (
    adopt_charge_customer,
    kind_statements,
    params_for,
    refresh_invoice_failures,
)

__all__ = [
    "HANDLED_TYPES",
    "PROJECTION_TABLES",
    "apply_events",
    "current_objects",
    "handles",
    "lock_keys",
    "take_locks",
]

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
"""Everything :func:`apply_events` writes, and so everything replay rebuilds."""

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


async def take_locks(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise concurrent work on the same customers: PostgreSQL advisory locks, taken in sorted
    order in one statement and released at commit. (SQLite already runs one writer at a time.)"""
    ordered = sorted(set(keys))
    if conn.dialect.name != "postgresql" or not ordered:
        return
    await conn.execute(_LOCK_KEYS, {"keys": ordered})


_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM (SELECT unnest(:keys) AS k ORDER BY 1) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(Text())))


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


async def current_objects(conn: AsyncConnection, object_ids: Sequence[str]) -> dict[str, Snapshot]:
    """The newest logged snapshot of each object (customers, subscriptions, ...), chosen by the same
    rule as the projections: what Stripe last told us each object looks like, and when."""
    wanted = set(object_ids)
    snapshots: dict[str, list[Snapshot]] = {}
    for event in await events_about(conn, sorted(wanted)):
        if not handles(event):
            continue
        for candidate in _candidates(event):
            key = candidate.kind.key_of(candidate.values)
            if key in wanted:
                snapshots.setdefault(key, []).append(candidate.snapshot)
    return {key: newest(snaps) for key, snaps in snapshots.items()}


# Kinds are written in this order so that the subqueries of later kinds see earlier rows: refunds
# and disputes find their charge's customer, invoices their newest failed charge.
_WRITE_ORDER = ("customer", "charge", "refund", "dispute", "invoice", "subscription")


async def apply_events(conn: AsyncConnection, batch: Sequence[ParsedEvent], *, escalation_attempts: int = 3) -> None:
    """Apply stored Stripe events to the projections, with their locks held. The result is the
    same as applying them one at a time in any order: each object ends as the newest of its stored
    row and the batch's snapshots of it. Reads and writes go a kind at a time (one statement for
    the current rows, one for the inserts, one for the updates), not an event at a time."""
    by_object: dict[tuple[str, str], list[_Candidate]] = {}
    claims: dict[str, str] = {}  # customer -> the first user a checkout or subscription names
    for event in batch:
        if event.object_type == "checkout.session":
            user, customer = so.user_id_claim(event.obj), event.customer_id
            if user and customer:
                claims.setdefault(customer, user)
            continue
        for candidate in _candidates(event):
            by_object.setdefault((candidate.kind.name, candidate.kind.key_of(candidate.values)), []).append(candidate)
            values = candidate.values
            if candidate.kind.name == "subscription" and values.get("user_id") and values.get("stripe_customer_id"):
                claims.setdefault(values["stripe_customer_id"], values["user_id"])
    written: list[tuple[_Candidate, Any]] = []  # (what was written, the row it replaced or None)
    for kind_name in _WRITE_ORDER:
        keys = [key for name, key in by_object if name == kind_name]
        if keys:
            written.extend(
                await _apply_kind(conn, KINDS[kind_name], {key: by_object[(kind_name, key)] for key in keys})
            )
    await _after_writes(conn, written)
    owners = {
        c.values["stripe_customer_id"]: c.values["user_id"]
        for c, _ in written
        if c.kind.name == "customer" and c.values.get("user_id")
    }
    await _link_users(conn, owners, claims)
    for event in batch:
        await _record_escalations(conn, event, escalation_attempts)


async def _apply_kind(
    conn: AsyncConnection, kind: Kind, incoming: dict[str, list[_Candidate]]
) -> list[tuple[_Candidate, Any]]:
    """Write, for each object of one kind, the newest of its stored row and the batch's snapshots."""
    statements = kind_statements(kind.name, conn.dialect.name)
    found = await conn.execute(statements.select_current, {"keys": list(incoming)})
    current = {row[kind.key]: row for row in found.mappings()}
    decided: dict[str, _Candidate | None] = {}
    recheck: dict[str, dict[str, _Candidate]] = {}
    for key, candidates in incoming.items():
        row = current.get(key)
        top = max(c.snapshot.order_key for c in candidates)
        contenders = [c for c in candidates if c.snapshot.order_key == top]
        current_key = (kind.terminal(row), row["last_event_created"]) if row is not None else None
        if len(contenders) == 1 and (current_key is None or current_key < top):
            decided[key] = contenders[0]  # newer than anything stored, alone in its second
        else:
            # A second shared with another snapshot, or a late one that may be the state another
            # second's chain starts from: decide over every stored snapshot of the object.
            recheck[key] = {c.snapshot.event_id: c for c in candidates}
    if recheck:
        probes = [next(iter(group.values())) for group in recheck.values()]
        object_ids = [object_id for probe in probes for object_id in _group_object_ids(probe)]
        for event in await events_about(conn, sorted(set(object_ids))):
            if not handles(event):
                continue
            for c in _candidates(event):
                key = c.kind.key_of(c.values)
                if c.kind is kind and key in recheck:
                    recheck[key].setdefault(c.snapshot.event_id, c)
        for key, group in recheck.items():
            decided[key] = group[newest(c.snapshot for c in group.values()).event_id]
    written: list[tuple[_Candidate, Any]] = []
    for key, winner in decided.items():
        row = current.get(key)
        if winner is not None and (row is None or winner.snapshot.event_id != row["last_event_id"]):
            written.append((winner, row))
    for statement, new_rows in ((statements.insert, True), (statements.update, False)):
        chosen = [c for c, row in written if (row is None) == new_rows]
        if chosen:
            params = [params_for(statements, c.values, c.snapshot.event_id, c.snapshot.created) for c in chosen]
            await conn.execute(statement, params)
    return written


async def _after_writes(conn: AsyncConnection, written: list[tuple[_Candidate, Any]]) -> None:
    adopting: list[str] = []
    failed_intents: list[str] = []
    for candidate, replaced in written:
        kind, values = candidate.kind, candidate.values
        if kind.name == "charge":
            if replaced is None or replaced["stripe_customer_id"] is None:
                adopting.append(values["stripe_charge_id"])
            if values.get("payment_intent_id") and values.get("status") == "failed":
                failed_intents.append(values["payment_intent_id"])
    if adopting:  # refunds and disputes stored before their charge's customer was known learn it now
        for name in ("refund", "dispute"):
            await conn.execute(adopt_charge_customer(name, conn.dialect.name), {"charges": adopting})
    if failed_intents:
        await conn.execute(refresh_invoice_failures(conn.dialect.name), {"intents": failed_intents})


async def _link_users(conn: AsyncConnection, owners: dict[str, str], claims: dict[str, str]) -> None:
    """Record which user each customer belongs to, and give that user the customer's rows that had
    none. ``owners`` come from customers' own ``metadata.user_id`` and win, whatever their order;
    ``claims`` (checkout sessions, subscriptions) only fill a missing link."""
    if not owners and not claims:
        return
    found = await conn.execute(_links_statement(conn.dialect.name), {"customers": sorted(set(owners) | set(claims))})
    existing = {row.stripe_customer_id: row.user_id for row in found}
    fills = {customer: user for customer, user in owners.items() if existing.get(customer) is None}
    for customer, user in claims.items():
        if customer not in owners and existing.get(customer) is None:
            fills[customer] = user
    if fills:
        params = [{"customer": customer, "user": user} for customer, user in fills.items()]
        claimed = await conn.execute(_claim_statement(conn.dialect.name), params)
        linked = sorted({row.stripe_customer_id for row in claimed})
        if linked:
            for table in _OWNED_BY_CUSTOMER:
                await conn.execute(_adopt_link_statement(table, conn.dialect.name), {"customers": linked})
    for customer, user in owners.items():
        previous = existing.get(customer)
        if previous is not None and previous != user:
            await _replace_link(conn, customer, previous, user)


async def _replace_link(conn: AsyncConnection, customer_id: str, previous: str, user_id: str) -> None:
    """The customer's own metadata names another user than the link had: move the link, and the
    rows that had the old user or none."""
    await conn.execute(update(customers).where(customers.c.stripe_customer_id == customer_id).values(user_id=user_id))
    for table in _OWNED_BY_CUSTOMER:
        await conn.execute(
            update(table)
            .where(
                and_(
                    table.c.stripe_customer_id == customer_id,
                    or_(table.c.user_id.is_(None), table.c.user_id == previous),
                )
            )
            .values(user_id=user_id)
        )


@cache
def _adopt_link_statement(table: Any, dialect: str) -> Any:
    """Give the rows without a user, of the customers bound as ``customers``, their customer's user."""
    owner = select(customers.c.user_id).where(customers.c.stripe_customer_id == table.c.stripe_customer_id)
    return (
        update(table)
        .where(and_(one_of(table.c.stripe_customer_id, "customers", dialect), table.c.user_id.is_(None)))
        .values(user_id=owner.scalar_subquery())
    )


@cache
def _links_statement(dialect: str) -> Any:
    return select(customers.c.stripe_customer_id, customers.c.user_id).where(
        one_of(customers.c.stripe_customer_id, "customers", dialect)
    )


@cache
def _claim_statement(dialect: str) -> Any:
    """Insert the link, or fill a missing user on an existing row; returns a row only when it did.
    A row known only through a claim has no snapshot (empty id, watermark 0): any real customer
    snapshot wins, and the row does not depend on which claim came first."""
    module = sqlite if dialect == "sqlite" else postgresql
    stmt = module.insert(customers).values(
        stripe_customer_id=bindparam("customer"),
        user_id=bindparam("user"),
        deleted=False,
        last_event_id="",
        last_event_created=0,
    )
    return stmt.on_conflict_do_update(
        index_elements=[customers.c.stripe_customer_id],
        set_={"user_id": stmt.excluded.user_id},
        where=customers.c.user_id.is_(None),
    ).returning(customers.c.stripe_customer_id)


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
