"""The order of the snapshots of one Stripe object: a pure function of the set of them.

Stripe's ``created`` is in whole seconds, so two events about one object often share it. The
history of an object (:func:`history`) is its snapshots by ``created``; within one second, the
chain that starts from the object's state before that second (the last snapshot of an earlier
second, or nothing before its creation), each step the snapshot whose ``previous_attributes``
match the state before it (:func:`in_second_order`). So a change and its reversal within one
second (cancel at period end, then take it back: each one's ``previous_attributes`` are the other's
values, a cycle if looked at alone) keep the order they happened in.

Where the chain cannot decide (no snapshot's ``previous_attributes`` match the state before it,
or two do), the snapshot that follows no other remaining one comes first, then the lower status
rank (terminal last), then the smaller event id: a fixed rule, never the arrival order.

The newest snapshot (:func:`newest`, what a projection row shows) is the last of the history,
except that a terminal one (a deleted customer, an ended subscription, a paid invoice) beats every
non-terminal one, so a late ``updated`` never resurrects a deleted object.

Because every result depends only on the set of snapshots, live processing (any order, with
duplicates, in any batches) and replay agree; the projections and the KPI engine use this one
module for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

__all__ = ["Snapshot", "follows", "history", "in_second_order", "newest"]


@dataclass(frozen=True)
class Snapshot:
    """One event's view of one object."""

    event_id: str
    created: int
    event_type: str
    obj: dict[str, Any]
    previous_attributes: dict[str, Any] = field(default_factory=dict)
    terminal: bool = False
    rank: tuple[int, ...] = ()

    @property
    def order_key(self) -> tuple[bool, int]:
        """The coarse position for :func:`newest`: terminal first, then time."""
        return (self.terminal, self.created)

    @property
    def tie_key(self) -> tuple[bool, tuple[int, ...], str]:
        """The fixed rule where the chain cannot decide: the smaller key comes first."""
        return (self.terminal, self.rank, self.event_id)


def _matches(previous: Any, current: Any) -> bool:
    """True when a previous value equals the current one; nested dicts compare only the keys
    the previous value names, lists item by item (Stripe sends partial nested objects in
    ``previous_attributes``, e.g. a subscription's items with only the fields that changed)."""
    if isinstance(previous, dict) and isinstance(current, dict):
        return all(key in current and _matches(value, current[key]) for key, value in previous.items())
    if isinstance(previous, list) and isinstance(current, list):
        return len(previous) == len(current) and all(map(_matches, previous, current))
    return bool(previous == current)


def follows(later: Snapshot, earlier: Snapshot) -> bool:
    """True when ``later`` records a change away from exactly the values ``earlier`` holds."""
    previous = later.previous_attributes
    if not previous:
        return False
    if not all(key in earlier.obj and _matches(value, earlier.obj[key]) for key, value in previous.items()):
        return False
    # The change must be real: some named attribute now differs from what ``earlier`` holds.
    return any(not _matches(later.obj.get(key), earlier.obj.get(key)) for key in previous)


def _carries(later: Snapshot, earlier: Snapshot) -> bool:
    """True when ``later`` follows ``earlier`` and still holds what ``earlier`` changed (a change
    stays unless a later one names it): a snapshot reflects every change before it."""
    if not follows(later, earlier):
        return False
    named = later.previous_attributes
    return all(
        key in named or _matches(earlier.obj.get(key), later.obj.get(key)) for key in earlier.previous_attributes
    )


_SEARCHED = 8
"""Members of one second up to which a whole chain is searched for (seconds hold a few)."""


def _whole_chain(remaining: list[Snapshot], state: Snapshot) -> list[Snapshot] | None:
    """The one order of every member in which each carries the one before it, from ``state``;
    None when there is none or more than one."""
    found: list[list[Snapshot]] = []

    def extend(chain: list[Snapshot], left: list[Snapshot]) -> None:
        if len(found) > 1:
            return
        if not left:
            found.append(chain)
            return
        last = chain[-1] if chain else state
        for snap in left:
            if _carries(snap, last):
                extend([*chain, snap], [o for o in left if o is not snap])

    extend([], remaining)
    return found[0] if len(found) == 1 else None


def in_second_order(members: Sequence[Snapshot], before: Snapshot | None = None) -> list[Snapshot]:
    """Snapshots of one object within one second, in the order they happened, starting from
    ``before``: the object as it stood before that second (None before its creation).

    Where more than one member follows the state before them (a renewal and a cancellation taken
    back, all in one second), the one order in which every member also still holds what the one
    before it changed decides (a renewal's new period stays in what follows it)."""
    remaining = list({snap.event_id: snap for snap in members}.values())
    if before is not None and 1 < len(remaining) <= _SEARCHED:
        chain = _whole_chain(remaining, before)
        if chain is not None:
            return chain
    ordered: list[Snapshot] = []
    state = before
    while remaining:
        steps = [snap for snap in remaining if state is not None and follows(snap, state)]
        if len(steps) != 1:
            pool = steps or remaining
            # The chain cannot decide: what follows no other remaining snapshot comes first.
            firsts = [snap for snap in pool if not any(o is not snap and follows(snap, o) for o in remaining)]
            steps = [min(firsts or pool, key=lambda snap: snap.tie_key)]
        (state,) = steps
        ordered.append(state)
        remaining.remove(state)
    return ordered


def history(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """Every snapshot of one object (duplicates by event id once) in the order they happened."""
    unique = sorted({snap.event_id: snap for snap in snapshots}.values(), key=lambda snap: snap.created)
    ordered: list[Snapshot] = []
    for _, second in groupby(unique, key=lambda snap: snap.created):
        members = list(second)
        if len(members) == 1:
            ordered.extend(members)
        else:
            ordered.extend(in_second_order(members, ordered[-1] if ordered else None))
    return ordered


def newest(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The newest snapshot of a non-empty set: the last of its history, a terminal one first."""
    ordered = history(snapshots)
    if not ordered:
        raise ValueError("newest() needs at least one snapshot")
    terminal = [snap for snap in ordered if snap.terminal]
    return (terminal or ordered)[-1]
