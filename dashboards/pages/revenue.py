"""Revenue: MRR movements by month (stacked: gains up, losses down) and the MRR by plan."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards.common import LOSSES, MOVEMENTS, movement_colours, page, table

MOVES = MOVEMENTS
data, chosen = page("Revenue")
currency, months = chosen.currency, chosen.months

movements = pl.DataFrame(
    [
        {
            "month": m["month"],
            "kind": kind,
            "amount": (-1 if kind in LOSSES else 1) * m["mrr_movements"].get(currency, {}).get(kind, 0) / 100,
        }
        for m in months
        for kind in MOVES
    ]
)
st.subheader(f"MRR movements ({currency.upper()})")
chart = (
    alt.Chart(movements)
    .mark_bar()
    .encode(
        x=alt.X("month:N", title=None),
        y=alt.Y("sum(amount):Q", title=f"MRR change ({currency.upper()})"),
        color=movement_colours(),
        tooltip=["month", "kind", "amount"],
    )
)
st.altair_chart(chart, width="stretch")
wide = pl.DataFrame(
    [
        {
            "month": m["month"],
            **{k: m["mrr_movements"].get(currency, {}).get(k, 0) / 100 for k in MOVES},
            "end_mrr": m["mrr"].get(currency, 0) / 100,
        }
        for m in months
    ]
)
# The movement identity read backwards: start = end - gains + losses.
gains = pl.col("new") + pl.col("reactivation") + pl.col("expansion")
wide = wide.select(
    "month",
    (pl.col("end_mrr") - gains + pl.col("contraction") + pl.col("churn")).round(2).alias("start_mrr"),
    pl.exclude("month"),
)
table(wide, f"mrr-movements-{currency}")

st.subheader(f"MRR by plan ({currency.upper()})")
plans = pl.DataFrame(
    [
        {"month": m["month"], "plan": data.plan_name(plan), "mrr": cents / 100}
        for m in months
        for plan, cents in m.get("mrr_by_plan", {}).get(currency, {}).items()
        if plan in chosen.plans
    ],
    schema={"month": pl.String, "plan": pl.String, "mrr": pl.Float64},
)
if plans.is_empty():
    st.write("No MRR on the chosen plans in this period.")
else:
    st.altair_chart(
        alt.Chart(plans).mark_bar().encode(x="month:N", y="mrr:Q", color="plan:N", tooltip=["month", "plan", "mrr"]),
        width="stretch",
    )
    table(plans.pivot(on="plan", index="month", values="mrr"), f"mrr-by-plan-{currency}")
last = months[-1]
counts = pl.DataFrame(
    [
        {"plan": data.plan_name(p), "subscriptions": n}
        for p, n in last.get("subscriptions_by_plan", {}).get(currency, {}).items()
        if p in chosen.plans
    ],
    schema={"plan": pl.String, "subscriptions": pl.Int64},
)
st.subheader(f"Plan distribution at the end of {last['month']}")
table(counts, "plan-distribution")
