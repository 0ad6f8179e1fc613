"""Security: incidents by day and kind (attacks, oversized bodies, rate-limit abuse, blocks). Raw
rate-limit rejections are counters in Prometheus (Grafana's API dashboard)."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards.common import settings, table
from dashboards.data import load_incidents


@st.cache_data(ttl=30, show_spinner=False)
def incidents(days: int):  # type: ignore[no-untyped-def]
    return load_incidents(settings(), days)


st.title("Security")
days = st.sidebar.slider("Days", 1, 90, 14, key="security-days")
frame = incidents(days)
if frame.is_empty():
    st.info(f"No security incidents in the last {days} days.")
    st.stop()
totals = frame.group_by("kind").agg(pl.col("incidents").sum()).sort("incidents", descending=True)
columns = st.columns(3)
columns[0].metric("Incidents", int(frame["incidents"].sum()))
abuse = totals.filter(totals["kind"] == "rate_limit_abuse")["incidents"]
columns[1].metric("Rate-limit abuse", int(abuse.sum()) if len(abuse) else 0)
blocked = totals.filter(totals["kind"] == "blocked")["incidents"]
columns[2].metric("Clients blocked", int(blocked.sum()) if len(blocked) else 0)
st.altair_chart(
    alt.Chart(frame)
    .mark_bar()
    .encode(x="day:N", y="incidents:Q", color="kind:N", tooltip=["day", "kind", "incidents"]),
    width="stretch",
)
table(totals, "incidents-by-kind")
table(frame, "incidents-by-day")
