"""Applies Stripe events to the projection tables. Live processing, the retry worker and replay all
call :func:`apply_events`, so they cannot disagree.

Every object row keeps the watermark of the event it reflects; an event changes a row only when
:func:`api.stripe_objects.ordering.newest` says its snapshot is newer, so delivery order and
duplicates never change the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.models import charges, customers, disputes, invoice_payments, refunds
from api.db.models import payment_history as invoices
from api.db.models import user_subscriptions as subscriptions
from api.events.log import events_about
from api.events.model import ParsedEvent
from api.projections.kinds import KINDS, Kind
from api.projections.statements import (
    invoices_paid_by,
    kind_statements,
    params_for,
    rederive_charge_dependents,
    rederive_invoice_failures,
)
from api.projections.users import Claim, add_claim, link_users_of
from api.stripe_objects import fields as so
from api.stripe_objects.ordering import Snapshot, newest

__all__ = [
    "HANDLED_TYPES",
    "PROJECTION_TABLES",
    "apply_events",
    "current_objects",
    "handles",
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
        "invoice.deleted",
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
        "invoice_payment.paid",
    }
)


PROJECTION_TABLES = (customers, subscriptions, invoices, invoice_payments, charges, refunds, disputes)
"""Everything :func:`apply_events` writes, and so everything replay rebuilds."""


def handles(event: ParsedEvent) -> bool:
    """True when the event type changes projections (others are stored as ``ignored``); every
    ``invoice_payment.*`` event is, since each carries the invoice payment as it now is."""
    handled = event.type in HANDLED_TYPES or event.type.startswith("invoice_payment.")
    return handled and event.object_id is not None


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
        for refund in so.refunds_of(event.obj):
            found.append(_candidate(KINDS["refund"], event, refund, {}))
    for payment in so.invoice_payments_of(event.obj):
        found.append(_candidate(KINDS["invoice_payment"], event, payment, {}))
    return found


def _stored_candidates(event: ParsedEvent) -> list[_Candidate]:
    """The snapshots of an event read back from the log; one refused when it arrived (a value the
    service cannot take) counts as none, as it did then."""
    if not handles(event):
        return []
    try:
        return _candidates(event)
    except so.InvalidObject:
        return []


def _group_object_ids(candidate: _Candidate) -> list[str]:
    """Log ``object_id`` values whose events may carry a snapshot of this object."""
    values = candidate.values
    ids = [candidate.kind.key_of(values)]
    if candidate.kind.name == "refund" and values.get("stripe_charge_id"):
        ids.append(values["stripe_charge_id"])
    if candidate.kind.name == "invoice_payment":
        ids.extend(value for value in (values["stripe_invoice_id"], values["stripe_charge_id"]) if value)
    return ids


async def current_objects(conn: AsyncConnection, object_ids: Sequence[str]) -> dict[str, Snapshot]:
    """The newest logged snapshot of each object (customers, subscriptions, ...), chosen by the same
    rule as the projections: what Stripe last told us each object looks like, and when."""
    wanted = set(object_ids)
    snapshots: dict[str, list[Snapshot]] = {}
    for event in await events_about(conn, sorted(wanted)):
        for candidate in _stored_candidates(event):
            key = candidate.kind.key_of(candidate.values)
            if key in wanted:
                snapshots.setdefault(key, []).append(candidate.snapshot)
    return {key: newest(snaps) for key, snaps in snapshots.items()}


# Kinds are written in this order so that the statements of later kinds see earlier rows:
# customers and their user links first, charges before the refunds and disputes that take their
# customer, invoice payments before the invoices whose decline reason they link to.
_WRITE_ORDER = ("customer", "charge", "refund", "dispute", "invoice_payment", "invoice", "subscription")


async def apply_events(conn: AsyncConnection, batch: Sequence[ParsedEvent]) -> None:
    """Apply stored Stripe events to the projections, with their locks held. The result is the
    same as applying them one at a time in any order: each object ends as the newest of its stored
    row and the batch's snapshots of it, and every derived value is written again from the rows it
    derives from. Reads and writes go a kind at a time (one statement for the current rows, one for
    the inserts, one for the updates), not an event at a time."""
    by_object: dict[tuple[str, str], list[_Candidate]] = {}
    claims: dict[str, Claim] = {}
    for event in batch:
        if event.object_type == "checkout.session":
            user, customer = so.user_id_claim(event.obj), event.customer_id
            if user and customer:
                add_claim(claims, customer, Claim(event.created, event.event_id, user))
            continue
        for candidate in _candidates(event):
            by_object.setdefault((candidate.kind.name, candidate.kind.key_of(candidate.values)), []).append(candidate)
            user, customer = candidate.values.get("metadata_user_id"), candidate.values.get("stripe_customer_id")
            if candidate.kind.name == "subscription" and user and customer:
                add_claim(claims, customer, Claim(event.created, event.event_id, user))
    written: dict[str, list[tuple[_Candidate, Any]]] = {}  # kind -> (what was written, the row it replaced)
    logged = _LoggedEvents()
    for kind_name in _WRITE_ORDER:
        keys = [key for name, key in by_object if name == kind_name]
        if keys:
            incoming = {key: by_object[(kind_name, key)] for key in keys}
            written[kind_name] = await _apply_kind(conn, KINDS[kind_name], incoming, logged)
        if kind_name == "customer":
            touched = {c.kind.key_of(c.values) for c, _ in written.get("customer", [])}
            await link_users_of(conn, touched, claims)
        elif kind_name == "charge" and written.get("charge"):
            # Refunds and disputes take the charge's customer and user: again where those may
            # have changed (a new charge, or another customer or user than the row it replaced).
            charge_ids = [
                c.kind.key_of(c.values)
                for c, replaced in written["charge"]
                if replaced is None
                or replaced["stripe_customer_id"] != c.values["stripe_customer_id"]
                or replaced["metadata_user_id"] != c.values["metadata_user_id"]
            ]
            if charge_ids:
                for name in ("refund", "dispute"):
                    await conn.execute(rederive_charge_dependents(name, conn.dialect.name), {"charges": charge_ids})
    await _rederive_invoice_failures(conn, written)


class _LoggedEvents:
    """The logged events about objects, read once per batch: an invoice's events serve its own
    re-decision and that of the invoice payments they carry. (The batch is in the log already.)"""

    def __init__(self) -> None:
        self._about: dict[str, list[ParsedEvent]] = {}

    async def about(self, conn: AsyncConnection, object_ids: set[str]) -> list[ParsedEvent]:
        missing = sorted(object_ids - self._about.keys())
        if missing:
            for object_id in missing:
                self._about[object_id] = []
            for event in await events_about(conn, missing):
                if event.object_id is not None:
                    self._about[event.object_id].append(event)
        return [event for object_id in sorted(object_ids) for event in self._about[object_id]]


async def _apply_kind(
    conn: AsyncConnection, kind: Kind, incoming: dict[str, list[_Candidate]], logged: _LoggedEvents
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
        for event in await logged.about(conn, set(object_ids)):
            for c in _stored_candidates(event):
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


async def _rederive_invoice_failures(conn: AsyncConnection, written: dict[str, list[tuple[_Candidate, Any]]]) -> None:
    """Invoices whose linked payments changed, or whose charges did, get their decline reason again."""
    invoice_ids = {c.values["stripe_invoice_id"] for c, _ in written.get("invoice_payment", [])}
    intents: set[str] = set()
    charge_ids: set[str] = set()
    for candidate, replaced in written.get("charge", []):
        # Only a failed charge (now or before this write) is anyone's decline reason.
        if candidate.values["status"] != "failed" and (replaced is None or replaced["status"] != "failed"):
            continue
        charge_ids.add(candidate.values["stripe_charge_id"])
        for row in (candidate.values, replaced):
            if row is not None and row["payment_intent_id"]:
                intents.add(row["payment_intent_id"])
    if intents or charge_ids:
        found = await conn.execute(
            invoices_paid_by(conn.dialect.name), {"intents": sorted(intents), "charges": sorted(charge_ids)}
        )
        invoice_ids.update(found.scalars())
    invoice_ids -= {c.values["stripe_invoice_id"] for c, _ in written.get("invoice", [])}  # derived as written
    if invoice_ids:
        await conn.execute(
            rederive_invoice_failures(conn.dialect.name), [{"r_invoice": invoice} for invoice in sorted(invoice_ids)]
        )
