"""Which of several snapshots of one Stripe object is the newest: a pure function of the set.

Stripe's ``created`` is in whole seconds, so two events about one object often share it. The order
used here, from strongest to weakest:

1. A terminal snapshot (a deleted customer, an ended subscription, a paid invoice) beats every
   non-terminal one, so a late ``updated`` never resurrects a deleted object.
2. A later ``created``.
3. Within one second, the object's own progression: an event whose ``previous_attributes`` equal
   another event's values comes after that event.
4. Then the object's status order (e.g. ``incomplete`` < ``active``; ``open`` < ``paid``).
5. Only then a fixed rule: the greater event id.

Because the result depends only on the set of snapshots, never on the order they arrived in, live
processing (any order, with duplicates) and replay agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Snapshot", "follows", "newest"]


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
        """The coarse position: terminal first, then time. Ties need :func:`newest`."""
        return (self.terminal, self.created)


def _matches(previous: Any, current: Any) -> bool:
    """True when a previous value equals the current one; nested dicts compare only the keys
    the previous value names (Stripe sends partial nested objects in ``previous_attributes``)."""
    if isinstance(previous, dict) and isinstance(current, dict):
        return all(key in current and _matches(value, current[key]) for key, value in previous.items())
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


def newest(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The newest snapshot of a non-empty set (duplicates by event id count once)."""
    unique = {snap.event_id: snap for snap in snapshots}
    if not unique:
        raise ValueError("newest() needs at least one snapshot")
    top = max(snap.order_key for snap in unique.values())
    group = [snap for snap in unique.values() if snap.order_key == top]
    if len(group) == 1:
        return group[0]
    followed = {a.event_id for a in group for b in group if a is not b and follows(b, a)}
    # Everything followed by another (a cycle of flip-flops) leaves no sink: fall back to all.
    sinks = [snap for snap in group if snap.event_id not in followed] or group
    return max(sinks, key=lambda snap: (snap.rank, snap.event_id))
