"""Outcomes of a delivery: processed, duplicate, ignored, failed (then retried or dead)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from api.db.engine import Database
from api.events.log import events, retry_delay
from api.events.model import parse_event
from api.ingest import processing
from api.ingest.processing import EventProcessor, Outcome
from api.projections.projector import subscriptions
from tests.factories import make_event, post_event, subscription


async def event_row(db: Database, event_id: str) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(events).where(events.c.event_id == event_id))).first()


async def subscription_rows(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list(await conn.execute(select(subscriptions)))


def broken_event(event_id: str = "evt_broken") -> dict[str, Any]:
    """A real processing failure: an amount no database integer column can hold."""
    sub = subscription("sub_broken", "cus_broken")
    sub["items"]["data"][0]["price"]["unit_amount"] = 10**30
    return make_event("customer.subscription.updated", sub, event_id=event_id)


async def test_processed_then_duplicate_is_a_noop(client: AsyncTestClient[Any], db: Database) -> None:
    event = make_event("customer.subscription.created", subscription(), event_id="evt_once")
    first = await post_event(client, event)
    assert first.status_code == 200
    assert first.json() == {"received": True, "event_id": "evt_once", "outcome": "processed"}
    before = await subscription_rows(db)
    second = await post_event(client, event)
    assert second.status_code == 200
    assert second.json()["outcome"] == "duplicate"
    assert await subscription_rows(db) == before
    row = await event_row(db, "evt_once")
    assert (row.status, row.attempts, row.source) == ("processed", 1, "stripe")
    assert row.payload == json.dumps(event)  # stored byte for byte


async def test_unknown_event_type_is_stored_as_ignored(client: AsyncTestClient[Any], db: Database) -> None:
    event = make_event(
        "radar.early_fraud_warning.created",
        {"id": "issfr_1", "object": "radar.early_fraud_warning"},
        event_id="evt_unknown",
    )
    response = await post_event(client, event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    row = await event_row(db, "evt_unknown")
    assert row.status == "ignored"
    assert row.processed_at is not None


async def test_processing_failure_is_stored_as_failed_and_answered_2xx(
    client: AsyncTestClient[Any], db: Database
) -> None:
    response = await post_event(client, broken_event())
    assert response.status_code == 200
    assert response.json()["outcome"] == "failed"
    row = await event_row(db, "evt_broken")
    assert row.status == "failed"
    assert row.attempts == 1
    assert row.last_error
    assert row.next_retry_at is not None
    assert await subscription_rows(db) == []  # nothing half-applied


async def test_failed_event_becomes_dead_after_the_last_attempt(db: Database) -> None:
    settings = db.settings.__class__(**{**db.settings.__dict__, "retry_max_attempts": 3, "retry_base_seconds": 0})
    processor = EventProcessor(db, settings)
    event = parse_event(json.dumps(broken_event("evt_dies")))
    assert await processor.ingest(event) is Outcome.FAILED
    assert await processor.retry_due() == {Outcome.FAILED: 1}
    assert await processor.retry_due() == {Outcome.DEAD: 1}
    row = await event_row(db, "evt_dies")
    assert (row.status, row.attempts, row.next_retry_at) == ("dead", 3, None)
    assert await processor.retry_due() == {}  # dead events are left for a person


async def test_worker_retries_only_when_due_and_recovers(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    processor = EventProcessor(db, db.settings)
    real_apply = processing.apply_events
    failures = {"left": 1}

    async def flaky_apply(conn: Any, event: Any, **kwargs: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("downstream hiccup")
        await real_apply(conn, event, **kwargs)

    monkeypatch.setattr(processing, "apply_events", flaky_apply)
    event = parse_event(json.dumps(make_event("customer.subscription.created", subscription(), event_id="evt_flaky")))
    assert await processor.ingest(event) is Outcome.FAILED
    assert await processor.retry_due() == {}  # not due yet
    async with db.write() as conn:
        await conn.execute(update(events).values(next_retry_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await processor.retry_due() == {Outcome.PROCESSED: 1}
    row = await event_row(db, "evt_flaky")
    assert (row.status, row.attempts, row.last_error) == ("processed", 2, None)
    assert len(await subscription_rows(db)) == 1


async def test_redelivery_of_a_failed_event_is_processed_not_swallowed(
    client: AsyncTestClient[Any], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = processing.apply_events
    calls = {"n": 0}

    async def fail_first(conn: Any, event: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first attempt fails")
        await real_apply(conn, event, **kwargs)

    monkeypatch.setattr(processing, "apply_events", fail_first)
    event = make_event("customer.subscription.created", subscription(), event_id="evt_again")
    assert (await post_event(client, event)).json()["outcome"] == "failed"
    assert (await post_event(client, event)).json()["outcome"] == "processed"
    assert (await event_row(db, "evt_again")).status == "processed"
    assert len(await subscription_rows(db)) == 1


def test_retry_back_off_doubles_up_to_the_cap() -> None:
    delays = [retry_delay(n, 30, 3600).total_seconds() for n in range(1, 10)]
    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == 3600
