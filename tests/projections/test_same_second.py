"""A change and its reversal within one second: the order is the chain that starts from the
object's state before that second, in the projections and in the KPIs alike, for any delivery
order, batching and replay."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from analytics.engine import Facts
from analytics.facts import facts_table
from analytics.report import analyze
from api.db.engine import Database
from api.events.log import events
from api.events.model import parse_event
from api.ingest.processing import EventProcessor
from api.projections.projector import subscriptions
from api.stripe_objects.ordering import Snapshot, history, in_second_order, newest
from tests.projections.test_projector import rows
from tests.tricky import cancel_flips, seat_flip


def snap(event_id: str, created: int, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> Snapshot:
    return Snapshot(event_id, created, "customer.subscription.updated", obj, previous or {}, rank=(2, 0))


def test_a_flip_and_its_undo_keep_their_order_from_the_state_before() -> None:
    before = snap("evt_0", 1, {"cape": False})
    cancel = snap("evt_b", 2, {"cape": True}, {"cape": False})
    undo = snap("evt_a", 2, {"cape": False}, {"cape": True})
    for members in itertools.permutations([cancel, undo]):
        assert in_second_order(list(members), before) == [cancel, undo]
        assert newest([before, *members]) is undo
    # Anchored the other way (the object was cancelling before the second), the order flips.
    cancelling = snap("evt_0", 1, {"cape": True})
    assert in_second_order([cancel, undo], cancelling) == [undo, cancel]


def test_a_longer_chain_from_creation() -> None:
    created = snap("evt_9", 5, {"q": 1})
    steps = [snap(f"evt_{8 - i}", 5, {"q": 3 if i % 2 == 0 else 1}, {"q": 1 if i % 2 == 0 else 3}) for i in range(5)]
    for members in itertools.permutations([created, *steps]):
        # Three steps look alike (1 -> 3), two others (3 -> 1): which of the alike comes first no
        # content can tell, but every order gives the same states.
        ordered = history(members)
        assert ordered[0] is created
        assert [s.obj["q"] for s in ordered] == [1, 3, 1, 3, 1, 3]


@pytest.mark.parametrize("flips", [2, 3, 4])
async def test_projection_follows_the_chain_in_any_order_and_batching(
    processor: EventProcessor, db: Database, flips: int
) -> None:
    evts = cancel_flips("sub_A", "cus_A", flips)
    expected = flips % 2 == 1  # an odd number of toggles ends cancelling
    parsed = [parse_event(json.dumps(e)) for e in evts]
    for order in itertools.permutations(range(len(parsed))):
        async with db.write() as conn:  # a fresh log for each order
            await conn.execute(subscriptions.delete())
            await conn.execute(events.delete())
        batch = [parsed[i] for i in order]
        if sum(order) % 2:
            await processor.ingest_many(batch)  # one group-commit transaction
        else:
            for event in batch:  # one at a time
                await processor.ingest(event)
        (row,) = await rows(db, subscriptions)
        assert row["cancel_at_period_end"] is expected, order
    await processor.replay()
    (row,) = await rows(db, subscriptions)
    assert row["cancel_at_period_end"] is expected


def test_kpis_follow_the_chain_in_any_order() -> None:
    """Seats 1 -> 3 -> 1 within one second: the MRR is one seat's, whatever the ids say."""
    for order in itertools.permutations(seat_flip("sub_A", "cus_A")):
        facts = Facts(facts_table(parse_event(json.dumps(e)) for e in order))
        try:
            (month,) = analyze(facts).months
        finally:
            facts.close()
        assert month.mrr == {"usd": 2900}, [e["id"] for e in order]
        assert month.mrr_movements["usd"]["expansion"] == 5800
        assert month.mrr_movements["usd"]["contraction"] == 5800
