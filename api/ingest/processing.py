"""Event processing: store, then apply, then account for the outcome. Used by the webhook
endpoint, the retry worker, ``faddl events load`` and ``faddl replay``.

A Stripe event is stored (unique by id) and applied in one transaction, so it is never applied
without being logged, nor logged as processed without its effects. When applying fails, that
transaction is rolled back and the event is stored as ``failed`` in a new one, with its error and
next retry time: either way it is durable before the caller answers Stripe.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database, DatabaseUnavailable, is_transient
from api.events import log
from api.events.locks import lock_keys, take_locks
from api.events.log import EventStatus
from api.events.model import ParsedEvent, snapshot
from api.ingest.group_commit import GroupCommit
from api.policies.escalation import record_escalations
from api.projections.projector import PROJECTION_TABLES, apply_events, handles
from api.projections.usage import rebuild_usage
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


def is_database_unavailable(exc: BaseException) -> bool:
    """True for faults of the database's availability rather than of the event (see
    :func:`api.db.engine.is_transient`): the delivery is refused with 503 and Stripe retries."""
    return is_transient(exc)


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
        self._group_commit = GroupCommit(self.ingest_many, settings.webhook_batch_max)

    async def _apply(self, conn: AsyncConnection, batch: Sequence[ParsedEvent]) -> None:
        if batch:
            await apply_events(conn, batch)
            await record_escalations(conn, batch, self.settings.escalation_attempts)

    async def ingest(self, event: ParsedEvent) -> Outcome:
        """Store and process one delivery. Concurrent deliveries share one transaction (group
        commit). Raises :class:`DatabaseUnavailable` when nothing could be stored; otherwise the
        event is durable when this returns."""
        return await self._group_commit.submit(event)

    async def observe(self, obj: dict[str, Any], event_type: str) -> Outcome:
        """Apply an object exactly as the Stripe API just returned it to one of our calls, so the
        caller sees the change before its webhook arrives. It is logged (source ``stripe_api``) as a
        snapshot and ordered against the deliveries by the usual rule, so replay agrees and the
        webhook, when it comes, confirms or supersedes it.

        The API's answer is newer than every snapshot we hold of the object, but Stripe's clock has
        whole seconds and two changes within one (cancel, then resume) cannot be ordered by their
        content. So the snapshot is dated at least a second after the newest one logged."""
        object_id = obj.get("id")
        created = int(time.time())
        if isinstance(object_id, str):
            latest = await self.db.run(lambda conn: log.latest_created(conn, object_id))
            if latest is not None:
                created = max(created, latest + 1)
        event_id = f"obs_{time.time_ns():020d}_{uuid.uuid4().hex[:12]}"
        return await self.ingest(snapshot(event_id, event_type, created, obj, "stripe_api"))

    async def ingest_many(
        self,
        batch: Sequence[ParsedEvent],
        *,
        then: Callable[[AsyncConnection, list[Outcome]], Awaitable[None]] | None = None,
    ) -> list[Outcome]:
        """Store and process events in one transaction, as if one after the other; a transient
        error (a dropped connection, a deadlock) runs the transaction again (:meth:`Database.run`).
        If it fails for any reason but an unavailable database, each event is taken again on its
        own, so one bad event is stored as ``failed`` without holding back the others.

        ``then(conn, outcomes)`` runs in the same transaction (in its own after the one-by-one
        fallback): what the caller records about the batch commits with it (the sync's digests
        and cursor)."""

        async def work(conn: AsyncConnection) -> list[Outcome]:
            outcomes = await self._store_and_apply(conn, batch)
            if then is not None:
                await then(conn, outcomes)
            return outcomes

        try:
            return await self.db.run(work, write=True)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if is_database_unavailable(exc):
                raise DatabaseUnavailable(_describe(exc)) from exc
            if len(batch) > 1:
                outcomes = [(await self.ingest_many([event]))[0] for event in batch]
            else:
                (event,) = batch
                error = _describe(exc)
                logger.warning("event processing failed", event_id=event.event_id, event_type=event.type, error=error)
                outcomes = [await self._record_failure(event, error)]
        if then is not None:
            await self.db.run(lambda conn: then(conn, outcomes), write=True)
        return outcomes

    async def _store_and_apply(self, conn: AsyncConnection, batch: Sequence[ParsedEvent]) -> list[Outcome]:
        handled = [handles(event) for event in batch]
        await take_locks(conn, [key for event, h in zip(batch, handled, strict=True) if h for key in lock_keys(event)])
        statuses = [EventStatus.PROCESSED if h else EventStatus.IGNORED for h in handled]
        stored_now = await log.insert_events(conn, batch, statuses)
        earlier = await log.stored_states(conn, [e.event_id for e in batch if e.event_id not in stored_now])
        outcomes: list[Outcome] = []
        to_apply: list[ParsedEvent] = []
        for event, is_handled, status in zip(batch, handled, statuses, strict=True):
            if event.event_id in stored_now:
                stored_now.discard(event.event_id)  # a second copy in the same batch is a duplicate
                if is_handled:
                    to_apply.append(event)
                outcomes.append(Outcome(status.value))
                continue
            # Already stored. A redelivery of an event whose processing failed is a retry, not a
            # duplicate to swallow.
            state = earlier.pop(event.event_id, None)
            if not is_handled or state is None or state.status not in (EventStatus.FAILED, EventStatus.DEAD):
                outcomes.append(Outcome.DUPLICATE)
                continue
            to_apply.append(event)
            await log.mark_processed(conn, event.event_id, state.attempts + 1)
            outcomes.append(Outcome.PROCESSED)
        await self._apply(conn, to_apply)
        return outcomes

    async def _record_failure(self, event: ParsedEvent, error: str) -> Outcome:
        try:
            status = await self.db.run(
                lambda conn: log.record_failure(
                    conn,
                    event,
                    error,
                    max_attempts=self.settings.retry_max_attempts,
                    base_seconds=self.settings.retry_base_seconds,
                    max_seconds=self.settings.retry_max_seconds,
                ),
                write=True,
            )
        except DatabaseUnavailable:
            raise
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
                await take_locks(conn, lock_keys(event))
                state = await log.stored_state(conn, event.event_id)
                if state is None or state.status != EventStatus.FAILED:
                    return None
                await self._apply(conn, [event])
                await log.mark_processed(conn, event.event_id, state.attempts + 1)
                return Outcome.PROCESSED
        except Exception as exc:
            if is_database_unavailable(exc):
                raise DatabaseUnavailable(_describe(exc)) from exc
            error = _describe(exc)
        return await self._record_failure(event, error)

    async def retry_due(self, limit: int = 100) -> dict[Outcome, int]:
        """Retry every failed event whose next retry time has come (at most ``limit``)."""
        due = await self.db.run(lambda conn: log.due_for_retry(conn, limit))
        counts: dict[Outcome, int] = {}
        for event in due:
            outcome = await self.retry(event)
            if outcome is not None:
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    async def replay(self, progress: Callable[[int], object] | None = None, batch: int = 1000) -> ReplayReport:
        """Rebuild every projection table from the event log alone, in one transaction (readers see
        the old state until it commits): Stripe events a page at a time, then usage from its service
        events. An event that fails is marked ``failed`` for the worker; a failed one that now
        succeeds is marked ``processed``."""
        report = ReplayReport()
        async with self.db.write() as conn:
            for table in reversed(PROJECTION_TABLES):
                await conn.execute(delete(table))
            async for page in log.stripe_event_pages(conn, batch):
                report.events += len(page)
                handled = [(event, status, attempts) for event, status, attempts in page if handles(event)]
                try:
                    async with conn.begin_nested():
                        await self._apply(conn, [event for event, _, _ in handled])
                    succeeded = handled
                except Exception as exc:
                    if is_database_unavailable(exc):
                        raise
                    succeeded = [item for item in handled if await self._replay_one(conn, item[0], report)]
                for event, status, attempts in succeeded:
                    if status in (EventStatus.FAILED, EventStatus.DEAD):
                        report.recovered.append(event.event_id)
                        await log.mark_processed(conn, event.event_id, attempts + 1)
                if progress is not None:
                    progress(len(page))
            await rebuild_usage(conn)
        return report

    async def _replay_one(self, conn: AsyncConnection, event: ParsedEvent, report: ReplayReport) -> bool:
        """Apply one event of a page that failed as a whole; record it as failed if it fails alone."""
        try:
            async with conn.begin_nested():
                await self._apply(conn, [event])
            return True
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
            return False
