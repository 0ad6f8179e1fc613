"""Accepting one webhook delivery: verify the signature, parse, store and apply. The webhook route
and demo mode's in-process deliveries both go through :func:`receive`, so a demo event is held to
exactly what a Stripe delivery is."""

from __future__ import annotations

from api.events.model import InvalidEvent, ParsedEvent, parse_event
from api.events.processing import DatabaseUnavailable, EventProcessor, Outcome
from api.webhooks.signature import SignatureRejected, verify_signature

__all__ = ["DeliveryRejected", "receive"]


class DeliveryRejected(Exception):
    """The delivery was not accepted; ``status`` and ``detail`` are the answer to give."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


async def receive(processor: EventProcessor, raw: bytes, signature: str | None) -> tuple[ParsedEvent, Outcome]:
    """Verify, store and apply one delivery; the event is durable when this returns."""
    settings = processor.settings
    try:
        payload = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryRejected(400, "The body is not valid UTF-8.") from None
    secrets = settings.webhook_secrets
    if not secrets:
        raise DeliveryRejected(
            503, "No webhook secret is configured (STRIPE_WEBHOOK_SECRET); the event was not accepted."
        )
    try:
        verify_signature(payload, signature, secrets, settings.webhook_tolerance_seconds)
        event = parse_event(payload)
    except (SignatureRejected, InvalidEvent) as exc:
        raise DeliveryRejected(400, str(exc)) from None
    try:
        outcome = await processor.ingest(event)
    except DatabaseUnavailable:
        raise DeliveryRejected(
            503,
            "The event store is unavailable; the event was not stored. Stripe will retry.",
            {"Retry-After": "10"},
        ) from None
    return event, outcome
