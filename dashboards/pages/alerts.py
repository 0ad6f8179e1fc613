"""Alerts: the business alerts' history (open first) and acknowledgement."""

from __future__ import annotations

import polars as pl
import streamlit as st

from analytics.alerts.rules import SEVERITIES
from dashboards.common import settings, table
from dashboards.data import acknowledge, load_alerts
from dashboards.login import LOCAL_VIEWER

st.title("Alerts")
alerts = load_alerts(settings())
if not alerts:
    st.info("No alert has fired yet. `faddl alerts rules` lists the rules; the worker evaluates them.")
    st.stop()
# The most severe first, then the oldest: what needs a person soonest leads.
open_alerts = sorted(
    (a for a in alerts if a.status == "firing"),
    key=lambda a: (-SEVERITIES.index(a.severity) if a.severity in SEVERITIES else 1, a.first_seen_at),
)
st.metric("Open alerts", len(open_alerts))
for alert in open_alerts:
    with st.container(border=True):
        st.markdown(f"**{alert.severity.upper()}**: {alert.rule} ({alert.key})")
        st.write(alert.message)
        st.caption(f"What to do: {alert.recommendation}")
        if alert.acknowledged_at is None:
            if st.button("Acknowledge", key=f"ack-{alert.id}"):
                acknowledge(settings(), alert.id, st.session_state.get("viewer", LOCAL_VIEWER))
                st.rerun()
        else:
            st.caption(f"Acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at:%Y-%m-%d %H:%M} UTC")
history = pl.DataFrame(
    [
        {
            "id": a.id,
            "rule": a.rule,
            "key": a.key,
            "severity": a.severity,
            "status": a.status,
            "value": a.value,
            "threshold": a.threshold,
            "first_seen": a.first_seen_at.isoformat(),
            "resolved": a.resolved_at.isoformat() if a.resolved_at else None,
            "delivery": a.delivery,
            "acknowledged_by": a.acknowledged_by,
            "message": a.message,
        }
        for a in alerts
    ]
)
st.subheader("History")
table(history, "alerts")
