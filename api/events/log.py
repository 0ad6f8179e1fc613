"""Reads and writes of the event log (``subscription_events``): the one door to it. Every
statement on the table, from any layer, is a function here, and statuses are :class:`EventStatus`.

The payload of a row never changes once written; processing only moves ``status``, ``attempts``,
``last_error``, ``next_retry_at`` and ``processed_at``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.dialects import for_update, insert, one_of, utc
from api.db.models import subscription_events as events
from api.events.model import STRIPE_SOURCES, ParsedEvent, parse_event

__all__ = [
    "STRIPE_SOURCES",
    "Activity",
    "Backlog",
    "EventStatus",
    "StoredState",
    "activity",
    "backlog",
    "count_stripe_events",
    "due_for_retry",
    "events",
    "events_about",
    "has_event",
    "insert_event",
    "insert_events",
    "insert_service_event",
    "latest_created",
    "mark_processed",
    "newest_received",
    "recent_rows",
    "record_failure",
    "retry_delay",
    "rows_after",
    "rows_with_status",
    "send_back_for_retry",
    "service_event",
    "service_event_counts",
    "service_payloads",
    "size",
    "stored_state",
    "stored_states",
    "stripe_event_pages",
]


class EventStatus(StrEnum):
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    DEAD = "dead"


@dataclass(frozen=True)
class StoredState:
    status: str
    attempts: int


def now() -> datetime:
    return datetime.now(UTC)


_EVENT_COLUMNS = (
    "event_id", "source", "type", "api_version", "livemode", "created", "received_at", "object_type", "object_id",
    "customer_id", "payload", "status", "attempts", "last_error", "next_retry_at", "processed_at",
)  # fmt: skip


@cache
def _insert_if_new(dialect: str, returning: str = "id") -> Any:
    """``INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING ...``, built once per database kind."""
    values = {name: bindparam(f"p_{name}", type_=events.c[name].type) for name in _EVENT_COLUMNS}
    statement = insert(events, dialect).values(values).on_conflict_do_nothing(index_elements=["event_id"])
    return statement.returning(events.c[returning])


async def _insert_row(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    result = await conn.execute(_insert_if_new(conn.dialect.name), {f"p_{k}": row.get(k) for k in _EVENT_COLUMNS})
    return result.first() is not None


def _event_row(
    event: ParsedEvent,
    status: EventStatus,
    attempts: int,
    stamp: datetime,
    last_error: str | None = None,
    next_retry_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "last_error": last_error,
        "next_retry_at": next_retry_at,
        "event_id": event.event_id,
        "source": event.source,
        "type": event.type,
        "api_version": event.api_version,
        "livemode": event.livemode,
        "created": event.created,
        "received_at": stamp,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "customer_id": event.customer_id,
        "payload": event.raw,
        "status": status.value,
        "attempts": attempts,
        "processed_at": stamp if status in (EventStatus.PROCESSED, EventStatus.IGNORED) else None,
    }


async def insert_event(
    conn: AsyncConnection,
    event: ParsedEvent,
    *,
    status: EventStatus,
    attempts: int,
    last_error: str | None = None,
    next_retry_at: datetime | None = None,
) -> bool:
    """Store a Stripe event unless its id is already stored. True when this call stored it."""
    return await _insert_row(conn, _event_row(event, status, attempts, now(), last_error, next_retry_at))


async def insert_events(
    conn: AsyncConnection, batch: Sequence[ParsedEvent], statuses: Sequence[EventStatus]
) -> set[str]:
    """Store the Stripe events not stored yet, in one round trip; the ids this call stored."""
    stamp = now()
    rows = [
        {f"p_{k}": v for k, v in _event_row(event, status, int(status is EventStatus.PROCESSED), stamp).items()}
        for event, status in zip(batch, statuses, strict=True)
    ]
    result = await conn.execute(_insert_if_new(conn.dialect.name, "event_id"), rows)
    return {row.event_id for row in result}


async def insert_service_event(
    conn: AsyncConnection,
    *,
    event_id: str,
    event_type: str,
    created: int,
    data: dict[str, Any],
    object_id: str | None = None,
    customer_id: str | None = None,
) -> bool:
    """Record one of the service's own events (idempotent by ``event_id``)."""
    body = {"id": event_id, "object": "event", "type": event_type, "created": created, "data": data}
    stamp = now()
    return await _insert_row(
        conn,
        {
            "event_id": event_id,
            "source": "service",
            "type": event_type,
            "livemode": False,
            "created": created,
            "received_at": stamp,
            "object_id": object_id,
            "customer_id": customer_id,
            "payload": json.dumps(body, sort_keys=True, separators=(",", ":")),
            "status": EventStatus.PROCESSED.value,
            "attempts": 0,
            "processed_at": stamp,
        },
    )


