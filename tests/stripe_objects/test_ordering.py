"""The newest-snapshot rule, on its own."""

from __future__ import annotations

import itertools

from api.stripe_objects.ordering import Snapshot, follows, newest


def snap(
    event_id: str,
    created: int,
    status: str,
    previous: dict[str, object] | None = None,
    *,
    terminal: bool = False,
    rank: int = 0,
    **fields: object,
) -> Snapshot:
    return Snapshot(
        event_id,
        created,
        "customer.subscription.updated",
        {"status": status, **fields},
        previous or {},
        terminal=terminal,
        rank=(rank,),
    )


def test_later_created_wins() -> None:
    assert newest([snap("evt_b", 2, "active"), snap("evt_a", 1, "past_due")]).event_id == "evt_b"


def test_terminal_beats_a_later_non_terminal_snapshot() -> None:
    deleted = snap("evt_del", 10, "canceled", terminal=True)
    late_update = snap("evt_upd", 11, "active")
    assert newest([deleted, late_update]) is deleted


def test_same_second_chain_follows_previous_attributes_not_ids() -> None:
    # incomplete -> active -> past_due within one second; ids deliberately sort the other way.
    first = snap("evt_z", 5, "incomplete", rank=0)
    second = snap("evt_y", 5, "active", {"status": "incomplete"}, rank=2)
    third = snap("evt_x", 5, "past_due", {"status": "active"}, rank=1)
    assert follows(second, first)
    assert follows(third, second)
    assert not follows(first, third)
    for order in itertools.permutations([first, second, third]):
        assert newest(order) is third


def test_nested_previous_attributes_match_partially() -> None:
    before = snap("evt_a", 5, "active", items={"data": [{"quantity": 1}], "object": "list"}, plan="x")
    after = snap("evt_b", 5, "active", {"items": {"data": [{"quantity": 1}]}}, items={"data": [{"quantity": 3}]})
    assert follows(after, before)
    assert newest([after, before]) is after


def test_status_order_then_event_id_break_unrelated_ties() -> None:
    a = snap("evt_a", 7, "active", rank=2)
    b = snap("evt_b", 7, "trialing", rank=1)
    assert newest([a, b]) is a
    c = snap("evt_c", 7, "active", rank=2)
    assert newest([a, c]).event_id == "evt_c"


def test_flip_flop_cycle_falls_back_to_a_fixed_rule() -> None:
    a = snap("evt_a", 3, "active", {"status": "past_due"}, rank=2)
    b = snap("evt_b", 3, "past_due", {"status": "active"}, rank=3)
    assert newest([a, b]) is newest([b, a])


def test_duplicates_count_once() -> None:
    a = snap("evt_a", 1, "active")
    assert newest([a, a, a]) is a


def test_a_renewal_in_the_second_of_a_cancellation_and_its_undo_comes_last() -> None:
    """Found by a simulated history: at the period's end, a cancellation at period end, its undo
    and the renewal, all in one second. The cancellation and the renewal both follow the state
    before; only cancel, undo, renew keeps every change in what comes after it (the new period)."""
    period = {"current_period_end": 100, "latest_invoice": "in_0"}
    before = snap("evt_0", 50, "active", cancel_at_period_end=False, **period)
    cancel = snap("evt_c", 100, "active", {"cancel_at_period_end": False}, cancel_at_period_end=True, **period)
    undo = snap("evt_u", 100, "active", {"cancel_at_period_end": True}, cancel_at_period_end=False, **period)
    renewal = snap(
        "evt_a",  # sorts first: the fixed rule alone would take it first
        100,
        "active",
        {"current_period_end": 100, "latest_invoice": "in_0"},
        cancel_at_period_end=False,
        current_period_end=200,
        latest_invoice="in_1",
    )
    for order in itertools.permutations([cancel, undo, renewal]):
        assert newest([before, *order]) is renewal
