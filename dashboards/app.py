"""The business dashboard (Streamlit): ``streamlit run dashboards/app.py``; ``make run`` starts it
on 127.0.0.1:8501 over the demo data. Every number comes from ``analytics`` (the KPI document
``faddl kpis --format json`` prints); the pages are in ``dashboards/pages/``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards.common import settings
from dashboards.login import signed_in

PAGES = Path(__file__).with_name("pages")

st.set_page_config(page_title="faddl", layout="wide")
# Nothing is shown before the login (when it is on): every page runs after this.
st.session_state["viewer"] = signed_in(settings())
navigation = st.navigation(
    [
        st.Page(PAGES / "overview.py", title="Overview", default=True),
        st.Page(PAGES / "revenue.py", title="Revenue"),
        st.Page(PAGES / "retention.py", title="Retention"),
        st.Page(PAGES / "payments.py", title="Payments"),
        st.Page(PAGES / "customer.py", title="Customer", url_path="customer"),
        st.Page(PAGES / "security.py", title="Security"),
        st.Page(PAGES / "alerts.py", title="Alerts"),
        st.Page(PAGES / "definitions.py", title="Definitions", url_path="definitions"),
    ]
)
navigation.run()
