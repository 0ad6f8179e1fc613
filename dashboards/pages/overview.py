"""Overview: MRR, ARR, active subscriptions, logo churn and NRR, each against the month before."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from dashboards.common import CUSTOMER_LINK, customer_link, money, month_note, page, percent, table

data, chosen = page("Overview")
currency, months = chosen.currency, chosen.months
current, previous = months[-1], (months[-2] if len(months) > 1 else None)

against = previous["month"] if previous else "nothing"
if current.get("month_to_date"):
    moment = datetime.fromtimestamp(data.document.get("now") or 0, tz=UTC)
    st.caption(f"{current['month']} month to date, as of {moment:%Y-%m-%d %H:%M} UTC; change against {against}.")
else:
    st.caption(f"At the end of {current['month']}; change against {against}.")
if current.get("reconstructed"):
    st.caption(
        f"{current['month']} rests on reconstructed history (before the account was synced): derived from its "
        "subscriptions' dates and invoices."
    )
st.caption("How each figure is computed: [Definitions](/definitions).")
# Two rows of three: a money figure in a fifth of the page was cut off ("3,973.16 ...").
columns = [*st.columns(3), *st.columns(3)]
mrr_now = current["mrr"].get(currency, 0)
mrr_before = previous["mrr"].get(currency, 0) if previous else None
columns[0].metric(
    "MRR", money(mrr_now, currency), None if mrr_before is None else money(mrr_now - mrr_before, currency)
)
arr_before = previous["arr"].get(currency, 0) if previous else None
columns[1].metric(
    "ARR",
    money(current["arr"].get(currency, 0), currency),
    None if arr_before is None else money(current["arr"].get(currency, 0) - arr_before, currency),
)
# In the chosen currency, as the MRR beside it (and the Revenue page's plan distribution).
subs_now = current.get("active_subscriptions_by_currency", {}).get(currency, 0)
subs_before = previous.get("active_subscriptions_by_currency", {}).get(currency, 0) if previous else None
columns[2].metric("Active subscriptions", subs_now, None if subs_before is None else subs_now - subs_before)
churn_now = current["logo_churn_rate"].get(currency)
churn_before = previous["logo_churn_rate"].get(currency) if previous else None
columns[3].metric(
    "Logo churn",
    percent(churn_now),
    None if churn_now is None or churn_before is None else f"{(churn_now - churn_before) * 100:+.1f} pts",
    delta_color="inverse",
)
paying_now = current["paying_customers"].get(currency, 0)
paying_before = previous["paying_customers"].get(currency, 0) if previous else None
columns[5].metric("Paying customers", paying_now, None if paying_before is None else paying_now - paying_before)
nrr_now, nrr_before = current["nrr"].get(currency), previous["nrr"].get(currency) if previous else None
columns[4].metric(
    "NRR (12 months)",
    percent(nrr_now),
    None if nrr_now is None or nrr_before is None else f"{(nrr_now - nrr_before) * 100:+.1f} pts",
)

frame = pl.DataFrame(
    [
        {
            "month": m["month"],
            "note": month_note(m),
            "mrr": m["mrr"].get(currency, 0) / 100,
            "arr": m["arr"].get(currency, 0) / 100,
            "active_subscriptions": m.get("active_subscriptions_by_currency", {}).get(currency, 0),
            "paying_customers": m["paying_customers"].get(currency, 0),
            "arpa": None if m["arpa"].get(currency) is None else m["arpa"][currency] / 100,
            "logo_churn_rate": m["logo_churn_rate"].get(currency),
            "net_revenue_churn": m["net_revenue_churn"].get(currency),
            "nrr": m["nrr"].get(currency),
            "ltv": None if m["ltv"].get(currency) is None else m["ltv"][currency] / 100,
        }
        for m in months
    ]
)
st.subheader(f"MRR by month ({currency.upper()})")
st.line_chart(frame, x="month", y="mrr")
table(frame, f"overview-{currency}", percents=("logo_churn_rate", "net_revenue_churn", "nrr"))

risky = [r for r in data.document.get("at_risk", []) if r["currency"] == currency]
st.subheader(f"At-risk customers ({len(risky)}, {money(data.document['at_risk_mrr'].get(currency, 0), currency)} MRR)")
if risky:
    table(
        pl.DataFrame(
            [
                {
                    "customer": customer_link(r["customer_id"]),
                    "mrr": r["mrr"] / 100,
                    "score": r["score"],
                    "reasons": "; ".join(r["reasons"]),
                }
                for r in risky
            ]
        ),
        f"at-risk-{currency}",
        links={"customer": CUSTOMER_LINK},
    )
else:
    st.write("None.")

stale = [s for s in data.document.get("stale_subscriptions", []) if s["currency"] == currency]
grace = data.document.get("stale_grace_days", 3)
st.subheader(f"Stale subscriptions ({len(stale)})")
st.caption(
    f"Still active by their last event, but their period ended over {grace} days ago and no renewal "
    "was seen (missed webhooks, or a history that stops): not counted in MRR."
)
if stale:
    table(
        pl.DataFrame(
            [
                {
                    "subscription": s["subscription_id"],
                    "customer": s["customer_id"],
                    "status": s["status"],
                    "mrr before": s["mrr"] / 100,
                    "period ended": s["period_end"][:10],
                    "days since": s["days_since_period_end"],
                }
                for s in stale
            ]
        ),
        f"stale-{currency}",
    )
else:
    st.write("None.")
