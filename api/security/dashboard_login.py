"""The dashboard's login settings as Streamlit reads them: an ``[auth]`` secrets section built from
the ``DASHBOARD_OIDC_*`` settings, written by ``faddl dashboard`` into a file only its user can read
(the dashboard, :mod:`dashboards.login`, checks the section is complete before offering a login)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from api.settings import Settings

__all__ = ["auth_section", "write_secrets"]


def auth_section(settings: Settings) -> dict[str, str] | None:
    """Streamlit's ``[auth]`` section, or None while a setting it needs is missing."""
    section = {
        "redirect_uri": settings.dashboard_oidc_redirect_uri,
        "cookie_secret": settings.dashboard_cookie_secret,
        "client_id": settings.dashboard_oidc_client_id,
        "client_secret": settings.dashboard_oidc_client_secret,
        "server_metadata_url": settings.dashboard_oidc_metadata_url,
    }
    return section if all(section.values()) else None


def write_secrets(settings: Settings, directory: Path) -> Path | None:
    """The secrets file with the ``[auth]`` section (readable by this user only), or None."""
    section = auth_section(settings)
    if section is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "secrets.toml"
    # TOML basic strings take JSON's escapes.
    text = "[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in section.items())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
