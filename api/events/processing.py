"""Event processing: store, then apply, then account for the outcome. Used by the webhook
endpoint, the retry worker, ``faddl events load`` and ``faddl replay``.

A Stripe event is stored (unique by id) and applied in one transaction, so it is never applied
without being logged, nor logged as processed without its effects. When applying fails, that
transaction is rolled back and the event is stored as ``failed`` in a new one, with its error and
next retry time: either way it is durable before the caller answers Stripe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from sqlalchemy import and_, delete, select, tuple_
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database
from api.events import log
from api.events.log import EventStatus
from api.events.model import ParsedEvent, parse_event
from api.projections.projector import PROJECTION_TABLES, apply_event, handles, take_locks
from api.settings import Settings

__all__ = ["DatabaseUnavailable", "EventProcessor", "Outcome", "ReplayReport", "is_database_unavailable"]

logger = structlog.get_logger(__name__)


class Outcome(StrEnum):
    """What became of one delivery."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    DEAD = "dead"


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or gave up; nothing was stored (answer 503)."""


def is_database_unavailable(exc: BaseException) -> bool:
    """True for connection loss, refused connections, pool exhaustion and lock time-outs: faults of
    the database's availability rather than of the event."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        OperationalError | InterfaceError | DisconnectionError | PoolTimeoutError | OSError | TimeoutError,
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class ReplayReport:
    """What ``faddl replay`` did."""

    events: int = 0
    failed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


class EventProcessor:
    """Stores and applies events against one database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def _apply(self, conn: AsyncConnection, event: ParsedEvent) -> None:
        await apply_event(conn, event, escalation_attempts=self.settings.escalation_attempts)

    async def ingest(self, event: ParsedEvent) -> Outcome:
        """Store and process one delivery. Raises :class:`DatabaseUnavailable` when nothing could be
        stored; otherwise the event is durable when this returns."""
        handled = handles(event)
        try:
            async with self.db.write() as conn:
                if handled:
                    await take_locks(conn, event)
                status = EventStatus.PROCESSED if handled else EventStatus.IGNORED
                if await log.insert_event(conn, event, status=status, attempts=int(handled)):
                    if handled:
                        await self._apply(conn, event)
                    return Outcome(status.value)
                # Already stored. A redelivery of an event whose processing failed is a retry,
                # not a duplicate to swallow.
                state = await log.stored_state(conn, event.event_id, lock=True)
                if not handled or state is None or state.status not in (EventStatus.FAILED, EventStatus.DEAD):
                    return Outcome.DUPLICATE
                await self._apply(conn, event)
                await log.mark_processed(conn, event.event_id, state.attempts + 1)
                return Outcome.PROCESSED
        except Exception as exc:
            if is_database_unavailable(exc):
                raise DatabaseUnavailable(_describe(exc)) from exc
            error = _describe(exc)
            logger.warning(
                "event processing failed", event_id=event.event_id, event_type=event.type, error=error
            )
        return await self._record_failure(event, error)

    async def _record_failure(self, event: ParsedEvent, error: str) -> Outcome:
        try:
            async with self.db.write() as conn:
                status = await log.record_failure(
                    conn,
                    event,
                    error,
                    max_attempts=self.settings.retry_max_attempts,
                    base_seconds=self.settings.retry_base_seconds,
                    max_seconds=self.settings.retry_max_seconds,
                )
        except Exception as exc:
            if is_database_unavailable(exc):
                raise DatabaseUnavailable(_describe(exc)) from exc
            raise
        if status is EventStatus.DEAD:
            logger.error(
                "event is dead: processing failed on every attempt; it needs a person",
                event_id=event.event_id,
                event_type=event.type,
                error=error,
            )
            return Outcome.DEAD
        return Outcome.FAILED

    async def retry(self, event: ParsedEvent) -> Outcome | None:
        """Process a stored ``failed`` event again. None when it is no longer failed (another
        worker or a redelivery got there first)."""
        try:
            async with self.db.write() as conn:
                await take_locks(conn, event)
                state = await log.stored_state(conn, event.event_id, lock=True)
                if state is None or state.status != EventStatus.FAILED:
                    return None
                await self._apply(conn, event)
                await log.mark_processed(conn, event.event_id, state.attempts + 1)
                return Outcome.PROCESSED
        except Exception as exc:
            if is_database_unavailable(exc):
                raise DatabaseUnavailable(_describe(exc)) from exc
            error = _describe(exc)
        return await self._record_failure(event, error)

    async def retry_due(self, limit: int = 100) -> dict[Outcome, int]:
        """Retry every failed event whose next retry time has come (at most ``limit``)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(log.events.c.payload)
                .where(
                    and_(log.events.c.status == EventStatus.FAILED, log.events.c.next_retry_at <= log.now())
                )
                .order_by(log.events.c.next_retry_at)
                .limit(limit)
            )
            due = [parse_event(row.payload) for row in rows]
        counts: dict[Outcome, int] = {}
        for event in due:
            outcome = await self.retry(event)
            if outcome is not None:
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    async def replay(
        self, progress: Callable[[int], object] | None = None, batch: int = 2000
    ) -> ReplayReport:
        """Rebuild every projection table from the event log alone, in one transaction (readers see
        the old state until it commits). Events are applied in ``created`` order, though the result
        does not depend on it. An event that fails is marked ``failed`` for the worker; a failed one
        that now succeeds is marked ``processed``."""
        report = ReplayReport()
        async with self.db.write() as conn:
            for table in reversed(PROJECTION_TABLES):
                await conn.execute(delete(table))
            async for event, status, attempts in self._stripe_events(conn, batch):
                report.events += 1
                if progress is not None:
                    progress(1)
                if not handles(event):
                    continue
                try:
                    async with conn.begin_nested():
                        await self._apply(conn, event)
                except Exception as exc:
                    if is_database_unavailable(exc):
                        raise
                    report.failed.append(event.event_id)
                    await log.record_failure(
                        conn,
                        event,
                        _describe(exc),
                        max_attempts=self.settings.retry_max_attempts,
                        base_seconds=self.settings.retry_base_seconds,
                        max_seconds=self.settings.retry_max_seconds,
                    )
                    continue
                if status in (EventStatus.FAILED, EventStatus.DEAD):
                    report.recovered.append(event.event_id)
                    await log.mark_processed(conn, event.event_id, attempts + 1)
        return report

    @staticmethod
    async def _stripe_events(
        conn: AsyncConnection, batch: int
    ) -> AsyncIterator[tuple[ParsedEvent, str, int]]:
        """Every Stripe event of the log in (created, id) order, read in pages."""
        events = log.events
        after: tuple[int, int] | None = None
        while True:
            stmt = (
                select(events.c.id, events.c.created, events.c.payload, events.c.status, events.c.attempts)
                .where(events.c.source == "stripe")
                .order_by(events.c.created, events.c.id)
                .limit(batch)
            )
            if after is not None:
                stmt = stmt.where(tuple_(events.c.created, events.c.id) > tuple_(*after))
            rows = (await conn.execute(stmt)).all()
            if not rows:
                return
            for row in rows:
                yield parse_event(row.payload), row.status, row.attempts
            after = (rows[-1].created, rows[-1].id)
