"""The sync's own tables: a cursor per resource (so a killed sync resumes where it stopped), the
digest of each object as last logged (so an unchanged object stores nothing), and the runs with
their summaries. Every statement on them is here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.dialects import insert, one_of, utc
from api.db.models import sync_cursors, sync_drift, sync_objects, sync_runs

__all__ = [
    "RUN_KINDS",
    "Cursor",
    "Digest",
    "advance",
    "complete",
    "cursors",
    "digests",
    "finish_run",
    "last_successes",
    "note_digests",
    "open_drift",
    "open_drift_count",
    "recent_runs",
    "start_cursor",
    "start_run",
]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Cursor:
    """Where a resource's walk is (what ``GET /api/admin/sync`` shows)."""

    resource: str
    walking: bool
    """True while a walk is under way or stopped before the end (the next sync resumes it)."""
    starting_after: str | None
    since: int | None
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    fetched: int
    stored: int
    unchanged: int
    failed: int


@dataclass(frozen=True)
class Digest:
    """An object as the sync last logged it."""

    object_id: str
    object_type: str
    digest: str
    event_id: str
    created: int


async def cursors(conn: AsyncConnection) -> dict[str, Cursor]:
    rows = (await conn.execute(select(sync_cursors))).mappings().all()
    return {
        row["resource"]: Cursor(
            **{
                **row,
                "walking": row["completed_at"] is None,
                "started_at": utc(row["started_at"]),
                "updated_at": utc(row["updated_at"]),
                "completed_at": utc(row["completed_at"]),
            }
        )
        for row in rows
    }


async def start_cursor(conn: AsyncConnection, resource: str, since: int | None) -> None:
    """A fresh walk of ``resource`` from the newest object."""
    now = _now()
    values = {
        "starting_after": None,
        "since": since,
        "started_at": now,
        "updated_at": now,
        "completed_at": None,
        "fetched": 0,
        "stored": 0,
        "unchanged": 0,
        "failed": 0,
    }
    statement = insert(sync_cursors, conn.dialect.name).values(resource=resource, **values)
    await conn.execute(statement.on_conflict_do_update(index_elements=["resource"], set_=values))


async def advance(
    conn: AsyncConnection, resource: str, starting_after: str, *, fetched: int, stored: int, unchanged: int, failed: int
) -> None:
    """A page is in the log: the walk goes on after its last object."""
    c = sync_cursors.c
    await conn.execute(
        update(sync_cursors)
        .where(c.resource == resource)
        .values(
            starting_after=starting_after,
            updated_at=_now(),
            fetched=c.fetched + fetched,
            stored=c.stored + stored,
            unchanged=c.unchanged + unchanged,
            failed=c.failed + failed,
        )
    )


async def complete(conn: AsyncConnection, resource: str) -> None:
    """The walk reached the end of the list; the next sync starts from the newest object again."""
    now = _now()
    await conn.execute(
        update(sync_cursors)
        .where(sync_cursors.c.resource == resource)
        .values(starting_after=None, updated_at=now, completed_at=now)
    )


async def digests(conn: AsyncConnection, object_ids: Sequence[str]) -> dict[str, Digest]:
    """Each object as the sync last logged it."""
    if not object_ids:
        return {}
    c = sync_objects.c
    query = select(c.object_id, c.object_type, c.digest, c.event_id, c.created).where(
        one_of(c.object_id, "ids", conn.dialect.name)
    )
    rows = await conn.execute(query, {"ids": list(object_ids)})
    return {
        row.object_id: Digest(row.object_id, row.object_type, row.digest, row.event_id, row.created) for row in rows
    }


async def note_digests(conn: AsyncConnection, noted: Iterable[Digest]) -> None:
    now = _now()
    rows: list[dict[str, Any]] = [
        {"object_id": d.object_id, "object_type": d.object_type, "digest": d.digest, "event_id": d.event_id}
        | {"created": d.created, "synced_at": now}
        for d in noted
    ]
    if not rows:
        return
    statement = insert(sync_objects, conn.dialect.name)
    statement = statement.on_conflict_do_update(
        index_elements=["object_id"],
        set_={
            "object_type": statement.excluded.object_type,
            "digest": statement.excluded.digest,
            "event_id": statement.excluded.event_id,
            "created": statement.excluded.created,
            "synced_at": statement.excluded.synced_at,
        },
    )
    await conn.execute(statement, rows)


async def start_run(conn: AsyncConnection, kind: str) -> int:
    result = await conn.execute(
        sync_runs.insert()
        .values(kind=kind, started_at=_now(), outcome="running", summary="{}")
        .returning(sync_runs.c.id)
    )
    return int(result.scalar_one())


async def finish_run(conn: AsyncConnection, run_id: int, outcome: str, summary: dict[str, Any]) -> None:
    await conn.execute(
        update(sync_runs)
        .where(sync_runs.c.id == run_id)
        .values(finished_at=_now(), outcome=outcome, summary=json.dumps(summary, sort_keys=True))
    )


async def recent_runs(conn: AsyncConnection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs, newest first, with their summaries."""
    rows = (await conn.execute(select(sync_runs).order_by(sync_runs.c.id.desc()).limit(limit))).mappings().all()
    return [
        {
            "id": row["id"],
            "kind": row["kind"],
            "started_at": utc(row["started_at"]),
            "finished_at": utc(row["finished_at"]),
            "outcome": row["outcome"],
            "summary": json.loads(row["summary"] or "{}"),
        }
        for row in rows
    ]


RUN_KINDS = ("sync", "catchup", "reconcile")


async def last_successes(conn: AsyncConnection) -> dict[str, datetime]:
    """When each kind of run last succeeded: the gauges read it at every refresh, so each kind is
    one probe of the (kind, outcome, finished_at) index, not a scan of every run ever made."""
    c = sync_runs.c
    found: dict[str, datetime] = {}
    for kind in RUN_KINDS:
        query = (
            select(c.finished_at)
            .where(c.kind == kind, c.outcome == "succeeded", c.finished_at.is_not(None))
            .order_by(c.finished_at.desc())
            .limit(1)
        )
        finished = (await conn.execute(query)).scalar_one_or_none()
        if finished is not None:
            found[kind] = utc(finished)
    return found


async def open_drift(conn: AsyncConnection, limit: int = 50) -> list[dict[str, Any]]:
    """Drift not healed, newest first."""
    c = sync_drift.c
    rows = await conn.execute(select(sync_drift).where(c.healed_at.is_(None)).order_by(c.id.desc()).limit(limit))
    return [
        {
            "object_type": row.object_type,
            "object_id": row.object_id,
            "fields": json.loads(row.fields),
            "found_at": utc(row.found_at),
        }
        for row in rows
    ]


async def open_drift_count(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(sync_drift).where(sync_drift.c.healed_at.is_(None))
    return int((await conn.execute(query)).scalar_one())