async def service_event(conn: AsyncConnection, event_type: str, object_id: str) -> dict[str, Any] | None:
    """The ``data`` of the newest service event of ``event_type`` about ``object_id``."""
    row = (
        await conn.execute(
            select(events.c.payload)
            .where(and_(events.c.object_id == object_id, events.c.type == event_type, events.c.source == "service"))
            .order_by(events.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    data = json.loads(row.payload).get("data")
    return data if isinstance(data, dict) else None


async def latest_created(conn: AsyncConnection, object_id: str) -> int | None:
    """``created`` of the newest Stripe event about ``object_id``."""
    stmt = select(func.max(events.c.created)).where(
        and_(events.c.object_id == object_id, events.c.source.in_(STRIPE_SOURCES))
    )
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return int(value) if value is not None else None


async def has_event(conn: AsyncConnection, event_type: str, object_id: str) -> bool:
    """True when an event of ``event_type`` about ``object_id`` is in the log."""
    row = await conn.execute(
        select(events.c.id).where(and_(events.c.object_id == object_id, events.c.type == event_type)).limit(1)
    )
    return row.first() is not None


async def stored_state(conn: AsyncConnection, event_id: str) -> StoredState | None:
    """Status and attempts of a stored event, row-locked on PostgreSQL."""
    return (await stored_states(conn, [event_id])).get(event_id)


async def stored_states(conn: AsyncConnection, event_ids: Sequence[str]) -> dict[str, StoredState]:
    """Status and attempts of stored events, row-locked on PostgreSQL, in one round trip."""
    if not event_ids:
        return {}
    rows = await conn.execute(_states_statement(conn.dialect.name), {"ids": list(event_ids)})
    return {row.event_id: StoredState(row.status, row.attempts) for row in rows}


@cache
def _states_statement(dialect: str) -> Any:
    stmt = select(events.c.event_id, events.c.status, events.c.attempts).where(
        one_of(events.c.event_id, "ids", dialect)
    )
    return for_update(stmt, dialect)


async def mark_processed(conn: AsyncConnection, event_id: str, attempts: int) -> None:
    await conn.execute(
        update(events)
        .where(events.c.event_id == event_id)
        .values(
            status=EventStatus.PROCESSED,
            attempts=attempts,
            last_error=None,
            next_retry_at=None,
            processed_at=now(),
        )
    )


def retry_delay(attempts: int, base_seconds: int, max_seconds: int) -> timedelta:
    """Exponential back-off after ``attempts`` failed attempts: base, 2 x base, 4 x base, ..."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


async def record_failure(
    conn: AsyncConnection,
    event: ParsedEvent,
    error: str,
    *,
    max_attempts: int,
    base_seconds: int,
    max_seconds: int,
) -> EventStatus:
    """Count one failed processing attempt: ``failed`` with a next retry time, or ``dead`` after the
    last attempt. Stores the event first if it was not stored yet."""
    error = error[:4000]
    state = await stored_state(conn, event.event_id)
    attempts = (state.attempts if state else 0) + 1
    status = EventStatus.DEAD if attempts >= max_attempts else EventStatus.FAILED
    retry_at = None if status is EventStatus.DEAD else now() + retry_delay(attempts, base_seconds, max_seconds)
    if state is None:
        await insert_event(conn, event, status=status, attempts=attempts, last_error=error, next_retry_at=retry_at)
    else:
        await conn.execute(
            update(events)
            .where(events.c.event_id == event.event_id)
            .values(status=status, attempts=attempts, last_error=error, next_retry_at=retry_at)
        )
    return status


async def events_about(conn: AsyncConnection, object_ids: Sequence[str]) -> list[ParsedEvent]:
    """Every Stripe event whose ``data.object`` is one of ``object_ids``."""
    if not object_ids:
        return []
    rows = await conn.execute(_about_statement(conn.dialect.name), {"objects": list(object_ids)})
    return [parse_event(row.payload, row.source) for row in rows]


@cache
def _about_statement(dialect: str) -> Any:
    return select(events.c.payload, events.c.source).where(
        and_(one_of(events.c.object_id, "objects", dialect), events.c.source.in_(STRIPE_SOURCES))
    )


# -- read models: what the surfaces ask of the log --------------------------------------------
@dataclass(frozen=True)
class Backlog:
    """The retry queue: events whose processing failed (the worker retries them) and dead ones
    (every attempt failed; they need a person)."""

    failed: int = 0
    dead: int = 0
    oldest_received: datetime | None = None
    """When the oldest failed or dead event was received."""

    def oldest_age_seconds(self, at: datetime | None = None) -> float:
        if self.oldest_received is None:
            return 0.0
        return max(0.0, ((at or datetime.now(UTC)) - self.oldest_received).total_seconds())


async def backlog(conn: AsyncConnection) -> Backlog:
    """The retry queue in one grouped query over the status index (gauges, health, the admin
    dashboard and the alerts all read this)."""
    rows = await conn.execute(
        select(events.c.status, func.count(), func.min(events.c.received_at))
        .where(events.c.status.in_((EventStatus.FAILED, EventStatus.DEAD)))
        .group_by(events.c.status)
    )
    found = {str(status): (int(count), utc(first)) for status, count, first in rows}
    failed, first_failed = found.get(EventStatus.FAILED, (0, None))
    dead, first_dead = found.get(EventStatus.DEAD, (0, None))
    oldest = min((d for d in (first_failed, first_dead) if d is not None), default=None)
    return Backlog(failed, dead, oldest)


@dataclass(frozen=True)
class Activity:
    """What the log received since a moment."""

    failed: int
    """Events received since then whose processing failed (and awaits a retry)."""
    received: int
    """Stripe deliveries received since then."""
    last_received: datetime | None
    """When the newest row of the log was received."""


async def activity(conn: AsyncConnection, since: datetime) -> Activity:
    recent = events.c.received_at >= since
    count = select(func.count()).select_from(events)
    failed = (await conn.execute(count.where(and_(events.c.status == EventStatus.FAILED, recent)))).scalar_one()
    received = (await conn.execute(count.where(and_(recent, events.c.source == "stripe")))).scalar_one()
    last = (await conn.execute(select(func.max(events.c.received_at)))).scalar_one()
    return Activity(int(failed), int(received), utc(last))


async def recent_rows(conn: AsyncConnection, limit: int) -> list[Any]:
    """The newest rows (id, type, source, status, created, received_at), newest first."""
    query = (
        select(
            events.c.event_id, events.c.type, events.c.source, events.c.status, events.c.created, events.c.received_at
        )
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def rows_with_status(conn: AsyncConnection, status: EventStatus, columns: Sequence[str], limit: int) -> list[Any]:
    """Rows in ``status`` (the named columns), newest first."""
    query = select(*[events.c[c] for c in columns]).where(events.c.status == status).order_by(events.c.id.desc())
    return list((await conn.execute(query.limit(limit))).all())


async def send_back_for_retry(conn: AsyncConnection, event_id: str, columns: Sequence[str]) -> Any:
    """A dead or failed event made due for the worker's next pass; its row (the named columns),
    or None when there is no such event in either state."""
    statement = (
        update(events)
        .where(events.c.event_id == event_id, events.c.status.in_([EventStatus.DEAD, EventStatus.FAILED]))
        .values(status=EventStatus.FAILED, next_retry_at=now())
        .returning(*[events.c[c] for c in columns])
    )
    return (await conn.execute(statement)).first()


async def due_for_retry(conn: AsyncConnection, limit: int) -> list[ParsedEvent]:
    """Failed events whose next retry time has come, the most overdue first."""
    rows = await conn.execute(
        select(events.c.payload, events.c.source)
        .where(and_(events.c.status == EventStatus.FAILED, events.c.next_retry_at <= now()))
        .order_by(events.c.next_retry_at)
        .limit(limit)
    )
    return [parse_event(row.payload, row.source) for row in rows]


async def newest_received(conn: AsyncConnection) -> datetime | None:
    """When the newest Stripe delivery was received (None for an empty log)."""
    query = select(func.max(events.c.received_at)).where(events.c.source == "stripe")
    newest: datetime | None = (await conn.execute(query)).scalar_one()
    return utc(newest)


async def newest_id(conn: AsyncConnection) -> int:
    """The newest row's id (0 for an empty log): one index lookup, what the worker watches to
    refresh the analytics as soon as new events are committed."""
    return int((await conn.execute(select(func.coalesce(func.max(events.c.id), 0)))).scalar_one())


async def size(conn: AsyncConnection) -> int:
    """How many rows the log holds."""
    return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def count_stripe_events(conn: AsyncConnection) -> int:
    """Rows that are Stripe objects (deliveries and API responses)."""
    query = select(func.count()).select_from(events).where(events.c.source.in_(STRIPE_SOURCES))
    return int((await conn.execute(query)).scalar_one())


async def service_payloads(conn: AsyncConnection, event_type: str) -> list[dict[str, Any]]:
    """The payloads of every service event of ``event_type``, in log order."""
    rows = await conn.execute(select(events.c.payload).where(events.c.type == event_type).order_by(events.c.id))
    return [json.loads(row.payload) for row in rows]


async def service_event_counts(
    conn: AsyncConnection, event_type: str, since: int
) -> list[tuple[str | None, str | None, int]]:
    """Per object and customer, how many service events of ``event_type`` were created since
    ``since`` (epoch seconds)."""
    query = (
        select(events.c.object_id, events.c.customer_id, func.count())
        .where(and_(events.c.source == "service", events.c.type == event_type, events.c.created >= since))
        .group_by(events.c.object_id, events.c.customer_id)
    )
    return [(row[0], row[1], int(row[2])) for row in await conn.execute(query)]


async def stripe_event_pages(conn: AsyncConnection, batch: int) -> AsyncIterator[list[tuple[ParsedEvent, str, int]]]:
    """Every Stripe event of the log in (created, id) order, in pages, with its status and attempts
    (what replay walks)."""
    after: tuple[int, int] | None = None
    while True:
        stmt = (
            select(events.c.id, events.c.created, events.c.payload, events.c.source, events.c.status, events.c.attempts)
            .where(events.c.source.in_(STRIPE_SOURCES))
            .order_by(events.c.created, events.c.id)
            .limit(batch)
        )
        if after is not None:
            stmt = stmt.where(tuple_(events.c.created, events.c.id) > tuple_(*after))
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return
        yield [(parse_event(row.payload, row.source), row.status, row.attempts) for row in rows]
        after = (rows[-1].created, rows[-1].id)


async def rows_after(
    conn: AsyncConnection,
    cursor: int,
    limit: int,
    *,
    sources: Sequence[str],
    object_types: Sequence[str],
    service_types: Sequence[str],
) -> list[Any]:
    """Rows (id, payload, source) with an id above ``cursor``, in id order: Stripe objects of
    ``object_types`` from ``sources``, and service events of ``service_types`` (the export's feed)."""
    wanted = or_(
        and_(events.c.source.in_(sources), events.c.object_type.in_(object_types)),
        and_(events.c.source == "service", events.c.type.in_(service_types)),
    )
    query = (
        select(events.c.id, events.c.payload, events.c.source)
        .where(and_(events.c.id > cursor, wanted))
        .order_by(events.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
