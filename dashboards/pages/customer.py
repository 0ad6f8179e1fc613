"""A customer: found by its Stripe id, e-mail or user id; its MRR over time, every movement with
the event that caused it, its subscriptions, invoices, payments and disputes as Stripe last told
us, and why it is at risk. The movement tables and the at-risk list link here."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards.common import activity, kpis, money, settings, table
from dashboards.data import find_customers, load_customer

st.title("Customer")
asked = st.text_input(
    "Customer id, e-mail or user id",
    value=st.query_params.get("customer", ""),
    key="customer-query",
    placeholder="cus_..., ann@example.com or user_000001",
)
if not asked.strip():
    st.info("Search for a customer, or open one from a movement or the at-risk list.")
    st.stop()
found = find_customers(settings(), asked)
if found.is_empty():
    st.warning(f"No customer has the id, e-mail or user id {asked.strip()!r}.")
    st.stop()
customer = found["customer"][0]
if found.height > 1:
    customer = st.selectbox(f"{found.height} customers match", found["customer"].to_list(), key="customer-pick")
row = found.filter(pl.col("customer") == customer).row(0, named=True)
st.subheader(row["name"] or customer)
st.caption(f"{customer} · {row['email'] or 'no e-mail'} · user {row['user_id'] or 'not linked'}")

history = activity()
ledger = history.ledger.filter(pl.col("customer") == customer)
movements = history.movements.filter(pl.col("customer") == customer)
document = kpis().document
risk = [r for r in document.get("at_risk", []) if r["customer_id"] == customer]
currencies = sorted(set(ledger["currency"].to_list())) or ["usd"]
columns = st.columns(3)
last_month = ledger["month"].max() if not ledger.is_empty() else None
for column, cur in zip(columns, currencies, strict=False):
    now = ledger.filter((pl.col("currency") == cur) & (pl.col("month") == last_month))["mrr"].sum()
    column.metric(f"MRR ({cur.upper()}) at the end of {last_month}", money(now, cur))
if risk:
    for r in risk:
        st.warning(f"At risk (score {r['score']}, {money(r['mrr'], r['currency'])} MRR): " + "; ".join(r["reasons"]))
else:
    st.caption("Not on the at-risk list.")

st.subheader("MRR over time")
if ledger.is_empty():
    st.write("This customer never had MRR.")
else:
    st.line_chart(ledger.with_columns(pl.col("mrr") / 100).pivot(on="currency", index="month", values="mrr"), x="month")

st.subheader("Movements, with the events that caused them")
table(
    movements.select(
        "month",
        "kind",
        "currency",
        amount=pl.col("amount") / 100,
        subscription="subscription",
        event_id="event_id",
        at=pl.from_epoch("at").dt.strftime("%Y-%m-%d %H:%M"),
    ),
    f"movements-{customer}",
)
record = load_customer(settings(), customer)
for title, frame in (
    ("Subscriptions", record.subscriptions),
    ("Invoices", record.invoices),
    ("Payments", record.charges),
    ("Disputes", record.disputes),
):
    st.subheader(title)
    if frame.is_empty():
        st.write("None.")
    else:
        table(frame, f"{title.lower()}-{customer}")
