"""Payment escalation: when an invoice's failed attempts reach ``ESCALATION_ATTEMPTS``, or a
subscription turns ``unpaid``, a ``billing.payment_escalated`` service event goes to the log (the
business alerts and the dashboard read it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.events.log import insert_service_event
from api.events.model import ParsedEvent
from api.stripe_objects import fields as so

__all__ = ["ESCALATION_EVENT", "record_escalation", "record_escalations"]

ESCALATION_EVENT = "billing.payment_escalated"


async def record_escalations(conn: AsyncConnection, batch: Sequence[ParsedEvent], attempts_threshold: int) -> None:
    """Run the policy over a batch of applied events."""
    for event in batch:
        await record_escalation(conn, event, attempts_threshold)


async def record_escalation(conn: AsyncConnection, event: ParsedEvent, attempts_threshold: int) -> None:
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
