"""Stripe errors as the client sees them, and which failures open the circuit breaker."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe
import structlog
from structlog.testing import capture_logs

from api.gateway.errors import GatewayError, ProviderUnavailable, from_stripe_error
from api.gateway.stripe_client import StripeGateway
from api.settings import Settings


def card_error(code: str, decline: str | None = None) -> stripe.CardError:
    body = {"error": {"type": "card_error", "code": code, "decline_code": decline, "message": "raw: ch_123 said no"}}
    return stripe.CardError(
        "raw: ch_123 said no", "card", code, http_status=402, json_body=body, headers={"request-id": "req_abc"}
    )


@pytest.fixture(autouse=True)
def uncached_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh logger for the module under test: the service caches its loggers on first use
    (``cache_logger_on_first_use``), so one used by an earlier test in this worker would keep the
    processors it was bound with and ``capture_logs`` would see nothing."""
    monkeypatch.setattr("api.gateway.errors.logger", structlog.get_logger("api.gateway.errors"))


@pytest.mark.parametrize(
    ("error", "status", "needle"),
    [
        (card_error("card_declined", "insufficient_funds"), 402, "insufficient funds"),
        (card_error("expired_card"), 402, "expired"),
        (card_error("authentication_required"), 402, "confirm this payment"),
        (card_error("card_declined", "something_new"), 402, "declined"),
        (
            stripe.InvalidRequestError("raw: No such sub: sub_1", "id", code="resource_missing", http_status=404),
            409,
            "reload",
        ),
        (stripe.InvalidRequestError("raw: bad param", "items", http_status=400), 502, "rejected"),
        (stripe.IdempotencyError("raw: keys reused", http_status=400), 409, "same key"),
        (stripe.AuthenticationError("raw: invalid api key sk_live_1", http_status=401), 503, "misconfigured"),
        (stripe.APIConnectionError("raw: connection refused to api.stripe.com"), 503, "try again"),
        (stripe.APIError("raw: internal", http_status=500), 503, "try again"),
        (stripe.RateLimitError("raw: too many", http_status=429), 503, "try again"),
        (stripe.APIError("raw: 404: Not Found", http_status=404), 502, "rejected"),
    ],
)
def test_stripe_errors_become_plain_messages(error: stripe.StripeError, status: int, needle: str) -> None:
    with capture_logs() as logs:
        result = from_stripe_error(error, "subscriptions.update", retry_after=30)
    assert result.status == status
    assert needle in result.message
    assert "raw:" not in result.message
    if status == 503:
        assert result.headers["Retry-After"] == "30"
    assert logs[0]["operation"] == "subscriptions.update"
    assert "stripe_request_id" in logs[0]


def test_the_stripe_request_id_is_logged() -> None:
    with capture_logs() as logs:
        from_stripe_error(card_error("card_declined"), "invoices.pay", retry_after=30)
    assert logs[0]["stripe_request_id"] == "req_abc"


def gateway(threshold: int = 3) -> StripeGateway:
    return StripeGateway(
        Settings(
            stripe_api_key="sk_test_x",
            stripe_api_base="http://127.0.0.1:9",
            stripe_breaker_threshold=threshold,
            stripe_breaker_reset_seconds=30,
        )
    )


async def failing(error: Exception) -> Any:
    raise error


async def test_caller_errors_never_open_the_breaker() -> None:
    gw = gateway(threshold=2)
    for _ in range(5):
        with pytest.raises(GatewayError) as caught:
            await gw._call("op", lambda: failing(card_error("card_declined")))
        assert caught.value.status == 402
    assert await gw.breaker_state() == "closed"


async def test_stripe_failures_open_the_breaker_and_it_fails_fast() -> None:
    gw = gateway(threshold=2)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await gw._call("op", lambda: failing(stripe.APIConnectionError("down")))
    assert await gw.breaker_state() == "opened"
    calls = 0

    async def counted() -> None:
        nonlocal calls
        calls += 1

    started = time.perf_counter()
    with pytest.raises(ProviderUnavailable) as caught:
        await gw._call("op", counted)
    assert time.perf_counter() - started < 0.1
    assert calls == 0, "an open breaker must not call Stripe"
    assert 1 <= caught.value.retry_after <= 31


async def test_a_real_unreachable_stripe_opens_it() -> None:
    """Through the SDK for real: nothing listens on port 9."""
    gw = gateway(threshold=2)
    try:
        for _ in range(2):
            with pytest.raises(ProviderUnavailable):
                await gw.resume_subscription("sub_x", idempotency_key="k")
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable):
            await gw.resume_subscription("sub_x", idempotency_key="k")
        assert time.perf_counter() - started < 0.1
    finally:
        await gw.close()
