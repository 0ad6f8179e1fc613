"""Client-chosen return URLs (several front ends: web, mobile deep links) are accepted only on an
allowed origin, compared as origins, so the checkout is never an open redirect."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.billing.return_urls import ReturnUrlRefused, allowed_origins, check_return_url
from api.settings import Settings
from tests.demo.test_demo_flows import auth, demo, subscribe

ALLOWED = allowed_origins(
    ("https://app.example.com", "myapp://checkout", "http://localhost:3000"), "https://example.com/back"
)


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/done?session={CHECKOUT_SESSION_ID}",
        "HTTPS://APP.EXAMPLE.COM:443/x",
        "myapp://checkout/done",
        "http://localhost:3000/billing",
        "https://example.com/elsewhere",  # the origin of APP_RETURN_URL is always allowed
    ],
)
def test_allowed_origins_pass(url: str) -> None:
    assert check_return_url("success_url", url, ALLOWED) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test/phish",
        "https://app.example.com.evil.test/",  # a prefix of the string is not the origin
        "https://app.example.com@evil.test/",  # credentials, and another host
        "http://app.example.com/",  # another scheme is another origin
        "https://app.example.com:8443/",  # and another port
        "http://localhost:3001/",
        "javascript:alert(1)",
        "//evil.test/x",
        "/relative/path",
        "https://app.example.com\\@evil.test/",
        "https://app.example.com/ x",
        "https://app.example.com:99999/",
        "data:text/html,hi",
        "https://" + "a" * 2100 + ".example.com/",
    ],
)
def test_other_origins_are_refused_naming_the_allowed_ones(url: str) -> None:
    with pytest.raises(ReturnUrlRefused) as refused:
        check_return_url("success_url", url, ALLOWED)
    assert "success_url" in str(refused.value)
    if len(url) < 2048:
        assert "https://app.example.com, myapp://checkout, http://localhost:3000, https://example.com" in str(
            refused.value
        )


def test_malformed_configured_origins_are_a_setting_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_RETURN_ORIGINS", "https://ok.example.com, app.example.com")
    expected = "CHECKOUT_RETURN_ORIGINS: 'app.example.com' is not an absolute URL"
    with pytest.raises(ValueError, match=re.escape(expected)):
        Settings.from_env()


async def test_checkout_and_portal_take_the_clients_return_urls(sqlite_only: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(
        demo(sqlite_only, tmp_path), checkout_return_origins=("https://app.example.com", "myapp://checkout")
    )
    async with AsyncTestClient(create_app(settings)) as client:
        evil = await client.post(
            "/api/checkout",
            json={"plan": "pro", "success_url": "https://evil.test/x"},
            headers=auth(settings, "r1"),
        )
        assert evil.status_code == 400
        assert "https://app.example.com, myapp://checkout, http://127.0.0.1:8000" in evil.json()["detail"]
        started = await client.post(
            "/api/checkout",
            json={
                "plan": "pro",
                "success_url": "myapp://checkout/done?id={CHECKOUT_SESSION_ID}",
                "cancel_url": "https://app.example.com/pricing",
            },
            headers=auth(settings, "r1"),
        )
        assert started.status_code == 201, started.text
        path = started.json()["url"].removeprefix(settings.public_base_url)
        page = await client.get(path)
        assert 'href="https://app.example.com/pricing"' in page.text
        paid = await client.post(path, data={"card": "4242"}, follow_redirects=False)
        assert paid.headers["location"] == f"myapp://checkout/done?id={started.json()['session_id']}"

        await subscribe(client, settings, "r2")
        refused = await client.post(
            "/api/billing-portal",
            json={"return_url": "https://app.example.com.evil.test/"},
            headers=auth(settings, "r2"),
        )
        assert refused.status_code == 400
        assert "return_url must be on an allowed origin" in refused.json()["detail"]
        default = await client.post("/api/billing-portal", headers=auth(settings, "r2"))
        assert default.status_code == 201, default.text
        own = await client.post(
            "/api/billing-portal", json={"return_url": "https://app.example.com/account"}, headers=auth(settings, "r2")
        )
        assert own.status_code == 201, own.text
        portal = await client.get(own.json()["url"].removeprefix(settings.public_base_url))
        assert 'href="https://app.example.com/account"' in portal.text
        default_page = await client.get(default.json()["url"].removeprefix(settings.public_base_url))
        assert "/demo/return?portal=done" in default_page.text
