"""The Stripe gateway end to end: the real stripe SDK over HTTP against ``localstripe`` (a local,
stateful Stripe stand-in that sends signed webhooks), the service as a real server process. Then
Stripe goes down: the circuit breaker opens and requests answer 503 within a second."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from api.security.tokens import mint_dev_token
from api.settings import Settings
from tests.processes import ROOT, faddl_here, free_port, service_env, start_server, stop, wait_ready

SECRET = "whsec_localstripe_e2e"


@dataclass
class Stack:
    api: str
    stripe_base: str
    stripe: stripe.StripeClient
    env: dict[str, str]
    localstripe: subprocess.Popen[bytes]

    def token(self, user: str) -> dict[str, str]:
        """A development token, as ``faddl token`` mints it (same key, under VAR_DIR)."""
        settings = Settings(var_dir=Path(self.env["VAR_DIR"]), auth_dev_mode=True)
        return {"Authorization": f"Bearer {mint_dev_token(settings, user, [])}"}


def _wait_port(url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not start")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stripe_port, api_port = free_port(), free_port()
    localstripe = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "localstripe_server.py"), str(stripe_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stripe_base = f"http://127.0.0.1:{stripe_port}"
    env = service_env(
        tmp_path,
        STRIPE_API_KEY="sk_test_localstripe",
        STRIPE_API_BASE=stripe_base,
        STRIPE_WEBHOOK_SECRET=SECRET,
        STRIPE_TIMEOUT_SECONDS="2",
        STRIPE_MAX_NETWORK_RETRIES="1",
        STRIPE_BREAKER_THRESHOLD="3",
        STRIPE_BREAKER_RESET_SECONDS="30",
        AUTH_DEV_MODE="1",
        LOG_LEVEL="INFO",
    )
    faddl_here(env, "db", "upgrade")
    log = (tmp_path / "api.log").open("wb")
    api = start_server(env, api_port, log=log)
    base = f"http://127.0.0.1:{api_port}"
    try:
        _wait_port(stripe_base + "/v1/customers")
        wait_ready(base)
        httpx.post(
            f"{stripe_base}/_config/webhooks/faddl",
            data={"url": f"{base}/api/webhooks/stripe", "secret": SECRET},
            timeout=5,
        ).raise_for_status()
        client = stripe.StripeClient(
            "sk_test_localstripe",
            base_addresses={"api": stripe_base},
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
        )
        client.v1.products.create({"id": "prod_pro", "name": "Pro"})
        pro = {"id": "price_pro_monthly_usd", "product": "prod_pro", "amount": 2900, "currency": "usd"}
        client.v1.plans.create({**pro, "interval": "month"})
        yield Stack(base, stripe_base, client, env, localstripe)
    finally:
        for process in (api, localstripe):
            stop(process)
        log.close()


def subscribe(stack: Stack, user: str, card: str = "4242424242424242") -> Any:
    """A customer and a subscription made directly at (local) Stripe, as a checkout would."""
    client = stack.stripe
    customer = client.v1.customers.create({"email": f"{user}@example.com", "metadata": {"user_id": user}})
    method = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2035, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(method.id, {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method.id}})
    return client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": "price_pro_monthly_usd"}], "metadata": {"user_id": user}}
    )


def eventually(check: Callable[[], Any], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def current(stack: Stack, user: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{stack.api}/api/subscription", headers=stack.token(user), timeout=10)
    return answer.json() if answer.status_code == 200 else None


def test_webhooks_and_actions_round_trip_through_stripe(stack: Stack) -> None:
    sub = subscribe(stack, "user_ls")
    seen = eventually(lambda: (s := current(stack, "user_ls")) and s["status"] == "active" and s)
    assert seen, "the subscription's webhooks should reach the service"
    assert (seen["subscription_id"], seen["plan"]["id"], seen["access"]) == (sub.id, "pro", True)
    me = stack.token("user_ls")

    canceled = httpx.post(f"{stack.api}/api/subscription/cancel", json={}, headers=me, timeout=10)
    assert canceled.status_code == 200, canceled.text
    # localstripe sends no webhook for an update: the answer reflects Stripe's returned object.
    assert canceled.json()["cancel_at_period_end"] is True
    assert stack.stripe.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True

    resumed = httpx.post(f"{stack.api}/api/subscription/resume", headers=me, timeout=10)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["cancel_at_period_end"] is False
    assert stack.stripe.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False

    ended = httpx.post(f"{stack.api}/api/subscription/cancel", json={"immediately": True}, headers=me, timeout=10)
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["access"]) == ("canceled", False)
    assert stack.stripe.v1.subscriptions.retrieve(sub.id).status == "canceled"
    time.sleep(1.5)  # the deletion's own webhook arrives a second later and agrees
    assert current(stack, "user_ls")["status"] == "canceled"  # type: ignore[index]

    # The replayed log (deliveries and the API's answers) gives the same subscription.
    faddl_here(stack.env, "replay")
    assert current(stack, "user_ls")["status"] == "canceled"  # type: ignore[index]


def test_a_failed_first_payment_leaves_no_access(stack: Stack) -> None:
    sub = subscribe(stack, "user_declined", card="4000000000000341")
    assert sub.status == "incomplete"
    seen = eventually(lambda: current(stack, "user_declined"))
    assert seen, "the subscription's webhooks should reach the service"
    assert (seen["subscription_id"], seen["status"], seen["access"], seen["entitlements"]) == (
        sub.id,
        "incomplete",
        False,
        {},
    )
    # An incomplete subscription does not block another try at checkout (it would reach Stripe,
    # which localstripe cannot serve: 502, not 409).
    again = httpx.post(
        f"{stack.api}/api/checkout", json={"plan": "pro"}, headers=stack.token("user_declined"), timeout=10
    )
    assert again.status_code == 502, again.text


def test_stripe_errors_never_reach_the_client_raw(stack: Stack) -> None:
    """localstripe has no Checkout: Stripe answers 404 to our request, which the client sees as a
    plain 502, with Stripe's own text only in the log."""
    answer = httpx.post(f"{stack.api}/api/checkout", json={"plan": "pro"}, headers=stack.token("u_new"), timeout=10)
    assert answer.status_code == 502, answer.text
    assert answer.json()["detail"] == "The billing provider rejected the request; the team has been notified."
    assert "localstripe" not in answer.text.lower()
    assert "/v1/" not in answer.text


