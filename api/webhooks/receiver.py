"""Accepting one webhook delivery: verify the signature, parse, store and apply. The webhook route
and demo mode's in-process deliveries both go through :func:`receive`, so a demo event is held to
exactly what a Stripe delivery is."""

from __future__ import annotations

import time

from api.events.model import InvalidEvent, ParsedEvent, check_storable, parse_event
from api.ingest.processing import DatabaseUnavailable, EventProcessor, Outcome
from api.observability.metrics import WEBHOOK_EVENTS, WEBHOOK_LAG, WEBHOOK_PROCESSING, WEBHOOK_REJECTIONS
from api.observability.tracing import tracer
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
    started = time.perf_counter()
    settings = processor.settings
    try:
        payload = raw.decode("utf-8")
    except UnicodeDecodeError:
        WEBHOOK_REJECTIONS.labels("body").inc()
        raise DeliveryRejected(400, "The body is not valid UTF-8.") from None
    secrets = settings.webhook_secrets
    if not secrets:
        WEBHOOK_REJECTIONS.labels("not_configured").inc()
        raise DeliveryRejected(
            503, "No webhook secret is configured (STRIPE_WEBHOOK_SECRET); the event was not accepted."
        )
    try:
        verify_signature(payload, signature, secrets, settings.webhook_tolerance_seconds)
    except SignatureRejected as exc:
        WEBHOOK_REJECTIONS.labels("signature").inc()
        raise DeliveryRejected(400, str(exc)) from None
    try:
        event = parse_event(payload, max_depth=settings.json_max_depth)
        check_storable(event)
    except InvalidEvent as exc:
        WEBHOOK_REJECTIONS.labels("body").inc()
        raise DeliveryRejected(400, str(exc)) from None
    with tracer.start_as_current_span(
        f"webhook {event.type}", attributes={"stripe.event.id": event.event_id, "stripe.event.type": event.type}
    ) as span:
        try:
            outcome = await processor.ingest(event)
        except DatabaseUnavailable:
            WEBHOOK_REJECTIONS.labels("unavailable").inc()
            raise DeliveryRejected(
                503,
                "The event store is unavailable; the event was not stored. Stripe will retry.",
                {"Retry-After": "10"},
            ) from None
        span.set_attribute("faddl.outcome", outcome.value)
    WEBHOOK_EVENTS.labels(event.type, outcome.value).inc()
    WEBHOOK_PROCESSING.observe(time.perf_counter() - started)
    WEBHOOK_LAG.observe(max(0.0, time.time() - event.created))
    return event, outcome
