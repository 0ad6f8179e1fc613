"""Where the KPI engine reads the log from: the database, or a JSON-lines file of Stripe events
(what ``faddl simulate`` writes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import and_, or_, select

from api.db.engine import Database
from api.events.log import STRIPE_SOURCES, events
from api.events.model import ParsedEvent, parse_event

__all__ = ["distinct", "events_from_database", "events_from_file"]


async def events_from_database(
    db: Database, object_types: tuple[str, ...] = ("subscription",), service_types: tuple[str, ...] = ()
) -> list[ParsedEvent]:
    """The Stripe events (deliveries and API answers) about objects of ``object_types``, and the
    service's own events of ``service_types``."""
    stripe = and_(events.c.source.in_(STRIPE_SOURCES), events.c.object_type.in_(object_types))
    own = and_(events.c.source == "service", events.c.type.in_(service_types))
    query = select(events.c.payload, events.c.source).where(or_(stripe, own) if service_types else stripe)
    query = query.order_by(events.c.id)
    async with db.read() as conn:
        rows = await conn.execute(query)
        return [parse_event(row.payload, row.source) for row in rows]


def events_from_file(path: Path) -> Iterator[ParsedEvent]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield parse_event(line)


def distinct(events: Iterable[ParsedEvent]) -> list[ParsedEvent]:
    """Each event once (a redelivered event counts once), in the order given."""
    seen: set[str] = set()
    kept: list[ParsedEvent] = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            kept.append(event)
    return kept
