"""Revenue: the MRR waterfall of a month (start, each movement, end) with the quick ratio, the
customers and events behind each movement, the movements by month, and the MRR by plan."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from analytics.activity import quick_ratio
from analytics.engine import LOSSES, MOVEMENT_KINDS, net_movement
from analytics.fx import in_reporting_currency
from dashboards.common import (
    CUSTOMER_LINK,
    activity,
    customer_link,
    money,
    month_note,
    movement_colours,
    page,
    settings,
    table,
)
from dashboards.data import load_fx

data, chosen = page("Revenue")
currency, months = chosen.currency, chosen.months
unit = currency.upper()

# -- one month's waterfall -------------------------------------------------------------------------
labels = [m["month"] for m in months]
picked = st.selectbox("Month", labels, index=len(labels) - 1, key="waterfall-month")
month = next(m for m in months if m["month"] == picked)
moved = month["mrr_movements"].get(currency, {})
end = month["mrr"].get(currency, 0)
start = end - net_movement(moved)
steps, level = [], start
steps.append({"step": "start", "kind": "start", "from": 0.0, "to": start / 100, "amount": start / 100})
for kind in MOVEMENT_KINDS:
    change = (-1 if kind in LOSSES else 1) * moved.get(kind, 0)
    steps.append(
        {"step": kind, "kind": kind, "from": level / 100, "to": (level + change) / 100, "amount": change / 100}
    )
    level += change
steps.append({"step": "end", "kind": "end", "from": 0.0, "to": end / 100, "amount": end / 100})
order = ["start", *MOVEMENT_KINDS, "end"]
ratio = quick_ratio(moved)
columns = st.columns(3)
columns[0].metric(f"MRR at the start of {picked}", money(start, currency))
columns[1].metric(f"MRR at the end of {picked}", money(end, currency), money(end - start, currency))
columns[2].metric(
    "Quick ratio",
    "-" if ratio is None else f"{ratio:.2f}",
    help="(new + expansion + reactivation) / (contraction + churn): above 1, the month grew.",
)
st.subheader(f"MRR waterfall, {picked} ({unit})")
if month_note(month):
    st.caption(f"{picked}: {month_note(month)} (see the sidebar and [Definitions](/definitions)).")
frame = pl.DataFrame(steps)
bars = (
    alt.Chart(frame)
    .mark_bar()
    .encode(
        x=alt.X("step:N", sort=order, title=None),
        y=alt.Y("from:Q", title=f"MRR ({unit})"),
        y2="to:Q",
        color=alt.condition(
            alt.FieldOneOfPredicate(field="kind", oneOf=["start", "end"]),
            alt.value("#8c8c8c"),
            movement_colours(),
        ),
        tooltip=["step", alt.Tooltip("amount:Q", format=",.2f")],
    )
)
st.altair_chart(bars, width="stretch")

# -- behind each movement ---------------------------------------------------------------------------
everything = activity().movements
behind = everything.filter((pl.col("month") == picked) & (pl.col("currency") == currency))
kind = st.selectbox(
    "Who is behind a movement",
    list(MOVEMENT_KINDS),
    format_func=lambda k: f"{k} ({money(moved.get(k, 0), currency)})",
    key="drill-kind",
)
rows = behind.filter(pl.col("kind") == kind).sort("amount", descending=True)
st.caption(
    f"{rows.height} movement(s) make up {picked}'s {kind} of {money(moved.get(kind, 0), currency)}; each "
    "with the event that caused it. A customer opens its page."
)
table(
    rows.select(
        customer=pl.col("customer").map_elements(customer_link, return_dtype=pl.String),
        amount=pl.col("amount") / 100,
        subscription="subscription",
        event_id="event_id",
        at=pl.from_epoch("at").dt.strftime("%Y-%m-%d %H:%M"),
    ),
    f"{kind}-{picked}-{currency}",
    links={"customer": CUSTOMER_LINK},
)

# -- the movements by month ----------------------------------------------------------------------------
movements = pl.DataFrame(
    [
        {
            "month": m["month"],
            "kind": kind,
            "amount": (-1 if kind in LOSSES else 1) * m["mrr_movements"].get(currency, {}).get(kind, 0) / 100,
        }
        for m in months
        for kind in MOVEMENT_KINDS
    ]
)
st.subheader(f"MRR movements by month ({unit})")
chart = (
    alt.Chart(movements)
    .mark_bar()
    .encode(
        x=alt.X("month:N", title=None),
        y=alt.Y("sum(amount):Q", title=f"MRR change ({unit})"),
        color=movement_colours(),
        tooltip=["month", "kind", "amount"],
    )
)
st.altair_chart(chart, width="stretch")
wide = pl.DataFrame(
    [
        {
            "month": m["month"],
            "note": month_note(m),
            **{k: m["mrr_movements"].get(currency, {}).get(k, 0) / 100 for k in MOVEMENT_KINDS},
            "end_mrr": m["mrr"].get(currency, 0) / 100,
            "quick_ratio": quick_ratio(m["mrr_movements"].get(currency, {})),
        }
        for m in months
    ]
)
# The movement identity read backwards: start = end - gains + losses.
gains = pl.col("new") + pl.col("reactivation") + pl.col("expansion")
wide = wide.select(
    "month",
    "note",
    (pl.col("end_mrr") - gains + pl.col("contraction") + pl.col("churn")).round(2).alias("start_mrr"),
    pl.exclude("month", "note"),
)
table(wide, f"mrr-movements-{currency}")

# -- by plan ------------------------------------------------------------------------------------------
st.subheader(f"MRR by plan ({unit})")
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

# -- every currency in one ---------------------------------------------------------------------------
st.subheader("Every currency in one")
try:
    fx = load_fx(settings())
except ValueError as exc:
    st.error(str(exc))
    fx = None
if fx is None:
    st.caption(
        "MRR is kept per currency. To total it in one reporting currency, set FX_RATES_FILE to the European "
        "Central Bank's CSV of euro reference rates (eurofxref-hist.csv from ecb.europa.eu); none is shipped."
    )
else:
    choices = fx.currencies
    reporting = st.selectbox(
        "Reporting currency", choices, index=choices.index("eur") if "eur" in choices else 0, key="reporting"
    )
    converted = in_reporting_currency(months, fx, reporting)
    last_converted = converted[-1]
    st.metric(f"MRR, every currency, in {reporting.upper()}", money(last_converted.end, reporting))
    if last_converted.missing:
        st.warning("No rate for " + ", ".join(c.upper() for c in last_converted.missing) + ": left out of the total.")
    table(
        pl.DataFrame(
            [
                {
                    "month": c.month,
                    "start_mrr": c.start / 100,
                    "fx_effect": c.fx_effect / 100,
                    **{k: c.movements.get(k, 0.0) / 100 for k in MOVEMENT_KINDS},
                    "end_mrr": c.end / 100,
                    "rates_of": c.rates_day.isoformat(),
                }
                for c in converted
            ]
        ),
        f"mrr-in-{reporting}",
    )
    st.caption(
        "Each month at the last rates on or before its end: end = start (at last month's rates) + FX effect "
        "+ the movements (at this month's rates). The rates used, units per euro, from "
        f"{fx.source}:"
    )
    table(
        pl.DataFrame(
            [
                {"currency": cur.upper(), "per_euro": fx.per_euro(cur, last_converted.rates_day)}
                for cur in sorted(last["mrr"])
            ]
        ),
        "fx-rates",
    )
