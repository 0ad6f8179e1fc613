"""``POST /api/webhooks/stripe``: verify, store, process, answer."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_200_OK

from api.events.model import InvalidEvent, parse_event
from api.events.processing import DatabaseUnavailable, EventProcessor
from api.webhooks.signature import SignatureRejected, verify_signature

__all__ = ["WebhookController"]

MAX_BODY_BYTES = 1024 * 1024


class WebhookController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]

    @post(
        "/stripe",
        status_code=HTTP_200_OK,
        request_max_body_size=MAX_BODY_BYTES,
        summary="Receive a Stripe event",
        description=(
            "Verifies `Stripe-Signature` over the raw body (any configured secret, 300 s tolerance), "
            "stores the event in the event log (unique by id) and applies it. 200 once the event is "
            "durably stored, whatever its processing outcome (a failed one is retried by the worker); "
            "400 for a bad signature or body; 413 over 1 MiB; 503 when the database is unavailable."
        ),
    )
    async def receive(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        processor: EventProcessor = request.app.state.processor
        settings = processor.settings
        raw = await request.body()
        try:
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(status_code=400, detail="The body is not valid UTF-8.") from None
        secrets = settings.webhook_secrets
        if not secrets:
            raise HTTPException(
                status_code=503,
                detail="No webhook secret is configured (STRIPE_WEBHOOK_SECRET); the event was not accepted.",
            )
        try:
            verify_signature(
                payload, request.headers.get("stripe-signature"), secrets, settings.webhook_tolerance_seconds
            )
            event = parse_event(payload)
        except (SignatureRejected, InvalidEvent) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        try:
            outcome = await processor.ingest(event)
        except DatabaseUnavailable:
            raise HTTPException(
                status_code=503,
                detail="The event store is unavailable; the event was not stored. Stripe will retry.",
                headers={"Retry-After": "10"},
            ) from None
        return {"received": True, "event_id": event.event_id, "outcome": outcome.value}
