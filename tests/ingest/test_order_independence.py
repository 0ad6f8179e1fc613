"""The central promise: any delivery order, any duplicates, live or replayed, give one state."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import delete

from api.app import create_app
from api.db.engine import Database
from api.db.migrate import upgrade
from api.events.log import events
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.projections.projector import PROJECTION_TABLES, subscriptions
from api.settings import Settings
from simulator.engine import SimConfig, simulate
from tests.conftest import sqlite_settings
from tests.factories import sign
from tests.state import projection_state
from tests.tricky import EXPECTED_ROWS, EXPECTED_SUBSCRIPTIONS, tricky_events

SMALL_EVENTS, SMALL_TRUTH = simulate(SimConfig(customers=6, months=6, seed=11))
# The simulated history, and the hand-made ones where arrival order used to matter.
SMALL_BODIES = [json.dumps(e) for e in tricky_events() + SMALL_EVENTS]


async def ingest_all(settings: Settings, bodies: list[str], chunks: list[int] | None = None) -> dict[str, Any]:
    """Deliver one at a time, or (with ``chunks``) in batches of those sizes, as group commit does."""
    db = Database(settings)
    try:
        processor = EventProcessor(db, settings)
        events = [parse_event(body) for body in bodies]
        if chunks is None:
            for event in events:
                await processor.ingest(event)
        else:
            position, sizes = 0, iter(chunks)
            while position < len(events):
                size = next(sizes, 50)
                await processor.ingest_many(events[position : position + size])
                position += size
        return await projection_state(db)
    finally:
        await db.dispose()


def fresh_sqlite(directory: Path, name: str) -> Settings:
    settings = sqlite_settings(directory / f"{name}.db")
    upgrade(settings)
    return settings


def in_order_state(directory: Path) -> dict[str, Any]:
    return asyncio.run(ingest_all(fresh_sqlite(directory, "in_order"), SMALL_BODIES))


_BASELINE: dict[str, Any] = {}


async def wipe(settings: Settings) -> None:
    """Empty the log and every projection, so one database serves every example."""
    db = Database(settings)
    try:
        async with db.write() as conn:
            for table in (*PROJECTION_TABLES, events):
                await conn.execute(delete(table))
    finally:
        await db.dispose()


def deliver_plan(settings: Settings, plan: list[str], chunks: list[int] | None = None) -> dict[str, Any]:
    asyncio.run(wipe(settings))
    return asyncio.run(ingest_all(settings, plan, chunks))


def replayed_state(settings: Settings) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        db = Database(settings)
        try:
            report = await EventProcessor(db, settings).replay()
            assert report.failed == []
            return await projection_state(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def baseline() -> dict[str, Any]:
    if not _BASELINE:
        with tempfile.TemporaryDirectory() as tmp:
            _BASELINE.update(in_order_state(Path(tmp)))
    return _BASELINE


_EXAMPLES = hyp_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@_EXAMPLES
@given(
    order=st.permutations(range(len(SMALL_BODIES))),
    duplicates=st.lists(st.integers(0, len(SMALL_BODIES) - 1), max_size=25),
)
def test_any_permutation_with_any_duplicates_gives_the_in_order_state(
    settings: Settings, order: list[int], duplicates: list[int]
) -> None:
    plan = [SMALL_BODIES[i] for i in order]
    for position, index in enumerate(duplicates):
        plan.insert((position * 7919) % (len(plan) + 1), SMALL_BODIES[index])
    assert deliver_plan(settings, plan) == baseline()


@_EXAMPLES
@given(
    order=st.permutations(range(len(SMALL_BODIES))),
    duplicates=st.lists(st.integers(0, len(SMALL_BODIES) - 1), max_size=25),
    chunks=st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_any_order_in_any_batches_gives_the_in_order_state_and_replay_agrees(
    settings: Settings, order: list[int], duplicates: list[int], chunks: list[int]
) -> None:
    plan = [SMALL_BODIES[i] for i in order] + [SMALL_BODIES[i] for i in duplicates]
    random.Random(len(chunks)).shuffle(plan)
    assert deliver_plan(settings, plan, chunks) == baseline()
    assert replayed_state(settings) == baseline()


def assert_hand_made_rows(state: dict[str, Any]) -> None:
    """The rows of other kinds the hand-made histories must end with."""
    for table in PROJECTION_TABLES:
        expected = EXPECTED_ROWS.get(table.name, {})
        names = [c.name for c in table.c if c.name not in ("id", "updated_at")]
        key = next(name for name in names if name.startswith("stripe_") and table.c[name].unique)
        found = {row[names.index(key)]: dict(zip(names, row, strict=True)) for row in state[table.name]}
        for object_id, values in expected.items():
            assert {k: found[object_id][k] for k in values} == values, (table.name, object_id)


def test_in_order_state_matches_the_simulators_truth(tmp_path: Path) -> None:
    state = in_order_state(tmp_path)
    assert_hand_made_rows(state)
    columns = ["stripe_subscription_id", "user_id", "stripe_customer_id", "status", "price_id", "quantity"]
    columns.append("cancel_at_period_end")
    assert len(state["user_subscriptions"]) == len(SMALL_TRUTH["subscriptions"]) + len(EXPECTED_SUBSCRIPTIONS)
    names = [c.name for c in subscriptions.c if c.name not in ("id", "updated_at")]
    found = {
        row[names.index("stripe_subscription_id")]: {c: row[names.index(c)] for c in columns}
        for row in state["user_subscriptions"]
    }
    for sub_id, truth in (SMALL_TRUTH["subscriptions"] | EXPECTED_SUBSCRIPTIONS).items():
        assert found[sub_id]["status"] == truth["status"]
        assert found[sub_id]["price_id"] == truth.get("price_id", "price_pro")
        assert found[sub_id]["user_id"] == truth.get("user_id", f"user_{sub_id}")
        assert found[sub_id]["quantity"] == truth["quantity"]
        assert found[sub_id]["cancel_at_period_end"] == truth["cancel_at_period_end"], sub_id


async def test_live_shuffled_concurrent_http_equals_replay_equals_in_order(settings: Settings, tmp_path: Path) -> None:
    """Over HTTP, 16 deliveries in flight, shuffled with 30% duplicates, on each database."""
    events, truth = simulate(SimConfig(customers=25, months=8, seed=5))
    bodies = [json.dumps(e) for e in tricky_events() + events]
    baseline_settings = sqlite_settings(tmp_path / "baseline.db")
    await asyncio.to_thread(upgrade, baseline_settings)
    baseline = await ingest_all(baseline_settings, bodies)

    rng = random.Random(3)
    plan = bodies + [b for b in bodies if rng.random() < 0.3]
    rng.shuffle(plan)
    async with AsyncTestClient(create_app(settings)) as client:
        queue = list(reversed(plan))

        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await client.post(
                    "/api/webhooks/stripe", content=body.encode(), headers={"Stripe-Signature": sign(body)}
                )
                assert response.status_code == 200, response.text

        await asyncio.gather(*(worker() for _ in range(16)))
    db = Database(settings)
    try:
        live = await projection_state(db)
        report = await EventProcessor(db, settings).replay()
        replayed = await projection_state(db)
    finally:
        await db.dispose()
    assert report.failed == []
    assert report.events == len(bodies)
    assert live == baseline
    assert replayed == live
    assert_hand_made_rows(live)
    names = [c.name for c in subscriptions.c if c.name not in ("id", "updated_at")]
    found = {
        row[names.index("stripe_subscription_id")]: dict(zip(names, row, strict=True))
        for row in live["user_subscriptions"]
    }
    assert len(found) == len(truth["subscriptions"]) + len(EXPECTED_SUBSCRIPTIONS)
    for sub_id, expected in (truth["subscriptions"] | EXPECTED_SUBSCRIPTIONS).items():
        got = found[sub_id]
        assert (got["status"], got["cancel_at_period_end"], got["quantity"]) == (
            expected["status"],
            expected["cancel_at_period_end"],
            expected["quantity"],
        ), sub_id
