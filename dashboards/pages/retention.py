"""Retention: churn (logo, voluntary, delinquent; gross and net revenue), NRR/GRR, and the cohort
heatmap (logo retention by months since the cohort's first payment)."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards.common import page, table

data, chosen = page("Retention")
currency, months = chosen.currency, chosen.months

rates = pl.DataFrame(
    [
        {
            "month": m["month"],
            "logo_churn": m["logo_churn_rate"].get(currency),
            "voluntary_churn": m["voluntary_churn_rate"].get(currency),
            "delinquent_churn": m["delinquent_churn_rate"].get(currency),
            "gross_revenue_churn": m["gross_revenue_churn"].get(currency),
            "net_revenue_churn": m["net_revenue_churn"].get(currency),
            "nrr": m["nrr"].get(currency),
            "grr": m["grr"].get(currency),
            "trial_conversion": m.get("trial_conversion_rate"),
            "checkout_conversion": m.get("checkout_conversion_rate"),
        }
        for m in months
    ]
)
st.subheader(f"Churn by month ({currency.upper()})")
st.line_chart(rates, x="month", y=["logo_churn", "gross_revenue_churn", "net_revenue_churn"])
table(rates, f"retention-{currency}", percents=[c for c in rates.columns if c != "month"])

st.subheader("Cohorts: share of customers still paying, by months since their first payment")
cohorts = data.document.get("cohorts", [])
shown = {m["month"] for m in months}
cells = pl.DataFrame(
    [
        {"cohort": c["month"], "customers": c["customers"], "months_since": k, "retention": share}
        for c in cohorts
        if c["month"] in shown
        for k, share in enumerate(c["logo_retention"])
    ],
    schema={"cohort": pl.String, "customers": pl.Int64, "months_since": pl.Int64, "retention": pl.Float64},
)
if cells.is_empty():
    st.write("No cohort starts in this period.")
else:
    heatmap = (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("months_since:O", title="months since first payment"),
            y=alt.Y("cohort:O", title="cohort"),
            color=alt.Color("retention:Q", scale=alt.Scale(scheme="blues", domain=[0, 1])),
            tooltip=["cohort", "customers", "months_since", alt.Tooltip("retention:Q", format=".1%")],
        )
    )
    st.altair_chart(heatmap, width="stretch")
    wide = cells.pivot(on="months_since", index=["cohort", "customers"], values="retention")
    table(wide, "cohorts", percents=[c for c in wide.columns if c not in ("cohort", "customers")])
