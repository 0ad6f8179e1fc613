"""Every call this service makes to the Stripe API goes through :class:`StripeGateway`.

- The official SDK's ``StripeClient`` over httpx (async), with a per-request timeout and the SDK's
  own retries of network errors, 409s and 5xx answers.
- An idempotency key on every POST, derived from the caller's key, so a retried action (by the
  SDK, the client app or a person double-clicking) happens once at Stripe.
- A circuit breaker (``purgatory``): after ``STRIPE_BREAKER_THRESHOLD`` consecutive failures of
  Stripe itself (network, 5xx, 429, timeouts), calls fail at once with 503 and ``Retry-After``
  for ``STRIPE_BREAKER_RESET_SECONDS``, then one trial call decides. A declined card or an
  invalid request is the caller's problem, not Stripe's, and never opens it.
- Stripe errors become user-facing messages (:mod:`api.gateway.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import stripe
import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from api.gateway.base import CancellationDetails, CheckoutParams, HostedSession, ProrationBehavior
from api.gateway.errors import ProviderUnavailable, from_stripe_error, is_unexpected_answer
from api.observability.metrics import STRIPE_BREAKER_STATE, STRIPE_LATENCY, STRIPE_REQUESTS
from api.observability.tracing import tracer
from api.settings import Settings

__all__ = ["BREAKER_NAME", "StripeGateway"]

logger = structlog.get_logger(__name__)

BREAKER_NAME = "stripe"
_BREAKER_STATES = {"closed": 0, "half-opened": 1, "opened": 2}

T = TypeVar("T")

# Errors that say something about the request or the customer, not about Stripe's health.
_CALLER_ERRORS = (
    stripe.CardError,
    stripe.InvalidRequestError,
    stripe.IdempotencyError,
    stripe.AuthenticationError,
    stripe.PermissionError,
)


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject as plain JSON-compatible dicts (as a webhook would carry it)."""
    value = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return value if isinstance(value, dict) else {}


class StripeGateway:
    """The Stripe API behind the :class:`~api.gateway.base.PaymentGateway` protocol."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=settings.stripe_max_network_retries,
            http_client=stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds),
        )
        self.reset_seconds = settings.stripe_breaker_reset_seconds
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.stripe_breaker_threshold,
            default_ttl=settings.stripe_breaker_reset_seconds,
            exclude=[*_CALLER_ERRORS, (stripe.APIError, is_unexpected_answer)],
        )
        self.breakers.add_listener(self._on_breaker_event)

    @staticmethod
    def _on_breaker_event(name: str, kind: str, event: Any) -> None:
        if kind == "state_changed":
            STRIPE_BREAKER_STATE.set(_BREAKER_STATES.get(event.state, 0))
            log = logger.error if event.state == "opened" else logger.warning
            log("stripe circuit breaker changed state", breaker=name, state=event.state)

    async def breaker_state(self) -> str:
        """``closed``, ``opened`` or ``half-opened``."""
        return (await self.breakers.get_breaker(BREAKER_NAME)).context.state

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        breaker = await self.breakers.get_breaker(BREAKER_NAME)
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"stripe {operation}", kind=SpanKind.CLIENT, attributes={"stripe.operation": operation}
        ) as span:
            try:
                async with breaker:
                    result = await call()
            except OpenedState as exc:
                STRIPE_REQUESTS.labels(operation, "breaker_open").inc()
                span.set_attribute("stripe.outcome", "breaker_open")
                wait = int(exc.opened_at + self.reset_seconds - time.time()) + 1
                logger.info("stripe call refused: circuit breaker open", operation=operation, retry_after=wait)
                raise ProviderUnavailable(wait) from None
            except stripe.StripeError as exc:
                STRIPE_REQUESTS.labels(operation, type(exc).__name__).inc()
                STRIPE_LATENCY.labels(operation).observe(time.perf_counter() - started)
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("stripe.outcome", type(exc).__name__)
                if exc.request_id:
                    span.set_attribute("stripe.request_id", exc.request_id)
                raise from_stripe_error(exc, operation, self.reset_seconds) from None
        STRIPE_REQUESTS.labels(operation, "ok").inc()
        STRIPE_LATENCY.labels(operation).observe(time.perf_counter() - started)
        return result

    async def create_checkout_session(self, params: CheckoutParams) -> HostedSession:
        body: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": params.price_id, "quantity": 1}],
            "client_reference_id": params.user_id,
            "metadata": {"user_id": params.user_id},
            "subscription_data": {"metadata": {"user_id": params.user_id}},
            "success_url": params.success_url,
            "cancel_url": params.cancel_url,
        }
        if params.trial_days:
            body["subscription_data"]["trial_period_days"] = params.trial_days
        if params.customer_id:
            body["customer"] = params.customer_id
        elif params.email:
            body["customer_email"] = params.email
        session = await self._call(
            "checkout.sessions.create",
            lambda: self.client.v1.checkout.sessions.create_async(
                body,  # type: ignore[arg-type]
                {"idempotency_key": f"{params.idempotency_key}:checkout"},
            ),
        )
        return HostedSession(id=session.id, url=session.url or "", expires_at=session.expires_at)

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        at_period_end: bool,
        idempotency_key: str,
        details: CancellationDetails | None = None,
    ) -> dict[str, Any]:
        reasons = details.as_params() if details else {}
        if at_period_end:
            params: dict[str, Any] = {"cancel_at_period_end": True}
            if reasons:
                params["cancellation_details"] = reasons
            sub = await self._call(
                "subscriptions.update",
                lambda: self.client.v1.subscriptions.update_async(
                    subscription_id,
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": f"{idempotency_key}:cancel"},
                ),
            )
        else:  # DELETE: idempotent by nature, and Stripe ignores keys on it
            cancel_params: dict[str, Any] = {"cancellation_details": reasons} if reasons else {}
            sub = await self._call(
                "subscriptions.cancel",
                lambda: self.client.v1.subscriptions.cancel_async(subscription_id, cancel_params),  # type: ignore[arg-type]
            )
        return _plain(sub)

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any]:
        sub = await self._call(
            "subscriptions.update",
            lambda: self.client.v1.subscriptions.update_async(
                subscription_id, {"cancel_at_period_end": False}, {"idempotency_key": f"{idempotency_key}:resume"}
            ),
        )
        return _plain(sub)

    async def change_price(
        self, subscription_id: str, price_id: str, *, proration: ProrationBehavior, idempotency_key: str
    ) -> dict[str, Any]:
        current = await self._call(
            "subscriptions.retrieve", lambda: self.client.v1.subscriptions.retrieve_async(subscription_id)
        )
        item_id = current["items"]["data"][0]["id"]
        sub = await self._call(
            "subscriptions.update",
            lambda: self.client.v1.subscriptions.update_async(
                subscription_id,
                {"items": [{"id": item_id, "price": price_id}], "proration_behavior": proration},
                {"idempotency_key": f"{idempotency_key}:change-price"},
            ),
        )
        return _plain(sub)

    async def create_portal_session(self, customer_id: str, return_url: str, *, idempotency_key: str) -> HostedSession:
        session = await self._call(
            "billing_portal.sessions.create",
            lambda: self.client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url}, {"idempotency_key": f"{idempotency_key}:portal"}
            ),
        )
        return HostedSession(id=session.id, url=session.url)

    async def close(self) -> None:
        http = self.client._requestor._client  # the SDK keeps its HTTP client here
        if http is not None and hasattr(http, "close_async"):
            await http.close_async()  # type: ignore[no-untyped-call]
