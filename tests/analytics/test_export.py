"""The Parquet export: appended in steps it gives the KPIs of a full export and of the events in
memory; an event committed late under a lower id is still exported; the files are typed and
partitioned by month."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import delete, insert, select

from analytics.engine import Facts
from analytics.export import export_events
from analytics.output import kpi_document
from analytics.report import analyze
from api.db.engine import Database
from api.events.log import EventStatus, events, insert_events
from api.events.model import ParsedEvent, parse_event
from api.settings import Settings
from tests.analytics.simulation import simulate_account
from tests.tricky import seat_flip


async def store(db: Database, batch: list[ParsedEvent]) -> None:
    async with db.write() as conn:
        await insert_events(conn, batch, [EventStatus.PROCESSED] * len(batch))


def kpis(directory: Path) -> dict[str, object]:
    facts = Facts(directory)
    try:
        document = kpi_document(facts)[1]
    finally:
        facts.close()
    document.pop("computed_until")
    document.pop("now")  # the wall clock the document was made at
    return document


async def test_incremental_equals_full_equals_memory(settings: Settings, tmp_path: Path) -> None:
    account = simulate_account(40, 8, 17)
    shuffled = list(account.parsed)
    random.Random(17).shuffle(shuffled)
    db = Database(settings)
    incremental, full = tmp_path / "incremental", tmp_path / "full"
    try:
        appended = 0
        for part in range(3):  # events arrive between refreshes, in any order
            await store(db, shuffled[part * len(shuffled) // 3 : (part + 1) * len(shuffled) // 3])
            appended += (await export_events(db, incremental)).exported
        again = await export_events(db, incremental)
        whole = await export_events(db, full, full=True)
    finally:
        await db.dispose()
    assert again.exported == 0, "a refresh with nothing new appends nothing"
    assert any((incremental / "positions").glob("*.parquet")), "some seconds were split between refreshes"
    assert appended == whole.exported == account.facts.con.sql("SELECT count(*) FROM facts_input").fetchall()[0][0]
    assert kpis(incremental) == kpis(full)
    in_memory = analyze(account.facts).months
    assert [m.as_dict() for m in analyze(Facts(incremental)).months] == [m.as_dict() for m in in_memory]
    months = sorted(p.name for p in full.iterdir() if p.is_dir())
    assert months[0] == "month=2025-01"
    assert len(months) >= 8
    schema = pq.read_schema(next((full / months[0]).glob("*.parquet")))
    assert str(schema.field("mrr").type) == "int64"
    assert str(schema.field("created").type) == "int64"


async def test_an_event_committed_late_under_a_lower_id_is_exported(sqlite_only: Settings, tmp_path: Path) -> None:
    account = simulate_account(10, 3, 5)
    db = Database(sqlite_only)
    directory = tmp_path / "export"
    try:
        await store(db, account.parsed)
        async with db.write() as conn:
            late = (
                await conn.execute(
                    select(events).where(events.c.object_type == "subscription").order_by(events.c.id).limit(1)
                )
            ).one()
            await conn.execute(delete(events).where(events.c.id == late.id))
        first = await export_events(db, directory)
        async with db.write() as conn:  # the same id commits after the export has passed it
            await conn.execute(insert(events).values(**late._mapping))
        second = await export_events(db, directory)
    finally:
        await db.dispose()
    assert second.exported == 1
    assert first.last_id > late.id
    state = json.loads((directory / "_export.json").read_text())
    assert late.id in state["recent"]
    assert [m.as_dict() for m in analyze(Facts(directory)).months] == [
        m.as_dict() for m in analyze(account.facts).months
    ]


async def test_a_late_starting_state_reorders_an_exported_second(sqlite_only: Settings, tmp_path: Path) -> None:
    """Seats 1 -> 3 -> 1 within one second, exported before the subscription's creation arrives:
    alone, the two updates form a cycle; once the state before them is known, the export orders
    them again, and the KPIs equal a full export's."""
    created, up, down = (parse_event(json.dumps(e)) for e in seat_flip("sub_A", "cus_A"))
    db = Database(sqlite_only)
    incremental, full = tmp_path / "incremental", tmp_path / "full"
    try:
        await store(db, [up, down])
        await export_events(db, incremental)
        await store(db, [created])
        await export_events(db, incremental)
        await export_events(db, full, full=True)
    finally:
        await db.dispose()
    assert any((incremental / "positions").glob("*.parquet"))
    for directory in (incremental, full):
        (month,) = analyze(Facts(directory)).months
        assert month.mrr == {"usd": 2900}
