"""Locks with the log: what a transaction that stores and applies an event must hold, so that
concurrent deliveries about one customer, charge or invoice are applied one after the other."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.dialects import advisory_locks
from api.events.model import ParsedEvent
from api.stripe_objects import fields as so

__all__ = ["lock_keys", "take_locks"]


def lock_keys(event: ParsedEvent) -> list[str]:
    """What a transaction applying ``event`` must hold exclusively: the customer, for charge,
    refund and dispute events the charge (a dispute names no customer), and the invoice an invoice,
    invoice payment or charge event writes links of (an invoice payment names no customer). Taken
    in sorted order, so two transactions can never wait on each other in a cycle."""
    invoice = event.object_id if event.object_type == "invoice" else so.expandable_id(event.obj.get("invoice"))
    keys = {key for key in (event.customer_id, event.charge_id, invoice) if key}
    if not keys and event.object_id:
        keys.add(event.object_id)
    return sorted(keys)


async def take_locks(conn: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise concurrent work on the same customers, charges and invoices until commit."""
    await advisory_locks(conn, keys)
