"""Hand-made Stripe histories for the cases where arrival order used to matter: changes reversed
within one second, values copied from another object, and the older API shapes. Each comes with
the state it must end in; the property tests mix them into a simulated history and deliver
everything in any order, batching and duplication, then replay it.

Events are listed in the order they happened (Stripe's ``created`` is whole seconds, so several
share one)."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_event, subscription

T0 = 1_740_000_000
"""Before every simulated history (those start in 2025), so no id or second collides."""
T1 = T0 + 100


def cancel_flips(sub_id: str, customer: str, flips: int) -> list[dict[str, Any]]:
    """Created at T0; at T1, ``flips`` updates each toggling ``cancel_at_period_end``; event ids
    sort against the order they happened in."""
    evts = [
        make_event(
            "customer.subscription.created",
            subscription(sub_id, customer, user=f"user_{sub_id}"),
            created=T0,
            event_id=f"evt_{sub_id}_0",
        )
    ]
    for step in range(1, flips + 1):
        cancelling = step % 2 == 1
        cancel_at = T0 + 2_600_000
        evts.append(
            make_event(
                "customer.subscription.updated",
                subscription(
                    sub_id,
                    customer,
                    user=f"user_{sub_id}",
                    cancel_at_period_end=cancelling,
                    cancel_at=cancel_at if cancelling else None,
                ),
                created=T1,
                event_id=f"evt_{sub_id}_{9 - step}",
                previous={"cancel_at_period_end": not cancelling, "cancel_at": None if cancelling else cancel_at},
            )
        )
    return evts


def seat_flip(sub_id: str, customer: str) -> list[dict[str, Any]]:
    """Created at T0 with one seat; at T1, seats 1 -> 3 -> 1 (ids sort against that order)."""
    user = f"user_{sub_id}"
    created = subscription(sub_id, customer, user=user)
    evts = [make_event("customer.subscription.created", created, created=T0, event_id=f"evt_{sub_id}_0")]
    for event_suffix, (before, after) in (("9", (1, 3)), ("1", (3, 1))):
        evts.append(
            make_event(
                "customer.subscription.updated",
                subscription(sub_id, customer, user=user, quantity=after),
                created=T1,
                event_id=f"evt_{sub_id}_{event_suffix}",
                previous={"items": {"data": [{"quantity": before}]}},
            )
        )
    return evts


def tricky_events() -> list[dict[str, Any]]:
    """Every hand-made history, in the order it happened."""
    return [
        *cancel_flips("sub_tk_flip2", "cus_tk_flip2", 2),
        *cancel_flips("sub_tk_flip3", "cus_tk_flip3", 3),
        *seat_flip("sub_tk_seats", "cus_tk_seats"),
    ]


EXPECTED_SUBSCRIPTIONS: dict[str, dict[str, Any]] = {
    "sub_tk_flip2": {"status": "active", "cancel_at_period_end": False, "quantity": 1},
    "sub_tk_flip3": {"status": "active", "cancel_at_period_end": True, "quantity": 1},
    "sub_tk_seats": {"status": "active", "cancel_at_period_end": False, "quantity": 1},
}
"""What each hand-made subscription must end as, whatever the order of delivery."""