def test_stripe_down_opens_the_breaker(stack: Stack) -> None:
    subscribe(stack, "user_down")
    assert eventually(lambda: (s := current(stack, "user_down")) and s["status"] == "active")
    me = stack.token("user_down")
    stack.localstripe.terminate()
    stack.localstripe.wait(timeout=10)

    answers = []
    for _ in range(3):  # STRIPE_BREAKER_THRESHOLD failures open it
        answer = httpx.post(f"{stack.api}/api/subscription/cancel", json={}, headers=me, timeout=30)
        answers.append(answer)
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers)

    for path, body in (("/api/subscription/cancel", {}), ("/api/checkout", {"plan": "pro"})):
        started = time.perf_counter()
        answer = httpx.post(f"{stack.api}{path}", json=body, headers=me, timeout=30)
        elapsed = time.perf_counter() - started
        assert answer.status_code in (503, 409), answer.text
        if path == "/api/subscription/cancel":
            assert answer.status_code == 503
            assert answer.json()["code"] == "billing_unavailable"
            assert 1 <= int(answer.headers["retry-after"]) <= 30
            assert elapsed < 1.0, f"an open breaker must answer at once, took {elapsed:.2f} s"
    # Nothing changed while Stripe was away.
    assert current(stack, "user_down")["cancel_at_period_end"] is False  # type: ignore[index]
