"""``faddl sync``: walk an account's lists at Stripe and log each object as a snapshot.

Twenty pages (``STORE_BATCH`` objects) at a time, so memory stays bounded whatever the account's
size: the objects whose digest changed since the last sync are stored and applied (through the
processor, as deliveries are), and their digests and the resource's cursor noted, in one
transaction.
Killed before it commits, a resumed walk fetches those pages again; should a batch ever be stored
without its note (the processor's one-by-one fallback notes apart), the same event ids come again
and the log refuses them as known (see :mod:`api.sync.snapshots`): nothing is doubled.

One bad object (no id, another type than the list's, a field too long to store) is counted, kept
in the run's summary with its reason, and skipped. A list this Stripe does not have (a stand-in)
is reported and skipped. Stripe unreachable or a refused key ends the run, recorded as failed.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.events.model import InvalidEvent, ParsedEvent, check_storable
from api.gateway.reading import Fetched, ListUnavailable, StripeReader, StripeRefused, StripeUnreachable
from api.ingest.processing import EventProcessor, Outcome
from api.sync import state
from api.sync.batches import Batches
from api.sync.events import catch_up
from api.sync.reports import ResourceReport, SyncReport
from api.sync.resources import EVENTS, Resource, select_resources
from api.sync.snapshots import digest_of, snapshot_event

__all__ = ["AccountSync"]


YOUNG_OBJECTS_BEFORE_COLLECTING = 10_000
"""The cyclic garbage collector's first threshold while a sync runs (Python's default is 700)."""


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector run less often: a batch's changed objects decode to hundreds of
    thousands of dicts and lists (none in a cycle, so reference counting frees them), and at
    Python's default the collector's passes over them and what the batch holds made a first sync
    of a 10,000-customer account take 80 s instead of 65 s."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], YOUNG_OBJECTS_BEFORE_COLLECTING), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


class AccountSync:
    """Brings a Stripe account into the log."""

    def __init__(self, processor: EventProcessor, reader: StripeReader, *, clock: Callable[[], float] = time.time):
        self.processor = processor
        self.db = processor.db
        self.reader = reader
        self.clock = clock

    async def run(
        self,
        only: Sequence[str] | None = None,
        *,
        since: int | None = None,
        restart: bool = False,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
        kind: str = "sync",
    ) -> SyncReport:
        """Walk the resources; ``progress(resource, objects)`` after each page; the run is recorded
        as ``kind`` (the worker's Events API catch-up is a ``catchup``). Raises
        :class:`StripeUnreachable` or :class:`StripeRefused` (the run is recorded as failed)."""
        selected, with_events = select_resources(only)
        started = time.perf_counter()
        run_id = None if dry_run else await self.db.run(lambda c: state.start_run(c, kind), write=True)
        known = await self.db.run(state.cursors)
        reports: list[ResourceReport] = []
        report = SyncReport(reports, 0.0, dry_run)
        try:
            with fewer_collections():
                for resource in selected:
                    reports.append(
                        await self._walk(resource, known.get(resource.name), since, restart, dry_run, progress)
                    )
                if with_events:
                    reports.append(await self._catch_up(since, restart, dry_run, progress))
        except (StripeUnreachable, StripeRefused) as exc:
            report.error = str(exc)
            raise
        finally:
            report.seconds = time.perf_counter() - started
            if run_id is not None:
                outcome = "failed" if report.error else "succeeded"
                summary = report.as_dict()
                await self.db.run(lambda c: state.finish_run(c, run_id, outcome, summary), write=True)
        return report

    async def _catch_up(
        self, since: int | None, restart: bool, dry_run: bool, progress: Callable[[str, int], None] | None
    ) -> ResourceReport:
        try:
            return await catch_up(
                self.processor,
                self.reader,
                since=since,
                restart=restart,
                dry_run=dry_run,
                clock=self.clock,
                progress=progress,
            )
        except ListUnavailable as exc:
            return ResourceReport(EVENTS, unavailable=str(exc))

    async def _walk(
        self,
        resource: Resource,
        cursor: state.Cursor | None,
        since: int | None,
        restart: bool,
        dry_run: bool,
        progress: Callable[[str, int], None] | None,
    ) -> ResourceReport:
        report = ResourceReport(resource.name)
        # A walk stopped before its end goes on after its cursor, unless told otherwise.
        if (
            cursor is not None
            and cursor.walking
            and cursor.starting_after is not None
            and not restart
            and since in (None, cursor.since)
        ):
            starting_after, since = cursor.starting_after, cursor.since
            report.resumed_after = starting_after
        else:
            starting_after = None
            if not dry_run:
                await self.db.run(lambda c: state.start_cursor(c, resource.name, since), write=True)
        params: dict[str, Any] = dict(resource.params)
        if since is not None:
            params["created"] = {"gte": since}
        # Pages are stored twenty at a time (STORE_BATCH), in one transaction each, while the
        # next ones are fetched.

        async def store(batch: list[Fetched]) -> None:
            await self.store(resource, batch, report, dry_run=dry_run, cursor=True)
            if progress is not None:
                progress(resource.name, len(batch))

        batches = Batches(store)
        try:
            async for page in self.reader.walk(resource.path, params, starting_after):
                await batches.add(page.objects)
        except ListUnavailable as exc:
            await batches.flush()
            report.unavailable = str(exc)
            return report
        except (StripeUnreachable, StripeRefused):
            await batches.flush()  # what was fetched before Stripe stopped answering is kept
            raise
        except BaseException:
            await batches.abandon()
            raise
        await batches.flush()
        if not dry_run:
            await self.db.run(lambda c: state.complete(c, resource.name), write=True)
        return report

    async def store(
        self,
        resource: Resource,
        objects: list[Fetched],
        report: ResourceReport,
        *,
        dry_run: bool = False,
        cursor: bool = False,
        heal_after: Mapping[str, int] | None = None,
    ) -> None:
        """Log the objects whose digest changed, as snapshots, and note their digests (and, with
        ``cursor``, move the resource's cursor past them: they are the page a walk fetched).

        ``heal_after`` (reconciliation) maps object ids to the ``created`` their projection row
        reflects: those objects are logged whatever their digest, dated after it, since what
        Stripe says now is newer than anything logged."""
        if not objects:
            return
        fetched_at = int(self.clock())
        ids = [obj.id for obj in objects if obj.id]
        known = await self.db.run(lambda c: state.digests(c, ids))
        before = (report.stored, report.unchanged, report.failed)
        events: list[ParsedEvent] = []
        noted: list[state.Digest] = []
        for obj in objects:
            object_id = obj.id
            if not object_id:
                report.fail("?", "the object has no id")
                continue
            if obj.object != resource.object_type:
                report.fail(object_id, f"a {obj.object!r} in the list of {resource.object_type} objects")
                continue
            digest = digest_of(obj)
            before_this = known.get(object_id)
            healing = (heal_after or {}).get(object_id)
            heal = healing is not None
            if before_this is not None and before_this.digest == digest and not heal:
                report.unchanged += 1  # recognised without decoding it
                continue
            event_type = resource.event_type(obj.data)
            if event_type is None:
                report.skipped += 1
                continue
            # Fetched after the sync's previous snapshot of it, so dated after it even within
            # the same second (deliveries from that second are ordered by their content).
            created = fetched_at if before_this is None else max(fetched_at, before_this.created + 1)
            if healing is not None:
                created = max(created, healing + 1)
            try:
                previous = before_this.digest if before_this else None
                event = snapshot_event(obj, event_type, created, digest, previous, heal=heal)
                check_storable(event)
            except InvalidEvent as exc:
                report.fail(object_id, str(exc))
                continue
            events.append(event)
            noted.append(state.Digest(object_id, resource.object_type, digest, event.event_id, created))
        report.fetched += len(objects)
        if dry_run:
            report.stored += len(events)
            return
        last = str(objects[-1].id)
        skipped_unchanged, refused = report.unchanged - before[1], report.failed - before[2]

        async def note(conn: AsyncConnection, outcomes: list[Outcome]) -> None:
            # In the transaction that stores the batch: its digests and the cursor past it commit
            # with its events, or not at all.
            duplicates = sum(1 for outcome in outcomes if outcome is Outcome.DUPLICATE)
            not_applied = sum(1 for outcome in outcomes if outcome in (Outcome.FAILED, Outcome.DEAD))
            await state.note_digests(conn, noted)
            if cursor:
                await state.advance(
                    conn,
                    resource.name,
                    last,
                    fetched=len(objects),
                    stored=len(outcomes) - duplicates,
                    unchanged=skipped_unchanged + duplicates,
                    failed=refused + not_applied,
                )

        if events:
            outcomes = await self.processor.ingest_many(events, then=note)
        else:
            await self.db.run(lambda conn: note(conn, []), write=True)
            outcomes = []
        for event, outcome in zip(events, outcomes, strict=True):
            if outcome is Outcome.DUPLICATE:
                report.unchanged += 1  # stored by a run that stopped before noting it
                continue
            report.stored += 1
            if outcome in (Outcome.FAILED, Outcome.DEAD):  # in the log; the worker retries applying it
                report.fail(event.object_id or "?", "stored, but applying it failed (see the event's last_error)")
