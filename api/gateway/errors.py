"""What a failed call to the payment provider means for the person using the client app.

Stripe's own error text is written for developers (and can name internal ids); it is logged with
Stripe's request id and never shown. The client gets one of a few plain messages and a status:
402 for a payment problem the user can fix, 400/409 for a request that cannot succeed, 503 with
``Retry-After`` when Stripe is unreachable or failing.
"""

from __future__ import annotations

import stripe
import structlog

from api.domain_errors import DomainError

__all__ = ["GatewayError", "ProviderUnavailable", "from_stripe_error", "is_unexpected_answer"]

logger = structlog.get_logger(__name__)

_CARD_MESSAGES = {
    "card_declined": "Your card was declined. Try another card or contact your bank.",
    "insufficient_funds": "Your card has insufficient funds. Try another card.",
    "expired_card": "Your card has expired. Update your payment method.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "incorrect_number": "The card number is incorrect.",
    "processing_error": "The card could not be processed. Try again in a moment.",
    "authentication_required": "Your bank asks you to confirm this payment; complete the authentication and retry.",
}


class GatewayError(DomainError):
    """A payment-provider failure, ready to answer: ``status``, a user-facing ``message``, an
    optional machine-readable ``code`` (an extension member) and response headers."""

    def __init__(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message, status=status, extra={"code": code} if code else None, headers=headers)
        self.code = code


class ProviderUnavailable(GatewayError):
    """Stripe cannot be reached or is failing (or the circuit breaker is open): try again later."""

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(
            503,
            message or "Billing is temporarily unavailable; please try again in a moment.",
            code="billing_unavailable",
            headers={"Retry-After": str(max(1, retry_after))},
        )
        self.retry_after = max(1, retry_after)


def _decline_code(exc: stripe.StripeError) -> str | None:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    decline = error.get("decline_code") if isinstance(error, dict) else None
    return decline if isinstance(decline, str) else None


def is_unexpected_answer(exc: BaseException) -> bool:
    """A 4xx answer the SDK could not classify (e.g. a non-JSON 404 from a wrong base URL): a
    problem of this integration, not a sign that Stripe is down."""
    status = getattr(exc, "http_status", None)
    return type(exc) is stripe.APIError and status is not None and 400 <= status < 500


def from_stripe_error(exc: stripe.StripeError, operation: str, retry_after: int) -> GatewayError:
    """The user-facing error for a Stripe error; logs what a developer needs (request id, code)."""
    code = exc.code if isinstance(exc.code, str) else None
    decline = _decline_code(exc)
    log = logger.bind(
        operation=operation,
        stripe_request_id=exc.request_id,
        stripe_error=type(exc).__name__,
        stripe_code=code,
        decline_code=decline,
        http_status=exc.http_status,
    )
    if isinstance(exc, stripe.CardError):
        log.info("stripe declined a payment")
        message = _CARD_MESSAGES.get(decline or "") or _CARD_MESSAGES.get(code or "") or _CARD_MESSAGES["card_declined"]
        return GatewayError(402, message, code=decline or code or "card_declined")
    if isinstance(exc, stripe.InvalidRequestError):
        if code == "resource_missing":
            log.warning("stripe does not know an object we referred to")
            return GatewayError(
                409,
                "Your billing details changed in the meantime; reload your subscription and try again.",
                code="billing_state_changed",
            )
        if code in ("resource_already_exists", "subscription_canceled") or exc.http_status == 409:
            log.info("stripe refused a change the current state does not allow")
            return GatewayError(409, "That change is not possible in the subscription's current state.", code=code)
        log.error("stripe rejected a request we built: fix the integration")
        return GatewayError(
            502, "The billing provider rejected the request; the team has been notified.", code="billing_rejected"
        )
    if isinstance(exc, stripe.IdempotencyError):
        log.warning("idempotency key reused with different parameters")
        return GatewayError(409, "This request conflicts with an earlier one sent with the same key.", code=code)
    if is_unexpected_answer(exc):
        log.error("stripe answered a request in a way the SDK could not read: check STRIPE_API_BASE")
        return GatewayError(
            502, "The billing provider rejected the request; the team has been notified.", code="billing_rejected"
        )
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        log.critical("stripe refused our credentials: check STRIPE_API_KEY")
        return ProviderUnavailable(retry_after, "Billing is misconfigured; the team has been notified.")
    log.warning("stripe is unreachable or failing")
    return ProviderUnavailable(retry_after)
