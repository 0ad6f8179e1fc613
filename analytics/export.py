"""The incremental Parquet export of the event log: typed facts (:mod:`analytics.facts`), one
directory per month of the event's ``created`` (``month=YYYY-MM/part-<batch number>.parquet``),
appended as new events arrive, so a refresh parses only what is new.

``_export.json`` holds the log id exported up to and the number of batches written. On
PostgreSQL, ids are handed out before commit, so a transaction can commit an id below one already
exported; each refresh therefore looks back ``LOOKBACK`` ids and takes what it has not exported yet
(the ids it has are kept in the state).
Duplicates cannot skew a KPI anyway: the engine counts each event id once.

Subscription events keep their object and ``previous_attributes`` (JSON), which the engine reads
only for the few that share a second with another event of their subscription, to order them.

A full export (``full=True``, or a missing state) writes the same files from scratch; the KPIs of a
full and of an incremental export are the same (tested).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import and_, or_, select

from analytics.facts import FACT_SCHEMA, FACT_SOURCES, fact_row
from api.db.engine import Database
from api.events.log import events
from api.events.model import InvalidEvent, parse_event

__all__ = ["BATCH", "FORMAT", "LOOKBACK", "ExportResult", "export_events"]

BATCH = 20_000
LOOKBACK = 2_000
_STATE = "_export.json"
FORMAT = 2
"""The layout of the files; an export of another format is rewritten in full."""
KPI_OBJECTS = ("subscription", "invoice", "charge", "refund", "dispute", "checkout.session")
KPI_SERVICE_EVENTS = ("usage.recorded",)


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    exported: int
    """Events appended by this refresh."""
    last_id: int
    """The log id exported up to."""
    files: int
    """Parquet files written by this refresh."""


def _read_state(directory: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((directory / _STATE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("last_id"), int) or state.get("format") != FORMAT:
        return None
    return state


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    temporary = directory / f"{_STATE}.tmp"
    temporary.write_text(json.dumps(state))
    os.replace(temporary, directory / _STATE)  # atomic: a crash leaves the old state or the new


def _write(directory: Path, rows: list[dict[str, Any]], sequence: int) -> int:
    by_month: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_month[row["month"]].append(row)
    for month, kept in by_month.items():
        folder = directory / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(kept, schema=FACT_SCHEMA)
        # A crash before the state is saved rewrites the batch under the same sequence number.
        pq.write_table(table, folder / f"part-{sequence:08d}.parquet", compression="zstd")
    return len(by_month)


def _prepare(directory: Path, fresh: bool) -> None:
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


async def export_events(
    db: Database,
    directory: Path,
    *,
    full: bool = False,
    progress: Callable[[int], object] | None = None,
) -> ExportResult:
    """Append the log's new KPI-relevant events to the Parquet export in ``directory``."""
    state = None if full else _read_state(directory)
    _prepare(directory, fresh=state is None)
    last_id = state["last_id"] if state else 0
    sequence = int(state.get("sequence", 0)) if state else 0
    recent: set[int] = set(state.get("recent", [])) if state else set()
    exported = files = 0
    wanted = or_(
        and_(events.c.source.in_(FACT_SOURCES), events.c.object_type.in_(KPI_OBJECTS)),
        and_(events.c.source == "service", events.c.type.in_(KPI_SERVICE_EVENTS)),
    )
    cursor = max(0, last_id - LOOKBACK)
    while True:
        query = (
            select(events.c.id, events.c.payload, events.c.source)
            .where(and_(events.c.id > cursor, wanted))
            .order_by(events.c.id)
            .limit(BATCH)
        )
        async with db.read() as conn:
            batch = (await conn.execute(query)).all()
        if not batch:
            break
        cursor = batch[-1].id
        fresh = [row for row in batch if row.id not in recent]
        rows = []
        for row in fresh:
            try:
                fact = fact_row(parse_event(row.payload, row.source))
            except InvalidEvent:
                continue  # the log only holds events that parsed when received
            if fact is not None:
                rows.append(fact)
        if rows:
            sequence += 1
            files += _write(directory, rows, sequence)
        exported += len(rows)
        recent.update(row.id for row in fresh)
        last_id = max(last_id, cursor)
        recent = {i for i in recent if i > last_id - LOOKBACK}
        _write_state(directory, {"format": FORMAT, "last_id": last_id, "sequence": sequence, "recent": sorted(recent)})
        if progress is not None:
            progress(len(batch))
    if state is None:
        _write_state(directory, {"format": FORMAT, "last_id": last_id, "sequence": sequence, "recent": sorted(recent)})
    return ExportResult(directory, exported, last_id, files)
