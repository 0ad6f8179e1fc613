"""Payments: renewal failure and recovery, disputes (activity and rate by charge month), refunds,
and the trailing 7- and 30-day windows."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards.common import money, page, percent, table

data, chosen = page("Payments")
currency, months = chosen.currency, chosen.months

windows = data.document.get("payment_windows", {})
columns = st.columns(4)
for column, (label, key) in zip(columns[:2], (("7 days", "last_7_days"), ("30 days", "last_30_days")), strict=True):
    window = windows.get(key, {})
    column.metric(
        f"Failure rate, last {label}",
        percent(window.get("payment_failure_rate")),
        help=f"{window.get('payment_failures', 0)} of {window.get('renewal_attempts', 0)} renewal first attempts",
    )
month_30 = windows.get("last_30_days", {})
columns[2].metric("Dispute activity, last 30 days", percent(month_30.get("dispute_activity")))
columns[3].metric("Successful charges, last 30 days", month_30.get("successful_charges", 0))

frame = pl.DataFrame(
    [
        {
            "month": m["month"],
            "renewal_attempts": m["renewal_attempts"].get(currency, 0),
            "failure_rate": m["payment_failure_rate"].get(currency),
            "failure_rate_by_amount": m["payment_failure_rate_by_amount"].get(currency),
            "failed": m["failed_amount"].get(currency, 0) / 100,
            "recovered": m["recovered_amount"].get(currency, 0) / 100,
            "recovery_rate": m["recovery_rate"].get(currency),
            "in_recovery": m["in_recovery"].get(currency, 0) / 100,
            "refunds": m["refunds"].get(currency, 0) / 100,
            "successful_charges": m["successful_charges"],
            "disputes": m["disputes_created"],
            "dispute_activity": m["dispute_activity"],
            "dispute_rate_by_charge_month": m.get("dispute_rate"),
        }
        for m in months
    ]
)
st.subheader(f"Failed and recovered renewals ({currency.upper()})")
st.bar_chart(frame, x="month", y=["failed", "recovered"], stack=False)
rates = ("failure_rate", "failure_rate_by_amount", "recovery_rate", "dispute_activity", "dispute_rate_by_charge_month")
table(frame, f"payments-{currency}", percents=rates)
last = months[-1]
st.caption(
    f"{last['month']}: {money(last['failed_amount'].get(currency, 0), currency)} failed on the first attempt, "
    f"{money(last['recovered_amount'].get(currency, 0), currency)} recovered within 30 days. Failure rates need "
    "20 attempts in a month; the dispute rate by charge month matures over about 120 days."
)
