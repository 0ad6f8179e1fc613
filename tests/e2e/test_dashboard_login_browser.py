"""The dashboard's login end to end in headless Chromium: `faddl dashboard` with the login on, an
OpenID Connect provider stand-in, Streamlit's and Authlib's own login flow: "Log in" leads through
the provider and back, and the admin then sees the KPIs with their name in the sidebar."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import service_missing
from tests.dashboard_data import every_section
from tests.e2e.oidc_provider import OidcProvider
from tests.processes import ROOT, free_port, stop, wait_ready

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_an_admin_logs_in_through_the_provider(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        service_missing("Debian's chromium is not installed (apt-get install chromium)")
    claims = {"sub": "user_ann", "email": "ann@example.com", "name": "Ann", "metadata": {"role": "admin"}}
    with OidcProvider("faddl-dashboard", claims) as provider:
        port = free_port()
        env = {
            **every_section(tmp_path),
            "DASHBOARD_LOGIN": "1",
            "DASHBOARD_OIDC_METADATA_URL": f"{provider.issuer}/.well-known/openid-configuration",
            "DASHBOARD_OIDC_CLIENT_ID": "faddl-dashboard",
            "DASHBOARD_OIDC_CLIENT_SECRET": "client-secret",
            "DASHBOARD_OIDC_REDIRECT_URI": f"http://127.0.0.1:{port}/oauth2callback",
            "DASHBOARD_COOKIE_SECRET": "a-long-random-cookie-secret-for-the-test",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "dashboard", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, path="/_stcore/health")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(base)
                    page.get_by_role("button", name="Log in").click(timeout=60_000)
                    page.get_by_text("Signed in as ann@example.com").wait_for(timeout=60_000)
                    page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=60_000)
                    page.locator("[data-testid='stMetric']").filter(has_text="MRR").first.wait_for(timeout=60_000)
                finally:
                    browser.close()
        finally:
            stop(process)
    secrets_file = Path(env["VAR_DIR"]) / "dashboard" / "secrets.toml"
    assert secrets_file.stat().st_mode & 0o077 == 0, "the login's secrets are for the dashboard's user only"
