"""The Events API catch-up: Stripe's own events since the last catch-up (at most its 30 days), into
the log as deliveries are, so a gap in webhook deliveries within that window is filled with the
exact events. The log refuses an event id it holds, so an event both delivered and fetched is
stored once.

Only events about the objects the service follows are kept (the object types of
:data:`api.sync.resources.RESOURCES`, and invoice payments); the rest are counted as skipped.
Where the next catch-up starts is kept as the ``events`` cursor: the newest event's ``created``
less an overlap, since Stripe lists an event a moment after it is created."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from api.events.model import InvalidEvent, ParsedEvent, check_storable, parse_event
from api.gateway.reading import StripeReader
from api.ingest.processing import EventProcessor, Outcome
from api.sync import state
from api.sync.batches import Batches
from api.sync.reports import ResourceReport
from api.sync.resources import EVENTS, RESOURCES

__all__ = ["EVENTS", "FOLLOWED_OBJECTS", "OVERLAP_SECONDS", "RETENTION_SECONDS", "catch_up"]

RETENTION_SECONDS = 30 * 86_400
"""How far back Stripe's Events API goes."""
OVERLAP_SECONDS = 300
"""Each catch-up reads again the last five minutes before the previous one's newest event."""
FOLLOWED_OBJECTS = frozenset({resource.object_type for resource in RESOURCES} | {"invoice_payment"})


async def catch_up(
    processor: EventProcessor,
    reader: StripeReader,
    *,
    since: int | None = None,
    restart: bool = False,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    progress: Callable[[str, int], None] | None = None,
) -> ResourceReport:
    """Fetch and log the events from ``since`` (default: where the last catch-up left off, at most
    30 days back)."""
    db = processor.db
    report = ResourceReport(EVENTS)
    cursor = (await db.run(state.cursors)).get(EVENTS)
    oldest = int(clock()) - RETENTION_SECONDS
    start = since if since is not None else (cursor.since if cursor and cursor.since and not restart else oldest)
    start = max(start, oldest)
    newest = start
    # Stored STORE_BATCH events a transaction, while the next pages are fetched.

    async def store(batch: list[ParsedEvent]) -> None:
        if dry_run:
            report.stored += len(batch)
            return
        for outcome in await processor.ingest_many(batch):
            if outcome is Outcome.DUPLICATE:
                report.unchanged += 1  # delivered by its webhook, or by an earlier catch-up
            else:
                report.stored += 1

    batches = Batches(store)
    try:
        async for page in reader.walk("/v1/events", {"created": {"gte": start}}):
            events: list[ParsedEvent] = []
            for item in page.objects:
                try:
                    event = parse_event(item.raw)  # checked as a delivery's body is
                    check_storable(event)
                except InvalidEvent as exc:
                    report.fail(item.id or "?", str(exc))
                    continue
                if event.object_type not in FOLLOWED_OBJECTS:
                    report.skipped += 1
                    continue
                events.append(event)
                newest = max(newest, event.created)
            report.fetched += len(page.objects)
            await batches.add(events)
            if progress is not None:
                progress(EVENTS, len(page.objects))
    except BaseException:
        await batches.abandon()
        raise
    await batches.flush()
    if not dry_run:
        resume_from = max(start, newest - OVERLAP_SECONDS)

        async def note(conn: AsyncConnection) -> None:
            await state.start_cursor(conn, EVENTS, resume_from)
            await state.complete(conn, EVENTS)

        await db.run(note, write=True)
    return report
