"""``POST /api/webhooks/stripe``: verify, store, process, answer."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_200_OK

from api.protection.guard import count_rejected_delivery
from api.webhooks.receiver import DeliveryRejected, receive

__all__ = ["WebhookController"]

MAX_BODY_BYTES = 1024 * 1024


class WebhookController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]

    @post(
        "/stripe",
        status_code=HTTP_200_OK,
        request_max_body_size=MAX_BODY_BYTES,
        # Never screened, blocked or limited: the signature is its authentication. Only deliveries
        # that fail verification count against the webhook tier (per source address).
        opt={"rate_limit": "webhook", "screen": False},
        summary="Receive a Stripe event",
        description=(
            "Verifies `Stripe-Signature` over the raw body (any configured secret, 300 s tolerance), "
            "stores the event in the event log (unique by id) and applies it. 200 once the event is "
            "durably stored, whatever its processing outcome (a failed one is retried by the worker); "
            "400 for a bad signature or body; 413 over 1 MiB; 503 when the database is unavailable."
        ),
    )
    async def receive(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        raw = await request.body()
        try:
            event, outcome = await receive(request.app.state.processor, raw, request.headers.get("stripe-signature"))
        except DeliveryRejected as exc:
            if exc.status == 400:  # failed verification or not an event: counted, per source
                protection = request.app.state.protection
                wait = await count_rejected_delivery(
                    protection.rate_limits, protection.incidents, protection.clients, request.scope
                )
                if wait is not None:
                    raise HTTPException(
                        status_code=429,
                        detail=f"Too many deliveries from this address failed verification; try again in {wait} s. "
                        "Verified deliveries are never limited.",
                        headers={"Retry-After": str(wait)},
                    ) from None
            raise HTTPException(status_code=exc.status, detail=exc.detail, headers=exc.headers) from None
        return {"received": True, "event_id": event.event_id, "outcome": outcome.value}
