"""The payment provider as the billing actions see it. Two implementations: :mod:`api.gateway.stripe_client`
(the Stripe API, or ``STRIPE_API_BASE``) and :mod:`api.demo.provider` (demo mode: the simulator
plays Stripe). Every method is given an idempotency key: the same key never acts twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["CancellationDetails", "CheckoutParams", "HostedSession", "PaymentGateway", "ProrationBehavior"]

ProrationBehavior = Literal["create_prorations", "always_invoice", "none"]


@dataclass(frozen=True)
class CheckoutParams:
    user_id: str
    price_id: str
    customer_id: str | None
    """The user's existing Stripe customer, reused; None lets Checkout create one."""
    email: str | None
    trial_days: int | None
    success_url: str
    cancel_url: str
    idempotency_key: str


@dataclass(frozen=True)
class CancellationDetails:
    """Why the customer cancels, as Stripe keeps it on the subscription."""

    feedback: str | None = None
    comment: str | None = None

    def as_params(self) -> dict[str, str]:
        return {name: value for name, value in (("feedback", self.feedback), ("comment", self.comment)) if value}


@dataclass(frozen=True)
class HostedSession:
    """A page the provider hosts for the user (Checkout, billing portal)."""

    id: str
    url: str
    expires_at: int | None = None


class PaymentGateway(Protocol):
    """Subscription changes go through here; their effects arrive as events in the log. A method
    returns the subscription as the provider now reports it when that object should be applied at
    once (before its webhook), or None when the provider has delivered its events already."""

    async def create_checkout_session(self, params: CheckoutParams) -> HostedSession: ...

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        at_period_end: bool,
        idempotency_key: str,
        details: CancellationDetails | None = None,
    ) -> dict[str, Any] | None: ...

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> dict[str, Any] | None: ...

    async def change_price(
        self, subscription_id: str, price_id: str, *, proration: ProrationBehavior, idempotency_key: str
    ) -> dict[str, Any] | None: ...

    async def create_portal_session(
        self, customer_id: str, return_url: str, *, idempotency_key: str
    ) -> HostedSession: ...

    async def close(self) -> None: ...
