"""Who may look at the dashboard: with the login on (the default), nothing is shown before an admin
has signed in through Streamlit's OIDC login; a signed-in non-admin is refused; a login required
but not set up says so and shows nothing; an acknowledgement records the signed-in person."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from api.db.engine import Database
from api.db.models import alerts
from api.security.dashboard_login import write_secrets
from api.settings import Settings
from tests.conftest import sqlite_settings
from tests.dashboard_data import every_section

ROOT = Path(__file__).parents[1]
OIDC = {
    "DASHBOARD_OIDC_METADATA_URL": "https://idp.example/.well-known/openid-configuration",
    "DASHBOARD_OIDC_CLIENT_ID": "faddl-dashboard",
    "DASHBOARD_OIDC_CLIENT_SECRET": "client-secret-value",
    "DASHBOARD_OIDC_REDIRECT_URI": "https://kpis.example/oauth2callback",
    "DASHBOARD_COOKIE_SECRET": "cookie-secret-value",
}
ADMIN = {"is_logged_in": True, "email": "ann@example.com", "sub": "user_ann", "metadata": {"role": "admin"}}


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = every_section(tmp_path_factory.mktemp("login"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DASHBOARD_LOGIN", "1")
        patch.setenv("DATABASE_URL", env["DATABASE_URL"])
        patch.setenv("VAR_DIR", env["VAR_DIR"])
        st.cache_resource.clear()  # the settings are cached for the process
        yield env
    st.cache_resource.clear()


def run(user: dict[str, object], page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=60)
    app.user = user
    app.run()
    if page:
        app.switch_page(page).run()
    return app


def test_a_login_required_but_not_set_up_shows_nothing(log: dict[str, str]) -> None:
    app = run(ADMIN)
    assert not app.exception, app.exception
    assert any("requires a login, and it is not set up" in e.value for e in app.error)
    assert not app.metric


def test_nothing_before_signing_in(log: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    try:
        app = run({"is_logged_in": False})
        assert not app.exception, app.exception
        assert [b.label for b in app.button] == ["Log in"]
        assert not app.metric
        refused = run({"is_logged_in": True, "email": "bob@example.com", "metadata": {"role": "viewer"}})
        assert any("does not have the admin role" in e.value for e in refused.error)
        assert not refused.metric
    finally:
        st.cache_resource.clear()


def test_an_admin_sees_the_pages_and_acknowledges_as_themself(
    log: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    try:
        app = run(ADMIN)
        assert not app.exception, app.exception
        assert any(m.label == "MRR" for m in app.metric)
        assert any("Signed in as ann@example.com" in c.value for c in app.sidebar.caption)
        app.switch_page("pages/alerts.py").run()
        next(b for b in app.button if b.label == "Acknowledge").click().run()
        assert not app.exception, app.exception
    finally:
        st.cache_resource.clear()
    settings = sqlite_settings(Path(log["DATABASE_URL"].removeprefix("sqlite:///")))

    async def acknowledged() -> set[str | None]:
        db = Database(settings)
        try:
            async with db.read() as conn:
                return set((await conn.execute(select(alerts.c.acknowledged_by))).scalars())
        finally:
            await db.dispose()

    assert "ann@example.com" in asyncio.run(acknowledged())


def test_the_secrets_file_is_for_its_user_only(tmp_path: Path) -> None:
    settings = Settings.from_env(OIDC)
    path = write_secrets(settings, tmp_path / "streamlit")
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert text.startswith("[auth]\n")
    assert 'client_secret = "client-secret-value"' in text
    assert write_secrets(Settings.from_env({}), tmp_path / "none") is None
