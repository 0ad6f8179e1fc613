"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright
opens every page of a running Streamlit server over a loaded log, finds no exception on any page,
checks that the Overview's MRR equals ``faddl kpis`` for the same data, and saves a screenshot per
page (``TEST_ARTIFACTS``, default ``./test-artifacts``) as a test artifact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.dashboard_data import every_section
from tests.processes import faddl_here, free_port, stop, wait_ready

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
PAGES = {"": "Overview", "revenue": "Revenue", "retention": "Retention", "payments": "Payments"}
PAGES |= {"customer": "Customer", "security": "Security", "alerts": "Alerts"}
# A page is done when the script has stopped running and its last part is on screen: every page
# ends with a table's CSV download, or says there is nothing to show.
DONE = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && document.querySelectorAll('[data-testid="stDownloadButton"], [data-testid="stAlert"]').length > 0"""


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    if not Path(CHROMIUM).exists():
        service_missing("Debian's chromium is not installed (apt-get install chromium)")
    tmp_path = tmp_path_factory.mktemp("browser")
    env = every_section(tmp_path)  # something in every section, for the screenshots too
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "app.py")),
            *("--server.address", "127.0.0.1", "--server.port", str(port)),
            *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, path="/_stcore/health")
        yield base, env
    finally:
        stop(process)


def _a_customer(env: dict[str, str]) -> str:
    import sqlite3

    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as conn:
        row = conn.execute(
            "SELECT stripe_customer_id FROM payment_history GROUP BY stripe_customer_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    return str(row[0])


def test_every_page_in_chromium(dashboard: tuple[str, dict[str, str]]) -> None:
    from playwright.sync_api import sync_playwright

    base, env = dashboard
    cli = json.loads(faddl_here(env, "kpis", "--format", "json").stdout)
    expected_mrr = f"{cli['months'][-1]['mrr']['usd'] / 100:,.2f} USD"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            for path, title in PAGES.items():
                if path == "customer":  # a customer with a history, not the empty search
                    path = f"customer?customer={_a_customer(env)}"
                page.goto(f"{base}/{path}")
                page.get_by_role("heading", name=title, exact=True).wait_for(timeout=60_000)
                page.wait_for_function(DONE, timeout=60_000)
                page.wait_for_timeout(1_000)  # let the charts draw before the screenshot
                page.screenshot(path=str(ARTIFACTS / f"{title.lower()}.png"), full_page=True)
                assert page.locator("[data-testid='stException']").count() == 0, f"an exception on {title}"
                if title == "Overview":
                    metric = page.locator("[data-testid='stMetric']").filter(has_text="MRR").first
                    value = metric.locator("[data-testid='stMetricValue']").inner_text()
                    assert value == expected_mrr
            assert errors == [], errors
        finally:
            browser.close()
    assert sorted(p.name for p in ARTIFACTS.glob("*.png")) == sorted(f"{t.lower()}.png" for t in PAGES.values())
