"""The OpenAPI page works offline: in headless Chromium with every request off this machine
refused, ``/api/schema/swagger`` renders the API's operations from assets the service serves."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api.db.migrate import upgrade
from tests.conftest import service_missing, sqlite_settings
from tests.processes import free_port, service_env, start_server, stop, wait_ready

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        service_missing("Debian's chromium is not installed (apt-get install chromium)")
    env = service_env(tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    upgrade(sqlite_settings(tmp_path / "faddl.db"))
    port = free_port()
    process = start_server(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        yield base
    finally:
        stop(process)


def test_the_openapi_page_renders_with_no_internet(api: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    refused: list[str] = []

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.route("**/*", only_here)
            page.goto(f"{api}/api/schema/swagger")
            page.locator(".swagger-ui .info .title").filter(has_text="faddl").wait_for(timeout=30_000)
            page.locator(".opblock-summary-path", has_text="/api/subscription").first.wait_for(timeout=30_000)
        finally:
            browser.close()
    assert refused == [], "the page asked for something from elsewhere"
    assert errors == []
