"""Demo mode's payment provider: the simulator plays Stripe (no ``STRIPE_API_KEY``).

Every action is worked out by :class:`simulator.live.LiveAction` from the objects' latest snapshots
in the event log, and its events are signed with the webhook secret and delivered to this
service's own webhook pipeline (:func:`api.webhooks.receiver.receive`, what
``POST /api/webhooks/stripe`` runs), one after another as Stripe would send them. So every flow of
the client API works offline, and the log holds the same kind of events as with Stripe.

Checkout and the billing portal are local pages (:mod:`api.demo.pages`) at capability URLs, as
Stripe's are: a session id is a keyed HMAC of the action's idempotency key (so a retry finds the
same session) under a random key this installation keeps in ``VAR_DIR``, so knowing a user id, or
guessing a client's idempotency key, does not open that user's checkout or portal; and each expires
(a checkout in 24 hours, a portal session in one hour).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from api.catalogue.plans import PlanCatalogue
from api.events.log import has_event, service_event
from api.gateway.base import CancellationDetails, CheckoutParams, HostedSession, ProrationBehavior
from api.gateway.errors import GatewayError, ProviderUnavailable
from api.ingest.processing import EventProcessor
from api.projections.projector import current_objects
from api.secret_files import secret_file
from api.webhooks.receiver import DeliveryRejected, receive
from simulator.delivery import sign
from simulator.live import LiveAction
from simulator.objects import Builder

__all__ = ["CHECKOUT_STARTED", "DemoGateway"]

CHECKOUT_STARTED = "checkout.started"
PORTAL_OPENED = "billing_portal.opened"
SESSION_SECONDS = 24 * 3600
PORTAL_SECONDS = 3600


SESSION_KEY_FILE = "demo-session.key"


class DemoGateway:
    """The :class:`~api.gateway.base.PaymentGateway` of demo mode."""

    def __init__(self, processor: EventProcessor, plans: PlanCatalogue) -> None:
        self.processor = processor
        self.plans = plans
        self.base_url = processor.settings.public_base_url
        self._session_key: bytes | None = None  # read at first use: an unwritable VAR_DIR must not stop the app
        # Completing one checkout twice at once would create two subscriptions; one process runs
        # the demo, so a lock (with the log check inside it) is enough.
        self._checkout_lock = asyncio.Lock()

    def _session_id(self, prefix: str, idempotency_key: str, length: int) -> str:
        if self._session_key is None:
            path = self.processor.settings.var_dir / SESSION_KEY_FILE
            self._session_key = secret_file(path, lambda: secrets.token_bytes(32))
        digest = hmac.new(self._session_key, idempotency_key.encode(), hashlib.sha256).hexdigest()
        return f"{prefix}{digest[:length]}"

    # -- delivery --------------------------------------------------------------------------------
    async def deliver(self, events: list[dict[str, Any]]) -> None:
        """Sign and deliver events to the webhook pipeline, in order, as Stripe would."""
        secret = self.processor.settings.webhook_secrets[0]
        for event in events:
            body = msgspec.json.encode(event)
            try:
                await receive(self.processor, body, sign(body.decode(), secret))
            except DeliveryRejected as exc:
                raise ProviderUnavailable(10, f"The demo's events could not be stored: {exc.detail}") from None

    async def _start(self, subscription_id: str, key: str) -> tuple[LiveAction, dict[str, Any], dict[str, Any]]:
        """The action about a subscription, with the customer's and the subscription's latest state.

        Stripe's ``created`` is in whole seconds and two changes within one second can only be
        ordered by their ``previous_attributes``, which a change and its reversal (cancel, resume)
        make circular. Stripe's clock is the simulator's here, so each action on an object is
        stamped at least a second after the object's newest event."""

        async def read(conn: AsyncConnection) -> tuple[Any, dict[str, Any]]:
            found = (await current_objects(conn, [subscription_id])).get(subscription_id)
            if found is None:
                return None, {}
            return found, await current_objects(conn, [found.obj["customer"]])

        found, customer = await self.processor.db.run(read)
        if found is None:
            raise GatewayError(409, "The billing provider does not know this subscription.", code="resource_missing")
        subscription = found.obj
        customer_id = subscription["customer"]
        if subscription.get("status") in ("canceled", "incomplete_expired"):
            raise GatewayError(409, "That change is not possible in the subscription's current state.")
        now = max(int(time.time()), found.created + 1)
        customer_obj = customer[customer_id].obj if customer_id in customer else {"id": customer_id}
        return LiveAction(key, now), customer_obj, subscription

    def price(self, price_id: str) -> dict[str, Any]:
        for plan in self.plans.plans:
            for price in plan.prices:
                if price.price_id == price_id:
                    return Builder.price(price_id, f"prod_{plan.id}", price.currency, price.unit_amount, price.interval)
        raise GatewayError(400, "That plan is not available.", code="invalid_plan")

    # -- the gateway protocol --------------------------------------------------------------------
    async def create_checkout_session(self, params: CheckoutParams) -> HostedSession:
        self.price(params.price_id)  # an unknown price fails now, as Stripe would
        session_id = self._session_id("cs_test_", params.idempotency_key, 40)
        return HostedSession(
            id=session_id,
            url=f"{self.base_url}/demo/checkout/{session_id}",
            expires_at=int(time.time()) + SESSION_SECONDS,
        )

    async def cancel_subscription(
        self,
        subscription_id: str,
        *,
        at_period_end: bool,
        idempotency_key: str,
        details: CancellationDetails | None = None,
    ) -> None:
        action, customer, subscription = await self._start(subscription_id, idempotency_key)
        reasons = details.as_params() if details else {}
        action.cancel(customer, subscription, at_period_end=at_period_end, **reasons)
        await self.deliver(action.events)

    async def resume_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        action, customer, subscription = await self._start(subscription_id, idempotency_key)
        if not subscription.get("cancel_at_period_end"):
            raise GatewayError(409, "The subscription is not set to cancel.")
        action.resume(customer, subscription)
        await self.deliver(action.events)

    async def change_price(
        self, subscription_id: str, price_id: str, *, proration: ProrationBehavior, idempotency_key: str
    ) -> None:
        price = self.price(price_id)
        action, customer, subscription = await self._start(subscription_id, idempotency_key)
        action.change_price(customer, subscription, price, proration)
        await self.deliver(action.events)

    async def create_portal_session(self, customer_id: str, return_url: str, *, idempotency_key: str) -> HostedSession:
        session_id = self._session_id("bps_", idempotency_key, 32)
        return HostedSession(
            id=session_id,
            url=f"{self.base_url}/demo/billing-portal/{session_id}",
            expires_at=int(time.time()) + PORTAL_SECONDS,
        )

    async def close(self) -> None:
        return None

    # -- what the local pages need ---------------------------------------------------------------
    async def checkout_session(self, session_id: str) -> dict[str, Any] | None:
        """The session as :mod:`api.billing.actions` recorded it when the checkout started."""
        data = await self.processor.db.run(lambda conn: service_event(conn, CHECKOUT_STARTED, session_id))
        obj = (data or {}).get("object")
        return obj if isinstance(obj, dict) else None

    async def checkout_completed(self, session_id: str) -> bool:
        return await self.processor.db.run(lambda conn: has_event(conn, "checkout.session.completed", session_id))

    async def portal_session(self, session_id: str) -> dict[str, Any] | None:
        data = await self.processor.db.run(lambda conn: service_event(conn, PORTAL_OPENED, session_id))
        obj = (data or {}).get("object")
        return obj if isinstance(obj, dict) else None

    async def complete_checkout(self, session: dict[str, Any]) -> None:
        """The user paid on the demo checkout page: Stripe's events for a completed Checkout."""
        async with self._checkout_lock:
            customer_id = session.get("customer")

            async def read(conn: AsyncConnection) -> tuple[bool, dict[str, Any]]:
                if await has_event(conn, "checkout.session.completed", session["id"]):
                    return True, {}
                return False, await current_objects(conn, [customer_id]) if customer_id else {}

            completed, known = await self.processor.db.run(read)
            if completed:
                return  # completed already (a double submit): nothing more happens
            customer = known[customer_id].obj if customer_id in known else None
            price = self.price(session["price_id"])
            now = int(time.time())
            action = LiveAction(session["id"], now)
            stripe_session = Builder(action.sim.new_id).checkout_session(
                session["id"],
                user_id=session["user_id"],
                customer_id=customer_id,
                subscription_id=None,
                price_id=price["id"],
                currency=price["currency"],
                amount=0 if session.get("trial_days") else price["unit_amount"],
                created=now,
                status="open",
            )
            action.complete_checkout(
                stripe_session,
                price=price,
                customer=customer,
                user_id=session["user_id"],
                email=session.get("email") or f"{session['user_id']}@example.com",
                trial_days=session.get("trial_days"),
            )
            await self.deliver(action.events)
