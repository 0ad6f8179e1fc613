"""A Stripe event as the service sees it: parsed once from the raw bytes, validated for the fields
the service relies on, with the raw text kept for the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from api.json_depth import TooDeep, decode_bounded
from api.stripe_objects.fields import customer_id_of, expandable_id, object_id_of

__all__ = ["STRIPE_SOURCES", "SYNC_SOURCE", "InvalidEvent", "ParsedEvent", "check_storable", "parse_event", "snapshot"]

_MAX_CREATED = 2**63 - 1
# Lengths of the event log's columns (``api.db.models.SubscriptionEvent``): PostgreSQL refuses a
# longer value, SQLite would store it, so both refuse it here, the same way.
_COLUMN_LIMITS = {"api_version": 32, "object type": 64, "object id": 255, "customer id": 255}


class InvalidEvent(ValueError):
    """The body is not a Stripe event; the message says why, for a person."""


SYNC_SOURCE = "stripe_sync"
"""The source of an object ``faddl sync`` fetched (:mod:`api.sync.snapshots`)."""
STRIPE_SOURCES = ("stripe", "stripe_api", SYNC_SOURCE)
"""Log sources whose rows are Stripe objects: deliveries (``stripe``), the API's answers to our
own calls, applied at once (``stripe_api``), and objects fetched by ``faddl sync`` and
reconciliation (``stripe_sync``). The projections are a function of these rows alone."""


@dataclass(frozen=True)
class ParsedEvent:
    """The parts of an event the service uses; ``raw`` is what was received."""

    event_id: str
    type: str
    created: int
    api_version: str | None
    livemode: bool
    obj: dict[str, Any]
    previous_attributes: dict[str, Any]
    raw: str
    source: str = "stripe"
    """One of :data:`STRIPE_SOURCES`, or ``service`` for the service's own events."""

    @property
    def object_type(self) -> str | None:
        value = self.obj.get("object")
        return value if isinstance(value, str) else None

    @property
    def object_id(self) -> str | None:
        return object_id_of(self.obj)

    @property
    def customer_id(self) -> str | None:
        return customer_id_of(self.obj)

    @property
    def charge_id(self) -> str | None:
        """The charge a charge, refund or dispute event is about."""
        if self.object_type == "charge":
            return self.object_id
        if self.object_type in ("refund", "dispute"):
            return expandable_id(self.obj.get("charge"))
        return None


def check_storable(event: ParsedEvent) -> None:
    """Raise :class:`InvalidEvent` when the event cannot be stored as it is: its ``created`` past
    what a 64-bit column holds, or a field longer than its column."""
    if event.created > _MAX_CREATED:
        raise InvalidEvent("The event's `created` is not a timestamp a database can store (at most 2^63 - 1).")
    values = {
        "api_version": event.api_version,
        "object type": event.object_type,
        "object id": event.object_id,
        "customer id": event.customer_id,
    }
    for name, value in values.items():
        if value is not None and len(value) > _COLUMN_LIMITS[name]:
            raise InvalidEvent(
                f"The event's {name} is {len(value)} characters long; at most {_COLUMN_LIMITS[name]} can be stored."
            )


def _plain(value: Any) -> Any:
    """A mapping msgspec does not encode as it is (an SDK object left in an answer) as a dict."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in an event")


def snapshot(
    event_id: str, event_type: str, created: int, obj: dict[str, Any], source: str, *, obj_json: bytes | None = None
) -> ParsedEvent:
    """An object the service fetched or was answered with itself, as an event of the log: the
    envelope of a Stripe event around it, under ``source`` (``stripe_api``, ``stripe_sync``).
    ``obj_json``, the object's JSON as Stripe sent it when the caller has it, goes into the log as
    it is."""
    livemode = bool(obj.get("livemode"))
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "api_version": None,
        "livemode": livemode,
        "data": {"object": obj if obj_json is None else msgspec.Raw(obj_json)},
    }
    if not event_id or len(event_id) > 255:
        raise InvalidEvent("The event has no usable `id` (a string of at most 255 characters).")
    if not event_type or len(event_type) > 128 or created < 0:
        raise InvalidEvent(f"A snapshot needs a type and a time (got {event_type!r}, {created}).")
    # The object is already parsed (an API answer): encoded once, not encoded and parsed again
    # (an eighth of a first sync went there).
    raw = msgspec.json.encode(body, enc_hook=_plain).decode()
    return ParsedEvent(event_id, event_type, created, None, livemode, obj, {}, raw, source)


def parse_event(raw: bytes | str, source: str = "stripe", max_depth: int = 64) -> ParsedEvent:
    """Parse and check an event body. Raises :class:`InvalidEvent` with a readable reason (also
    for JSON nested deeper than ``max_depth``)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InvalidEvent("The body is not valid UTF-8.") from exc
    try:
        body = decode_bounded(text, max_depth)
    except TooDeep as exc:
        raise InvalidEvent(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"The body is not valid JSON ({exc}).") from exc
    if not isinstance(body, dict):
        raise InvalidEvent("The body must be a JSON object (a Stripe event).")
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise InvalidEvent("The event has no usable `id` (a string of at most 255 characters).")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 128:
        raise InvalidEvent("The event has no usable `type`.")
    if isinstance(created, bool) or not isinstance(created, int) or created < 0:
        raise InvalidEvent("The event has no usable `created` timestamp (whole seconds since 1970).")
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidEvent("The event has no `data.object`.")
    previous = data.get("previous_attributes")
    api_version = body.get("api_version")
    return ParsedEvent(
        event_id=event_id,
        type=event_type,
        created=created,
        api_version=api_version if isinstance(api_version, str) else None,
        livemode=bool(body.get("livemode")),
        obj=data["object"],
        previous_attributes=previous if isinstance(previous, dict) else {},
        raw=text,
        source=source,
    )
