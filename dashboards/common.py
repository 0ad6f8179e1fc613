"""What every page shares: the cached KPIs, the sidebar filters, formatting, and tables with a
CSV download."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from analytics.activity import Activity
from analytics.engine import MOVEMENT_KINDS
from api.settings import Settings
from dashboards.data import Kpis, load_activity, load_kpis, snapshot_version

__all__ = [
    "CUSTOMER_LINK",
    "Filters",
    "activity",
    "customer_link",
    "filters",
    "follow_snapshots",
    "kpis",
    "money",
    "month_note",
    "movement_colours",
    "page",
    "percent",
    "settings",
    "table",
]

# Gains in green shades, losses in red shades, on every chart (ColorBrewer's RdYlGn ends).
_MOVEMENT_COLOURS = {
    "new": "#1a9850",
    "expansion": "#66bd63",
    "reactivation": "#a6d96a",
    "contraction": "#f46d43",
    "churn": "#d73027",
}


def movement_colours(field: str = "kind") -> alt.Color:
    """The colour encoding of MRR movements: gains green, losses red, in the movements' order."""
    return alt.Color(
        f"{field}:N",
        title="movement",
        sort=list(MOVEMENT_KINDS),
        scale=alt.Scale(domain=list(MOVEMENT_KINDS), range=[_MOVEMENT_COLOURS[m] for m in MOVEMENT_KINDS]),
    )


@st.cache_resource
def settings() -> Settings:
    return Settings.from_env()


FOLLOW_SECONDS = 2
"""How often an open page looks for a newer KPI snapshot (the worker writes one within seconds of
a webhook that changes a figure)."""


@st.cache_data(ttl=60, show_spinner="Reading the KPIs...")
def _kpis_as_of(version: str | None) -> Kpis:
    """The KPIs, cached per snapshot ``version`` (the cache key: a newer snapshot is read at once)."""
    return load_kpis(settings())


def kpis() -> Kpis:
    """The KPIs of the newest snapshot (read again as soon as there is a newer one)."""
    return _kpis_as_of(snapshot_version(settings()))


@st.fragment(run_every=FOLLOW_SECONDS)
def follow_snapshots(shown: str | None) -> None:
    """Rerun the page when the worker has written a snapshot newer than the one it shows."""
    if snapshot_version(settings()) != shown:
        st.rerun()


@st.cache_data(ttl=60, show_spinner="Reading the movements...")
def activity() -> Activity:
    """Every movement with its event and each customer's MRR by month (the drill-downs)."""
    return load_activity(settings())


_CUSTOMER_PAGE = "/customer?customer="


def customer_link(customer: str) -> str:
    """The customer page's address for ``customer`` (a table's link column)."""
    return f"{_CUSTOMER_PAGE}{customer}"


CUSTOMER_LINK = st.column_config.LinkColumn("customer", display_text=r"/customer\?customer=(.*)")
"""A column of :func:`customer_link` addresses, shown as the customer's id."""


def money(cents: int | float | None, currency: str) -> str:
    return "-" if cents is None else f"{cents / 100:,.2f} {currency.upper()}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


@dataclass(frozen=True)
class Filters:
    currency: str
    months: list[dict[str, Any]]
    """The months of the chosen period, oldest first."""
    plans: list[str]


def filters(data: Kpis) -> Filters:
    """The sidebar: period, currency and plan (kept across pages)."""
    currencies = data.currencies
    currency = st.sidebar.selectbox(
        "Currency", currencies, index=currencies.index("usd") if "usd" in currencies else 0, key="currency"
    )
    labels = [m["month"] for m in data.months]
    first, last = st.sidebar.select_slider(
        "Period", options=labels, value=(labels[max(0, len(labels) - 12)], labels[-1]), key="period"
    )
    plans = data.plans_in(currency)
    chosen = st.sidebar.multiselect("Plans", plans, default=plans, key=f"plans-{currency}", format_func=data.plan_name)
    st.sidebar.caption(
        f"KPIs as of {data.as_of:%Y-%m-%d %H:%M} UTC ({data.source}); log up to "
        f"{_date(data.document.get('computed_until'))}."
    )
    if data.months[-1].get("month_to_date"):
        st.sidebar.caption(f"{data.months[-1]['month']} is month to date (as of {_date(data.document.get('now'))}).")
    rebuilt = data.reconstructed_months
    if rebuilt:
        st.sidebar.caption(
            f"{rebuilt[0]} to {rebuilt[-1]} rest on reconstructed history: the account's life before it was "
            "synced, derived from its subscriptions and invoices ([Definitions](/definitions))."
        )
    return Filters(currency, [m for m in data.months if first <= m["month"] <= last], chosen)


def month_note(month: dict[str, Any]) -> str:
    """What a table says of a month whose figures are not a finished, observed month's: resting on
    reconstructed history (before the account was synced), or month to date."""
    notes = [
        *(["reconstructed"] if month.get("reconstructed") else []),
        *(["month to date"] if month.get("month_to_date") else []),
    ]
    return ", ".join(notes)


def _date(moment: int | None) -> str:
    return "-" if not moment else datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(frame: pl.DataFrame, name: str, *, percents: Sequence[str] = (), links: dict[str, Any] | None = None) -> None:
    """A table and its CSV download. ``percents``: columns holding rates (0.3), shown as
    percentages (30.0%) and kept as rates in the CSV; ``links``: columns shown as links (their
    column configuration). An empty cell is a figure that is not defined (a rate with nothing to
    divide by); amounts and counts are 0, never empty."""
    config: dict[str, Any] = {column: st.column_config.NumberColumn(format="percent") for column in percents}
    config |= links or {}
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config)
    # The CSV holds the customers' ids, not the page addresses their links open.
    plain = frame.with_columns(pl.col(c).str.replace(_CUSTOMER_PAGE, "", literal=True) for c in (links or {}))
    st.download_button(
        f"Download {name} (CSV)", plain.write_csv(), file_name=f"faddl-{name}.csv", mime="text/csv", key=f"csv-{name}"
    )


def page(title: str) -> tuple[Kpis, Filters]:
    """A KPI page's start: its title, the KPIs and the sidebar filters (or a note when the log has
    no subscription yet, and the page stops there)."""
    version = snapshot_version(settings())
    data = _kpis_as_of(version)
    follow_snapshots(version)
    st.title(title)
    if not data.months:
        st.info("No subscription events in the log yet.")
        st.stop()
    return data, filters(data)
