"""The worker's loop, driven in-process: a pass retries what is due, refreshes the analytics when
its time has come, and a failing pass is reported without ending the loop."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from api.cli.worker import WorkerLoop
from api.db.engine import Database
from api.db.models import kpi_snapshots
from api.events.log import events
from api.events.model import parse_event
from api.ingest import processing
from api.ingest.processing import EventProcessor, Outcome
from api.settings import Settings
from tests.factories import make_event, subscription


async def test_a_pass_retries_what_is_due_and_refreshes_the_analytics(
    sqlite_only: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dataclasses.replace(sqlite_only, analytics_dir=tmp_path / "analytics", alert_channels={})
    db = Database(settings)
    try:
        processor = EventProcessor(db, settings)
        real_apply = processing.apply_events
        failures = {"left": 1}

        async def flaky_apply(conn: Any, batch: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("downstream hiccup")
            await real_apply(conn, batch)

        monkeypatch.setattr(processing, "apply_events", flaky_apply)
        event = parse_event(json.dumps(make_event("customer.subscription.created", subscription(), event_id="evt_w")))
        assert await processor.ingest(event) is Outcome.FAILED
        async with db.write() as conn:
            await conn.execute(update(events).values(next_retry_at=datetime.now(UTC) - timedelta(seconds=1)))
        said: list[str] = []
        passes = WorkerLoop(processor, settings, said.append)
        await passes.one_pass()
        assert "worker: processed=1" in said
        assert any(line.startswith("worker: analytics refreshed") for line in said)
        async with db.read() as conn:
            assert len((await conn.execute(select(kpi_snapshots.c.id))).all()) == 1
        await passes.one_pass()  # the analytics are not due again yet
        assert sum(line.startswith("worker: analytics refreshed") for line in said) == 1
    finally:
        await db.dispose()


async def test_a_failing_pass_is_reported_and_the_loop_goes_on(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(sqlite_only, worker_poll_seconds=0.01, analytics_refresh_seconds=3600)
    db = Database(settings)
    processor = EventProcessor(db, settings)
    said: list[str] = []
    calls = {"n": 0}

    async def broken(limit: int = 100) -> dict[Outcome, int]:
        calls["n"] += 1
        raise ConnectionRefusedError("database away")

    processor.retry_due = broken  # type: ignore[method-assign]
    passes = WorkerLoop(processor, settings, said.append)
    passes.last_analytics = float("inf")  # keep this test to the retries
    stop = asyncio.Event()
    try:
        loop = asyncio.create_task(passes.run(stop))
        while calls["n"] < 3:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, timeout=5)
    finally:
        await db.dispose()
    assert sum("pass failed: ConnectionRefusedError" in line for line in said) >= 3


async def test_new_events_refresh_the_analytics_at_once(sqlite_only: Settings, tmp_path: Path) -> None:
    """With the interval an hour away, a committed event is in a new KPI snapshot within seconds:
    the worker watches the log's newest id."""
    from analytics.snapshots import latest_snapshot

    settings = dataclasses.replace(
        sqlite_only,
        analytics_dir=tmp_path / "analytics",
        alert_channels={},
        analytics_refresh_seconds=3600,
        analytics_watch_seconds=0.1,
        worker_poll_seconds=3600,
    )
    db = Database(settings)
    stop = asyncio.Event()
    try:
        processor = EventProcessor(db, settings)
        loop = WorkerLoop(processor, settings, lambda line: None)
        running = asyncio.ensure_future(loop.run(stop))
        for _ in range(100):  # the first pass refreshes once
            if await latest_snapshot(db) is not None:
                break
            await asyncio.sleep(0.05)
        before = await latest_snapshot(db)
        assert before is not None
        event = make_event("customer.subscription.created", subscription("sub_new", "cus_new"), event_id="evt_new")
        started = asyncio.get_running_loop().time()
        assert await processor.ingest(parse_event(json.dumps(event))) is Outcome.PROCESSED
        for _ in range(200):
            after = await latest_snapshot(db)
            assert after is not None
            if after[1] > before[1]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no new snapshot after the event was committed")
        assert asyncio.get_running_loop().time() - started < 5
        assert after[0]["months"][-1]["active_subscriptions"] == 1
    finally:
        stop.set()
        await running
        await db.dispose()
