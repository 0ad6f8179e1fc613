"""An object fetched from Stripe as an event of the log (source ``stripe_sync``).

The snapshot is dated when it was fetched (and at least a second after the sync's previous
snapshot of the object, which is certainly older): the object then reflects every change before
that second, so the newest-snapshot rule orders it against deliveries as it orders deliveries
among themselves (a delivery from the same second is placed by the in-second chain its
``previous_attributes`` describe).

Its id is derived from the object, a digest of its content and the digest of the snapshot the sync
logged before it. So a sync killed after storing a page and before noting its digests stores the
same ids again when it resumes (the log refuses a known id: nothing is doubled), while an object
that changes and changes back (A, B, A) still gets a new snapshot each time.
"""

from __future__ import annotations

import hashlib

from api.events.model import SYNC_SOURCE, ParsedEvent, snapshot
from api.gateway.reading import Fetched

__all__ = ["SOURCE", "digest_of", "snapshot_event"]

SOURCE = SYNC_SOURCE


def digest_of(obj: Fetched) -> str:
    """A digest of the object's JSON as Stripe sent it (without whitespace): Stripe writes an
    object's fields in one order, so an unchanged object reads the same in every list and on its
    own, and is recognised without being decoded."""
    return hashlib.blake2b(obj.raw, digest_size=16).hexdigest()


def snapshot_event(
    obj: Fetched, event_type: str, fetched_at: int, digest: str, previous: str | None, *, heal: bool = False
) -> ParsedEvent:
    """The log event of an object, dated ``fetched_at`` (whole seconds). A ``heal`` snapshot
    (reconciliation logging an object whose projection drifted, digest unchanged or not) has the
    second in its id too, so it is never taken for one already logged."""
    suffix = f"_r{fetched_at}" if heal else ""
    event_id = f"sync_{obj.id}_{digest[:16]}_{(previous or '0')[:8]}{suffix}"
    return snapshot(event_id, event_type, fetched_at, obj.data, SOURCE, obj_json=obj.raw)
