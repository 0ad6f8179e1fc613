"""The simulator: deterministic, Stripe-shaped, and consistent with its own ground truth."""

from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from analytics.engine import net_movement
from simulator.delivery import delivery_plan
from simulator.engine import SimConfig, simulate
from simulator.objects import CURRENT, LEGACY

FIXTURES = json.loads((Path(__file__).parents[2] / "simulator" / "stripe_fixtures.json").read_text())["resources"]
SHARED = Path(__file__).parents[3] / "shared" / "stripe" / "fixtures3.json"

# Fields of the older API shape that Stripe's current fixtures no longer carry.
LEGACY_FIELDS = {
    "subscription": {"current_period_start", "current_period_end", "discount", "quantity"},
    "invoice": {"payment_intent", "charge", "payments"},
}

EVENTS, TRUTH = simulate(SimConfig(customers=60, months=12, seed=42))


def test_same_seed_same_history_other_seed_other_history() -> None:
    again, truth = simulate(SimConfig(customers=60, months=12, seed=42))
    assert again == EVENTS
    assert truth == TRUTH
    other, _ = simulate(SimConfig(customers=60, months=12, seed=43))
    assert other != EVENTS


def test_events_are_in_created_order_with_unique_ids() -> None:
    assert all(a["created"] <= b["created"] for a, b in pairwise(EVENTS))
    assert len({e["id"] for e in EVENTS}) == len(EVENTS)


def test_history_covers_the_billing_life() -> None:
    types = Counter(e["type"] for e in EVENTS)
    for expected in (
        "checkout.session.completed",
        "checkout.session.expired",
        "customer.created",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
        "invoice.paid",
        "invoice.payment_failed",
        "charge.succeeded",
        "charge.failed",
    ):
        assert types[expected] > 0, expected
    assert {e["api_version"] for e in EVENTS} == {CURRENT, LEGACY}
    currencies = {e["data"]["object"].get("currency") for e in EVENTS if e["type"] == "invoice.paid"}
    assert {"usd", "eur", "gbp"} <= currencies
    intervals = {
        e["data"]["object"]["items"]["data"][0]["price"]["recurring"]["interval"]
        for e in EVENTS
        if e["type"] == "customer.subscription.created"
    }
    assert intervals == {"month", "year"}


def test_objects_use_only_stripe_field_names() -> None:
    for event in EVENTS:
        assert set(event) <= set(FIXTURES["event"]) | {"data"}
        obj = event["data"]["object"]
        kind = obj["object"]
        allowed = set(FIXTURES[kind]) | LEGACY_FIELDS.get(kind, set())
        assert set(obj) <= allowed, (kind, set(obj) - allowed)
        if kind == "subscription":
            for item in obj["items"]["data"]:
                assert set(item) <= set(FIXTURES["subscription_item"])


def test_truth_movements_add_up_every_month() -> None:
    previous: dict[str, int] = {}
    for month in TRUTH["months"]:
        for currency, moves in month["mrr_movements"].items():
            assert month["mrr"].get(currency, 0) == previous.get(currency, 0) + net_movement(moves)
        previous = month["mrr"]
    assert TRUTH["months"][-1]["mrr"]["usd"] > 0


def test_truth_final_mrr_is_the_sum_of_live_subscriptions() -> None:
    final = TRUTH["months"][-1]
    total = sum(s["mrr"] for s in TRUTH["subscriptions"].values())
    assert total == sum(final["mrr"].values())


@pytest.mark.skipif(not SHARED.exists(), reason="shared/stripe/fixtures3.json is not beside this checkout")
def test_vendored_fixtures_are_stripes() -> None:
    shared = json.loads(SHARED.read_text())["resources"]
    for name, value in FIXTURES.items():
        assert shared[name] == value, name


def test_delivery_plan_duplicates_and_shuffles() -> None:
    bodies = [f"b{i}" for i in range(200)]
    ordered = delivery_plan(bodies, duplicates=0.25, shuffle=False, seed=1)
    assert sorted(set(ordered)) == sorted(bodies)
    assert 220 < len(ordered) < 280
    assert [b for i, b in enumerate(ordered) if i == 0 or ordered[i - 1] != b] == bodies
    shuffled = delivery_plan(bodies, duplicates=0.25, shuffle=True, seed=1)
    assert sorted(shuffled) == sorted(ordered)
    assert shuffled != ordered
