"""Who may look: Streamlit's own OIDC login (``st.login``) against the API's identity provider,
admitting the admin role only (the role read where ``AUTH_ROLE_CLAIM`` says, as for the API's
tokens). ``faddl run`` turns the login off in demo mode on localhost; anywhere else it is on, and
a dashboard without its OIDC settings says so and shows nothing (it never falls open).

Streamlit reads the provider's settings from an ``[auth]`` secrets section: ``faddl dashboard``
writes it from the ``DASHBOARD_OIDC_*`` settings (:mod:`api.security.dashboard_login`)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from api.security.dashboard_login import auth_section
from api.security.tokens import roles_in
from api.settings import Settings

__all__ = ["LOCAL_VIEWER", "signed_in"]

LOCAL_VIEWER = "local demo (no login)"
"""Who acknowledges an alert when the login is off."""


def signed_in(settings: Settings) -> str:
    """The person looking (for acknowledgements), or stop the page: not signed in, not an admin,
    or a login that is required but not set up."""
    if not settings.dashboard_login:
        return LOCAL_VIEWER
    if auth_section(settings) is None:
        st.title("faddl")
        st.error(
            "This dashboard requires a login, and it is not set up: set DASHBOARD_OIDC_METADATA_URL, "
            "DASHBOARD_OIDC_CLIENT_ID, DASHBOARD_OIDC_CLIENT_SECRET, DASHBOARD_OIDC_REDIRECT_URI and "
            "DASHBOARD_COOKIE_SECRET (or DASHBOARD_LOGIN=0 on a machine only you can reach)."
        )
        st.stop()
    if not st.user.is_logged_in:
        st.title("faddl")
        st.write("The KPI dashboard is for the admins of this service.")
        st.button("Log in", on_click=st.login, type="primary", key="login")
        st.stop()
    claims: dict[str, Any] = st.user.to_dict()
    who = str(claims.get("email") or claims.get("name") or claims.get("sub") or "someone")
    if "admin" not in roles_in(claims, settings):
        st.title("faddl")
        st.error(f"Signed in as {who}, who does not have the admin role this dashboard requires.")
        st.button("Log out", on_click=st.logout, key="logout")
        st.stop()
    st.sidebar.caption(f"Signed in as {who}")
    st.sidebar.button("Log out", on_click=st.logout, key="logout")
    return who
