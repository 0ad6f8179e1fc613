"""``faddl sync`` against ``localstripe``: an account built through the real SDK, with no webhook
ever delivered, brought into the log; a second sync stores nothing; a change made at Stripe
behind our back is brought in by the next sync; lists localstripe lacks are reported and skipped;
Stripe unreachable is one line and exit 1."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select

from api.db.engine import Database
from api.db.models import subscription_events, user_subscriptions
from api.settings import Settings
from tests.processes import ROOT, faddl_here, free_port, service_env
from tests.state import projection_state


@dataclass
class Account:
    client: stripe.StripeClient
    base: str
    env: dict[str, str]

    def subscribe(self, user: str, quantity: int = 1) -> Any:
        client = self.client
        customer = client.v1.customers.create({"email": f"{user}@example.com", "metadata": {"user_id": user}})
        method = client.v1.payment_methods.create(
            {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}}
        )
        client.v1.payment_methods.attach(method.id, {"customer": customer.id})
        client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method.id}})
        return client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"plan": "price_pro_monthly_usd", "quantity": quantity}]}
        )


@pytest.fixture
def account(tmp_path: Path) -> Iterator[Account]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "localstripe_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/v1/customers", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = stripe.StripeClient(
            "sk_test_localstripe", base_addresses={"api": base}, http_client=stripe.HTTPXClient(allow_sync_methods=True)
        )
        client.v1.products.create({"id": "prod_pro", "name": "Pro"})
        client.v1.plans.create(
            {
                "id": "price_pro_monthly_usd",
                "product": "prod_pro",
                "amount": 2900,
                "currency": "usd",
                "interval": "month",
            }
        )
        env = service_env(tmp_path, STRIPE_API_KEY="sk_test_localstripe", STRIPE_API_BASE=base)
        env["STRIPE_WEBHOOK_SECRET"] = "whsec_not_used_here"
        faddl_here(env, "db", "upgrade")
        yield Account(client, base, env)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


async def _read(env: dict[str, str]) -> tuple[dict[str, dict[str, Any]], int, dict[str, Any]]:
    db = Database(_settings(env))
    try:
        async with db.read() as conn:
            subs = {
                row["stripe_subscription_id"]: dict(row)
                for row in (await conn.execute(select(user_subscriptions))).mappings()
            }
            rows = (await conn.execute(select(func.count()).select_from(subscription_events))).scalar_one()
        return subs, int(rows), await projection_state(db)
    finally:
        await db.dispose()


def read(env: dict[str, str]) -> tuple[dict[str, dict[str, Any]], int, dict[str, Any]]:
    return asyncio.run(_read(env))


def totals(output: str, row: str = "total") -> dict[str, int]:
    """The summary's figures for one row (a resource, or the total)."""
    line = next(line for line in output.splitlines() if line.split()[:1] == [row])
    fetched, stored, unchanged, skipped, failed = (int(part) for part in line.split()[1:])
    return {"fetched": fetched, "stored": stored, "unchanged": unchanged, "skipped": skipped, "failed": failed}


def test_an_account_no_webhook_ever_reached_is_brought_in(account: Account) -> None:
    paying = account.subscribe("user_paying")
    seats = account.subscribe("user_seats", quantity=3)
    gone = account.subscribe("user_gone")
    account.client.v1.subscriptions.cancel(gone.id)
    # The users are linked from the customers' metadata (the subscriptions carry none).

    first = faddl_here(account.env, "sync")
    objects = {name: totals(first.stdout, name) for name in ("products", "customers", "subscriptions", "invoices")}
    assert [objects[name]["stored"] for name in objects] == [1, 3, 3, 3]
    assert totals(first.stdout, "charges")["stored"] == 3
    # localstripe's own events, fetched from its Events API: those about payment methods skipped.
    caught_up = totals(first.stdout, "events")
    assert caught_up["stored"] > 0
    assert caught_up["stored"] + caught_up["skipped"] == caught_up["fetched"]
    assert totals(first.stdout)["failed"] == 0
    assert "has no /v1/prices list: skipped" in first.stdout  # localstripe has plans, not prices
    subs, rows, state = read(account.env)
    assert {
        sub_id: (row["user_id"], row["status"], row["quantity"], row["price_id"]) for sub_id, row in subs.items()
    } == {
        paying.id: ("user_paying", "active", 1, "price_pro_monthly_usd"),
        seats.id: ("user_seats", "active", 3, "price_pro_monthly_usd"),
        gone.id: ("user_gone", "canceled", 1, "price_pro_monthly_usd"),
    }  # the sync's snapshots are newer than localstripe's events about the same objects
    assert len(state["payment_history"]) == 3
    assert len(state["charges"]) == 3

    again = faddl_here(account.env, "sync")
    assert totals(again.stdout)["stored"] == 0
    assert read(account.env)[1] == rows  # not one row more

    faddl_here(account.env, "replay")
    assert read(account.env)[2] == state  # the log alone gives the same projections

    # Changed at Stripe behind our back: a dry run says so and writes nothing, the sync brings it.
    account.client.v1.subscriptions.update(
        seats.id, {"items": [{"id": seats["items"]["data"][0]["id"], "quantity": 5}]}
    )
    dry = faddl_here(account.env, "sync", "--dry-run", "--only", "subscriptions")
    assert totals(dry.stdout)["stored"] == 1
    assert "would store" in dry.stdout
    assert read(account.env)[1] == rows
    brought = faddl_here(account.env, "sync", "--only", "subscriptions,customers")
    # The subscription, and its customer (localstripe's customers embed their subscriptions).
    assert totals(brought.stdout) == {"fetched": 6, "stored": 2, "unchanged": 4, "skipped": 0, "failed": 0}
    subs, after, _ = read(account.env)
    assert subs[seats.id]["quantity"] == 5
    assert after == rows + 2


def test_stripe_unreachable_or_an_unknown_resource_is_one_line(account: Account) -> None:
    down = {**account.env, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}", "STRIPE_MAX_NETWORK_RETRIES": "0"}
    result = faddl_here(down, "sync", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: Stripe is unreachable at {down['STRIPE_API_BASE']}."]
    unknown = faddl_here(account.env, "sync", "--only", "coupons", check=False)
    assert unknown.returncode == 2
    assert "Unknown resource coupons" in unknown.stderr
