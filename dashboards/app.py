"""The business dashboard (Streamlit): ``streamlit run dashboards/app.py``; ``make run`` starts
it on 127.0.0.1:8501 over the demo data. Every number comes from ``analytics`` (the same KPIs as
``faddl kpis``). The Overview page is here; the other pages come with the rest of issue 6."""

from __future__ import annotations

import polars as pl
import streamlit as st

from api.settings import Settings
from dashboards.data import Kpis, load_kpis

st.set_page_config(page_title="faddl: overview", layout="wide")


@st.cache_data(ttl=60, show_spinner="Computing KPIs from the event log...")
def kpis() -> Kpis:
    return load_kpis(Settings.from_env())


def money(cents: int | None, currency: str) -> str:
    return "-" if cents is None else f"{cents / 100:,.2f} {currency.upper()}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


data = kpis()
st.title("Overview")
if not data.months:
    st.info("No subscription events in the log yet.")
    st.stop()

currencies = data.currencies
currency = st.sidebar.selectbox("Currency", currencies, index=currencies.index("usd") if "usd" in currencies else 0)
labels = [m.month for m in data.months]
first, last = st.sidebar.select_slider("Period", options=labels, value=(labels[0], labels[-1]))
chosen = [m for m in data.months if first <= m.month <= last]
kept = {r.month: r for r in data.retention}
current, previous = chosen[-1], (chosen[-2] if len(chosen) > 1 else None)
ret, ret_before = kept[current.month], (kept[previous.month] if previous else None)

st.caption(f"As of the end of {current.month}; change against {previous.month if previous else 'nothing'}.")
columns = st.columns(5)
mrr_now, mrr_before = current.mrr.get(currency, 0), previous.mrr.get(currency, 0) if previous else None
columns[0].metric(
    "MRR", money(mrr_now, currency), None if mrr_before is None else money(mrr_now - mrr_before, currency)
)
columns[1].metric("ARR", money(current.arr.get(currency, 0), currency))
subs_before = previous.active_subscriptions if previous else None
columns[2].metric(
    "Active subscriptions",
    current.active_subscriptions,
    None if subs_before is None else current.active_subscriptions - subs_before,
)
churn_now = ret.logo_churn_rate.get(currency)
churn_before = ret_before.logo_churn_rate.get(currency) if ret_before else None
columns[3].metric(
    "Logo churn",
    percent(churn_now),
    None if churn_now is None or churn_before is None else f"{(churn_now - churn_before) * 100:+.1f} pts",
    delta_color="inverse",
)
columns[4].metric("NRR (12 months)", percent(ret.nrr.get(currency)))

table = pl.DataFrame(
    [
        {
            "month": m.month,
            "mrr": m.mrr.get(currency, 0) / 100,
            "arr": m.arr.get(currency, 0) / 100,
            **{k: v / 100 for k, v in m.mrr_movements.get(currency, {}).items()},
            "paying_customers": m.paying_customers.get(currency, 0),
            "logo_churn_rate": kept[m.month].logo_churn_rate.get(currency),
            "net_revenue_churn": kept[m.month].net_revenue_churn.get(currency),
        }
        for m in chosen
    ]
)
st.subheader(f"MRR by month ({currency.upper()})")
st.line_chart(table, x="month", y="mrr")
st.dataframe(table, hide_index=True)
st.download_button("Download CSV", table.write_csv(), file_name=f"faddl-kpis-{currency}.csv", mime="text/csv")
