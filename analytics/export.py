"""The incremental Parquet export of the event log: typed facts (:mod:`analytics.facts`), one
directory per month of the event's ``created`` (``month=YYYY-MM/part-<batch number>.parquet``),
appended as new events arrive, so a refresh parses only what is new.

``_export.json`` holds the log id exported up to and the number of batches written. On
PostgreSQL, ids are handed out before commit, so a transaction can commit an id below one already
exported; each refresh therefore looks back ``LOOKBACK`` ids and takes what it has not exported yet
(the ids it has are kept in the state).
Duplicates cannot skew a KPI anyway: the engine counts each event id once.

Subscription events that share a second are ordered here, while their objects are parsed anyway
(``pos``: the chain from the state before that second, :mod:`api.stripe_objects.ordering`); when a
second gains a member after its first export, or an event arrives late that changes the state a
second starts from, the new positions of the older members go to ``positions/`` and win over the
stored ones.

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
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.ext.asyncio import AsyncConnection

from analytics.facts import FACT_SCHEMA, FACT_SOURCES, fact_row, positions_in_second
from api.db.engine import Database
from api.events import log
from api.events.model import InvalidEvent, parse_event
from api.stripe_objects.fields import InvalidObject
from api.stripe_objects.ordering import Snapshot

__all__ = ["BATCH", "FORMAT", "LOOKBACK", "POSITIONS", "ExportResult", "export_events"]

BATCH = 20_000
LOOKBACK = 2_000
_STATE = "_export.json"
FORMAT = 5
"""The facts' format; an export written in another is redone from scratch (3: ``period_end``; 4:
``detail_json``, prices, products and invoice items; 5: the dates of charges and disputes)."""
POSITIONS = "positions"
KPI_OBJECTS = (
    "subscription",
    "invoice",
    "charge",
    "refund",
    "dispute",
    "checkout.session",
    "price",
    "product",
    "invoiceitem",
)
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
    """The export's state; None (export again from scratch) when there is none or it was written
    in another format (the facts gained a column)."""
    try:
        state = json.loads((directory / _STATE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("last_id"), int):
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


def _exported_context(directory: Path, rows: list[dict[str, Any]]) -> list[tuple[Snapshot, int | None]]:
    """What :func:`analytics.facts.positions_in_second` needs from the export for the batch's
    subscription events, with their exported positions: for each subscription whose new events
    share a second (with each other or an exported one) or come before an exported one, its
    exported events from the last second before its earliest new one on. Rare outside a second
    split across batches or an event delivered late, and read in two steps so the objects are read
    only then."""
    firsts: dict[str, int] = {}
    per_second: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        if row.get("_snapshot") is not None:
            sub, created = row["object_id"], row["created"]
            firsts[sub] = min(firsts.get(sub, created), created)
            per_second[(sub, created)] += 1
    if not firsts or not any(directory.glob("month=*/*.parquet")):
        return []
    subscription_facts = f"""
        SELECT * FROM read_parquet('{_glob(directory)}')
        WHERE object_type = 'subscription' AND type LIKE 'customer.subscription.%'
    """
    con = duckdb.connect()
    try:
        con.register("batch_firsts", pa.table({"object_id": list(firsts), "first": list(firsts.values())}))
        later = con.sql(
            f"SELECT DISTINCT f.object_id FROM ({subscription_facts}) f JOIN batch_firsts k USING (object_id) "
            "WHERE f.created >= k.first"
        ).fetchall()
        needed = {sub for (sub,) in later} | {sub for (sub, _), count in per_second.items() if count > 1}
        if not needed:
            return []
        con.register("needed", pa.table({"object_id": sorted(needed)}))
        moved, position = "", "pos"
        if any((directory / POSITIONS).glob("*.parquet")):
            positions = str(directory / POSITIONS / "*.parquet").replace("'", "''")
            moved = f"""LEFT JOIN (SELECT event_id, arg_max(pos, sequence) AS moved FROM read_parquet('{positions}')
                        GROUP BY event_id) m USING (event_id)"""
            position = "coalesce(moved, pos)"
        found = con.sql(
            f"""
            WITH subs AS (
                SELECT f.*, k.first FROM ({subscription_facts}) f
                JOIN batch_firsts k USING (object_id) JOIN needed USING (object_id)
            ),
            starts AS (
                SELECT object_id, coalesce(max(created) FILTER (WHERE created < first), min(first)) AS start
                FROM subs GROUP BY object_id
            )
            SELECT DISTINCT ON (event_id) event_id, created, terminal, rank, {position},
                   object_json, previous_json
            FROM subs JOIN starts USING (object_id) {moved}
            WHERE created >= start
            """
        ).fetchall()
    finally:
        con.close()
    return [
        (
            Snapshot(
                event_id=event_id,
                created=created,
                event_type="",
                obj=json.loads(obj or "{}"),
                previous_attributes=json.loads(previous or "{}"),
                terminal=bool(terminal),
                rank=(int(rank or 0),),
            ),
            position,
        )
        for event_id, created, terminal, rank, position, obj, previous in found
    ]


def _glob(directory: Path) -> str:
    return str(directory / "month=*" / "*.parquet").replace("'", "''")


def _write_positions(directory: Path, positions: dict[str, int], sequence: int) -> None:
    """Positions of already exported events whose second gained a member: they replace the ones
    stored with the events (the newest sequence wins)."""
    folder = directory / POSITIONS
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "event_id": list(positions),
            "pos": list(positions.values()),
            "sequence": [sequence] * len(positions),
        },
        schema=pa.schema([("event_id", pa.string()), ("pos", pa.int64()), ("sequence", pa.int64())]),
    )
    pq.write_table(table, folder / f"part-{sequence:08d}.parquet", compression="zstd")


def _prepare(directory: Path, fresh: bool) -> None:
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


async def _feed(conn: AsyncConnection, *, after: int) -> list[Any]:
    """The next rows of the log the export takes: KPI objects from Stripe, the KPI service events."""
    return await log.rows_after(
        conn, after, BATCH, sources=FACT_SOURCES, object_types=KPI_OBJECTS, service_types=KPI_SERVICE_EVENTS
    )


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
    cursor = max(0, last_id - LOOKBACK)
    while True:
        batch = await db.run(partial(_feed, after=cursor))
        if not batch:
            break
        cursor = batch[-1].id
        fresh = [row for row in batch if row.id not in recent]
        rows = []
        for row in fresh:
            try:
                fact = fact_row(parse_event(row.payload, row.source))
            except (InvalidEvent, InvalidObject):
                continue  # parsed when received; an object refused then (InvalidObject) counts for nothing
            if fact is not None:
                rows.append(fact)
        if rows:
            sequence += 1
            known = _exported_context(directory, rows)
            positions = positions_in_second(rows, known)
            for fact in rows:
                fact["pos"] = positions.get(fact["event_id"])
            moved = {s.event_id: positions[s.event_id] for s, pos in known if positions.get(s.event_id, pos) != pos}
            if moved:
                _write_positions(directory, moved, sequence)
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
